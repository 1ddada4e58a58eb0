"""Two hosts of one gateway: two `gateway serve` processes (two workers each) on different ports
over one PostgreSQL and one Redis, and a `gateway worker`. Whatever one host does, the other
agrees with at once: a token issued by one is honoured by the other and, once revoked through
one (the CLI against its configuration), refused by both on the next request, and so is a new
sharing policy in force on both at once; an LTI launch
begun on one completes on the other, and its one-time hint cannot be replayed on either; an
import queued on one (with the CLI: there is no upload over HTTP yet) is run by the worker, and
both then serve the new data, whatever they had cached before.

PostgreSQL is needed (SQLite is one host's file): the test uses GATEWAY_TEST_DATABASE_URL, or on
CI the CI server, in a schema of its own; it is skipped only off CI without one.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import text

from gateway.lti.platform import registration
from gateway.lti.platform.portal import set_password
from gateway.oauth import service
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store import Database
from gateway.store.migrate import upgrade_database
from gateway.store.models import utcnow

from bundles import small_district, write_bundle
from served import Served, csrf_token, portal_sign_in
from workers import WorkerProcess, remove_queues

pytestmark = pytest.mark.slow

CI_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"
TOOL = "https://tool.example/math"
USERS = "/ims/oneroster/rostering/v1p2/users"


@pytest.fixture
def shared_database_url():
    """A migrated PostgreSQL schema of this test's own; dropped afterwards."""
    url = os.environ.get("GATEWAY_TEST_DATABASE_URL") or (
        CI_DATABASE_URL if os.environ.get("CI", "").lower() == "true" else None)
    if not url:
        pytest.skip("two hosts need PostgreSQL: set GATEWAY_TEST_DATABASE_URL")
    schema = f"gateway_two_hosts_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = Database(url)
    with admin.engine.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in url else "?"
    shared = f"{url}{separator}options=-csearch_path%3D{schema}"
    database = Database(shared)
    upgrade_database(database)
    database.dispose()
    yield shared
    with admin.engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def _set_up(database: Database, bundle) -> tuple[str, str, str]:
    """The small district, passwords, an app sharing all of it with a tool placed in class k1:
    the app's client id and secret, and the resource link's id."""
    with database.session_scope(write=True) as session:
        assert import_bundle(session, bundle, ImportOptions()).outcome == "applied"
    with database.session_scope(write=True) as session:
        set_password(session, "lisa", PASSWORD)
        created = service.register_app(session, name="Math Tool", district_sourced_id="d1",
                                       scopes=None, now=utcnow())
        set_policy(session, app_id=created.app_id, district_id=1,
                   document=share_everything_document(), now=utcnow())
        tool = registration.register_tool(
            session, app=created.app_id, district=None, name="Math Tool",
            login_url=f"{TOOL}/login", redirect_uris=[f"{TOOL}/launch"],
            target_link_uri=f"{TOOL}/launch", jwks_url=f"{TOOL}/jwks", now=utcnow())
        link = registration.place_tool(session, client_id=tool.client_id, class_sourced_id="k1",
                                       district=None, title="Fractions", now=utcnow())
        return created.client_id, created.client_secret, link.link_id


def _token(base: str, client_id: str, secret: str) -> str:
    response = requests.post(f"{base}/oauth/token", auth=(client_id, secret),
                             data={"grant_type": "client_credentials"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def _users(base: str, token: str, path: str = "") -> requests.Response:
    return requests.get(f"{base}{USERS}{path}", headers={"Authorization": f"Bearer {token}"},
                        timeout=30)


def _authorize(base: str, browser: requests.Session, login: dict[str, str]) -> requests.Response:
    """The tool's authentication request (LTI Core §5.1.1.2) sent to ``base``."""
    return browser.get(f"{base}/lti/authorize", timeout=30, params={
        "scope": "openid", "response_type": "id_token", "response_mode": "form_post",
        "prompt": "none", "client_id": login["client_id"], "redirect_uri": f"{TOOL}/launch",
        "login_hint": login["login_hint"], "lti_message_hint": login["lti_message_hint"],
        "nonce": uuid.uuid4().hex, "state": uuid.uuid4().hex})


def test_two_hosts_agree_on_tokens_launches_and_imported_data(shared_database_url, redis_url,
                                                              redis_prefix, tmp_path):
    database = Database(shared_database_url)
    client_id, secret, link_id = _set_up(database, write_bundle(tmp_path / "v1", small_district()))
    database.dispose()
    base_env = dict(os.environ, GATEWAY_DATABASE_URL=shared_database_url,
                    GATEWAY_SECRET_KEY="two-hosts-secret", GATEWAY_REDIS_URL=redis_url,
                    GATEWAY_REDIS_KEY_PREFIX=redis_prefix, GATEWAY_LOG_FORMAT="text",
                    GATEWAY_SPOOL_DIR=str(tmp_path / "shared-spool"),
                    GATEWAY_ISSUER="http://gateway.test")
    # Each host has an instance folder of its own; the spool is the storage they share.
    env_a = dict(base_env, GATEWAY_INSTANCE_PATH=str(tmp_path / "host-a"))
    env_b = dict(base_env, GATEWAY_INSTANCE_PATH=str(tmp_path / "host-b"))
    env_worker = dict(base_env, GATEWAY_INSTANCE_PATH=str(tmp_path / "host-w"))
    a = Served(env_a, ["serve", "--workers", "2"], log=tmp_path / "a.log")
    b = Served(env_b, ["serve", "--workers", "2"], log=tmp_path / "b.log")
    worker = WorkerProcess(env_worker, tmp_path / "worker.log")
    try:
        # A token issued by one host is honoured by the other.
        token = _token(a.base, client_id, secret)
        for host in (a, b):
            listed = _users(host.base, token)
            assert listed.status_code == 200, listed.text
            assert listed.headers["X-Total-Count"] == "7"
        assert _users(b.base, token, "/u9").status_code == 404

        # An LTI launch begun on A (sign-in and the portal's launch link) completes on B.
        browser, signed_in = portal_sign_in(a.base, "lisa", PASSWORD)
        assert signed_in.status_code == 303, signed_in.text
        csrf = csrf_token(browser.get(f"{a.base}/portal", timeout=30).text)
        clicked = browser.post(f"{a.base}/portal/launch/{link_id}", data={"csrf_token": csrf},
                               allow_redirects=False, timeout=30)
        assert clicked.status_code == 303, clicked.text
        login = {name: values[0] for name, values in
                 parse_qs(urlsplit(clicked.headers["Location"]).query).items()}
        answered = _authorize(b.base, browser, login)
        assert answered.status_code == 200, answered.text
        id_token = answered.text.split('name="id_token" value="', 1)[1].split('"', 1)[0]
        keys = KeySet.import_key_set(requests.get(f"{a.base}/.well-known/jwks.json",
                                                  timeout=30).json())
        claims = jwt.decode(id_token, keys, algorithms=["RS256"]).claims
        assert claims["https://purl.imsglobal.org/spec/lti/claim/resource_link"]["id"] == link_id
        assert claims["given_name"] == "Lisa"
        # Its one-time message hint is spent on every host.
        for host in (a, b):
            replayed = _authorize(host.base, browser, login)
            assert replayed.status_code == 400
            assert "This launch has already been used; launch again from your portal." in (
                replayed.text)

        # An import queued on A with the CLI is run by the worker; both hosts serve the new
        # data, though both had counted the users before (page caches keyed on data versions).
        files = small_district()
        files["users"].append({"sourcedId": "u9", "enabledUser": "true", "username": "nelson",
                               "givenName": "Nelson", "familyName": "Muntz", "grades": "09",
                               "primaryOrgSourcedId": "s2"})
        files["roles"].append({"sourcedId": "r-u9", "userSourcedId": "u9", "roleType": "primary",
                               "role": "student", "orgSourcedId": "s2"})
        queued = subprocess.run([sys.executable, "-m", "gateway", "import",
                                 str(write_bundle(tmp_path / "v2", files))], env=env_a,
                                capture_output=True, text=True, timeout=300)
        assert queued.returncode == 0, queued.stdout + queued.stderr + worker.output()
        assert queued.stdout.startswith("job ") and "import applied" in queued.stdout
        assert "Successfully completed import" in worker.output()
        for host in (a, b):
            listed = _users(host.base, token)
            assert listed.headers["X-Total-Count"] == "8"
            user = _users(host.base, token, "/u9").json()["user"]
            assert (user["givenName"], user["familyName"]) == ("Nelson", "Muntz")

        # A narrower policy set through B's configuration: both hosts, whose policy caches
        # held the old revision, share only what it names from their next request on.
        policy = tmp_path / "narrower.json"
        policy.write_text('{"schools": ["*"], "allUsers": true, '
                          '"fields": {"user": ["sourcedId", "givenName"]}}')
        narrowed = subprocess.run([sys.executable, "-m", "gateway", "apps", "policy", client_id,
                                   str(policy)], env=env_b, capture_output=True, text=True,
                                  timeout=60)
        assert narrowed.returncode == 0, narrowed.stderr
        for host in (a, b):
            user = _users(host.base, token, "/u9").json()["user"]
            assert (user["givenName"], "familyName" in user) == ("Nelson", False)

        # Revoked through A's configuration: refused by both on their next request (the README's
        # bound: tokens are looked up in the database on every request, nothing is cached).
        revoked = subprocess.run([sys.executable, "-m", "gateway", "apps", "revoke", client_id],
                                 env=env_a, capture_output=True, text=True, timeout=60)
        assert revoked.returncode == 0, revoked.stderr
        for host in (b, a):
            refused = _users(host.base, token)
            assert refused.status_code == 401, refused.text
    finally:
        a.stop()
        b.stop()
        worker.stop()
        remove_queues(redis_url, redis_prefix)
