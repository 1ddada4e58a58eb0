"""Portal sessions end everywhere: two `gateway serve` processes (two workers each) over one store,
a browser's cookie captured on one, and sign-out, a password change or an admin's revocation
made through the other (or the CLI) ends it on both."""
from __future__ import annotations

import os
import subprocess
import sys

import requests
from sqlalchemy import select

from gateway.cli import cli
from gateway.store.models import User

from served import Served, csrf_token, portal_sign_in

PASSWORD = "correct horse battery"


def _sign_in(base: str, username: str, password: str = PASSWORD) -> requests.Session:
    browser, response = portal_sign_in(base, username, password)
    assert response.status_code == 303, response.text
    return browser


def _signed_in(cookies, base: str) -> bool:
    """Whether the captured cookies open the portal on ``base``."""
    response = requests.get(f"{base}/portal", cookies=cookies, allow_redirects=False, timeout=10)
    return response.status_code == 200


def test_sign_out_password_change_and_revocation_end_sessions_on_every_server(
        runner, database, database_url, tmp_path):
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "20"]).exit_code == 0
    with database.session_scope() as session:
        name = session.execute(select(User.username).where(User.sourced_id.like("stu-%"))
                               .order_by(User.sourced_id)).scalars().first()
    result = runner.invoke(cli, ["users", "set-password", name, "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY="test-secret-key",
               GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    first = Served(env, ["serve", "--workers", "2"])
    second = Served(env, ["serve", "--workers", "2"])
    try:
        # Sign-out on the other server ends the session captured on the first.
        browser = _sign_in(first.base, name)
        captured = browser.cookies.copy()
        assert _signed_in(captured, first.base) and _signed_in(captured, second.base)
        page = browser.get(f"{second.base}/portal", timeout=10).text
        csrf = csrf_token(page)
        assert browser.post(f"{second.base}/logout", data={"csrf_token": csrf},
                            allow_redirects=False, timeout=10).status_code == 303
        assert not _signed_in(captured, first.base) and not _signed_in(captured, second.base)

        # A password change, from the CLI, ends every session of the person.
        captured = _sign_in(first.base, name).cookies.copy()
        other_device = _sign_in(second.base, name).cookies.copy()
        changed = subprocess.run([sys.executable, "-m", "gateway", "users", "set-password",
                                  name, "--password", PASSWORD + "!"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert changed.returncode == 0, changed.stderr
        for cookies in (captured, other_device):
            assert not _signed_in(cookies, first.base) and not _signed_in(cookies, second.base)

        # An admin's revocation does the same.
        captured = _sign_in(second.base, name, PASSWORD + "!").cookies.copy()
        revoked = subprocess.run([sys.executable, "-m", "gateway", "users", "revoke-sessions",
                                  name], env=env, capture_output=True, text=True,
                                 timeout=60)
        assert revoked.returncode == 0, revoked.stderr
        assert not _signed_in(captured, first.base) and not _signed_in(captured, second.base)
    finally:
        first.stop()
        second.stop()
