"""Portal sessions live in the store: sign-out, a password change and an admin's revocation end
every session of the person, on every worker (two apps on one database stand for two workers),
and a cookie captured before is worth nothing after."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from gateway.cli import cli
from gateway.store.accounts import PortalSession
from gateway.store.models import utcnow

from lti_support import portal_csrf


def cookie_of(browser) -> str:
    return browser.get_cookie("session").value


def replay(app, cookie: str):
    """GET /portal from a fresh browser carrying a captured session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/portal")


def signed_in(response) -> bool:
    if response.status_code == 302:
        assert response.headers["Location"] == "/login"
        return False
    assert response.status_code == 200
    return True


def sign_out(browser):
    response = browser.post("/logout", data={"csrf_token": portal_csrf(browser)})
    assert response.status_code == 303 and response.headers["Location"] == "/login"


def test_a_cookie_captured_before_sign_out_no_longer_signs_in(app, client, sign_in):
    sign_in("lisa")
    captured = cookie_of(client)
    assert signed_in(replay(app, captured))

    sign_out(client)

    assert not signed_in(replay(app, captured))
    assert not signed_in(client.get("/portal"))


def test_sign_out_ends_every_session_of_the_person_only(app, client, sign_in):
    phone, laptop, brother = app.test_client(), app.test_client(), app.test_client()
    for browser, username in ((phone, "lisa"), (laptop, "lisa"), (brother, "bart")):
        sign_in(username, browser)

    sign_out(phone)

    assert not signed_in(laptop.get("/portal"))
    assert signed_in(brother.get("/portal"))


def test_a_password_change_ends_the_sessions(app, client, sign_in, runner):
    sign_in("lisa")
    captured = cookie_of(client)

    result = runner.invoke(cli, ["users", "set-password", "lisa", "--password", "a new password"])

    assert result.exit_code == 0, result.output
    assert not signed_in(replay(app, captured))
    # The new password signs in again.
    sign_in("lisa", app.test_client(), password="a new password")


def test_an_admin_revokes_every_session_of_a_person(app, client, sign_in, runner):
    other = app.test_client()
    sign_in("lisa")
    sign_in("lisa", other)
    sign_in("bart", app.test_client())
    captured = cookie_of(client)

    result = runner.invoke(cli, ["users", "revoke-sessions", "lisa"])

    assert result.exit_code == 0, result.output
    assert result.output == "ended 2 portal session(s) of lisa (Lisa Simpson, Springfield District)\n"
    assert not signed_in(replay(app, captured))
    assert not signed_in(other.get("/portal"))
    again = runner.invoke(cli, ["users", "revoke-sessions", "lisa"])
    assert again.output == "ended 0 portal session(s) of lisa (Lisa Simpson, Springfield District)\n"


def test_revoking_the_sessions_of_an_unknown_person_says_so(runner, passwords):
    result = runner.invoke(cli, ["users", "revoke-sessions", "nobody"])
    assert result.exit_code == 1
    assert result.output == "Error: no user with username 'nobody'\n"


def test_sessions_are_shared_by_every_worker(app, client, sign_in, second_app):
    sign_in("lisa")
    captured = cookie_of(client)
    assert signed_in(replay(second_app, captured))

    # Signed out on the other worker: over on this one too.
    other = second_app.test_client()
    other.set_cookie("session", captured)
    sign_out(other)

    assert not signed_in(replay(app, captured))
    assert not signed_in(client.get("/portal"))


def test_a_revocation_through_another_worker_ends_the_session_here(app, client, sign_in,
                                                                   second_app):
    sign_in("lisa")
    result = second_app.test_cli_runner().invoke(cli, ["users", "revoke-sessions", "lisa"])

    assert result.exit_code == 0, result.output
    assert not signed_in(client.get("/portal"))


def test_a_session_ends_after_its_lifetime(app, client, sign_in, database):
    app.config["PORTAL_SESSION_LIFETIME_SECONDS"] = 60
    sign_in("lisa")
    with database.session_scope() as session:
        stored = session.execute(select(PortalSession)).scalar_one()
        assert stored.expires_at - stored.created_at == dt.timedelta(seconds=60)
        session.execute(update(PortalSession).values(
            expires_at=utcnow() - dt.timedelta(seconds=1)))

    assert not signed_in(client.get("/portal"))
    # Ended sessions are dropped as new ones are made.
    sign_in("bart", app.test_client())
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(PortalSession)).scalar_one() == 1


def test_the_cookie_holds_no_user_id(app, client, sign_in):
    sign_in("lisa")
    with client.session_transaction() as cookie:
        assert set(cookie) == {"portal_session", "csrf_token"}
        # An old-style cookie naming a user id signs nobody in.
        cookie["portal_user"] = {"id": 1, "district": 1}
        del cookie["portal_session"]
    assert not signed_in(client.get("/portal"))
