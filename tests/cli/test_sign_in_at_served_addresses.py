"""Sign-in as a browser does it, at the address the quickstart prints (127.0.0.1) and at the
issuer's (localhost): the browser sends the page's Origin, which must be accepted at both, and
a page of another site posting the same form is still refused."""
from __future__ import annotations

import os

import pytest
import requests
from sqlalchemy import select

from gateway.cli import cli
from gateway.store.models import User

from served import Served, portal_sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def served(runner, database, database_url, tmp_path):
    """A served demo district (the issuer left to default: localhost) and a student's username."""
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "20"]).exit_code == 0
    with database.session_scope() as session:
        name = session.execute(select(User.username).where(User.sourced_id.like("stu-%"))
                               .order_by(User.sourced_id)).scalars().first()
    assert runner.invoke(cli, ["users", "set-password", name, "--password", PASSWORD]).exit_code == 0
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_ISSUER"}
    env.update(GATEWAY_DATABASE_URL=database_url, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    server = Served(env, ["serve"])
    yield server, name
    server.stop()


def sign_in(host: str, port: int, username: str, origin: str) -> requests.Response:
    return portal_sign_in(f"http://{host}:{port}", username, PASSWORD, origin)[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_browser_signs_in_at_either_address(served, host):
    server, name = served
    response = sign_in(host, server.port, name, origin=f"http://{host}:{server.port}")
    assert response.status_code == 303, response.text
    assert response.headers["Location"].endswith("/portal")


def test_a_form_posted_from_another_site_is_refused(served):
    server, name = served
    response = sign_in("127.0.0.1", server.port, name, origin="https://evil.example")
    assert response.status_code == 400
    assert "The form was sent from another site." in response.text
    # Someone who is not signed in is offered the way in, not a portal they cannot open.
    assert "Back to your portal" not in response.text
    assert 'href="/login">Sign in</a>' in response.text
    # Nor does the address of this server with another port pass for it.
    other = sign_in("127.0.0.1", server.port, name, origin=f"http://127.0.0.1:{server.port + 1}")
    assert other.status_code == 400
