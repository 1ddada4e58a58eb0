"""Staff accounts: the first one from the CLI, sign-in and its throttle, sessions that end
everywhere, invitations, and CSRF on every form."""
from __future__ import annotations

import json

from gateway.cli import cli

from console_support import PASSWORD, csrf_of


def test_admins_create_makes_the_first_account_from_the_environment(runner, district):
    result = runner.invoke(cli, ["admins", "create", "--district", "d1", "--email", "New@D1.test",
                                 "--role", "tech_lead", "--school", "s2", "--json"],
                           env={"GATEWAY_ADMIN_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"id": 4, "email": "new@d1.test", "role": "tech_lead",
                                         "district": "d1", "schools": ["s2"]}


def test_admins_create_refuses_what_cannot_work(runner, district):
    env = {"GATEWAY_ADMIN_PASSWORD": PASSWORD}
    for args, message in (
            (["--district", "nope", "--email", "a@b.test", "--role", "help_desk"],
             "no district 'nope': import it first"),
            (["--district", "d1", "--email", "a@b.test", "--role", "tech_lead"],
             "a school tech lead needs at least one school"),
            (["--district", "d1", "--email", "admin@d1.test", "--role", "help_desk"],
             "admin@d1.test is already an admin of district d1"),
            (["--district", "d1", "--email", "not-an-address", "--role", "help_desk"],
             "'not-an-address' is not an email address")):
        result = runner.invoke(cli, ["admins", "create", *args], env=env)
        assert result.exit_code == 1 and f"Error: {message}" in result.output, result.output
    short = runner.invoke(cli, ["admins", "create", "--district", "d1", "--email", "c@d.test",
                                "--role", "help_desk"], env={"GATEWAY_ADMIN_PASSWORD": "short"})
    assert "an admin needs a password of 8 to 1024 characters" in short.output


def test_pages_need_a_signed_in_admin(app, district):
    browser = app.test_client()
    for path in ("/admin/", "/admin/apps", "/admin/ledger/export.csv?student=u1", "/admin/audit"):
        response = browser.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/admin/login"


def test_wrong_passwords_lock_the_account_even_for_the_right_one(app, district):
    browser = app.test_client()
    token = csrf_of(browser.get("/admin/login").get_data(as_text=True))
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]):
        wrong = browser.post("/admin/login", data={"email": "admin@d1.test", "password": "nope",
                                                   "csrf_token": token})
        assert "Unknown email address or wrong password." in wrong.get_data(as_text=True)
    locked = browser.post("/admin/login", data={"email": "ADMIN@d1.test", "password": PASSWORD,
                                                "csrf_token": token})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    # The portal's counters are another matter: the same name there is another account.
    assert browser.get("/admin/").status_code == 302


def test_every_form_needs_the_token_and_this_site_as_origin(console):
    browser, token = console("admin@d1.test")
    missing = browser.post("/admin/apps", data={"name": "Sneaky"})
    assert missing.status_code == 400
    assert "The form has expired" in missing.get_data(as_text=True)
    foreign = browser.post("/admin/apps", data={"name": "Sneaky", "csrf_token": token},
                           headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 400
    assert "The form was sent from another site." in foreign.get_data(as_text=True)
    # At the address the request came to, the same form goes through.
    here = browser.post("/admin/apps", data={"name": "Fine", "csrf_token": token},
                        headers={"Origin": "http://localhost"})
    assert here.status_code == 200 and "Fine connected" in here.get_data(as_text=True)
    assert "Sneaky" not in browser.get("/admin/apps").get_data(as_text=True)


def test_signing_out_ends_the_session_in_every_browser(console):
    first, token = console("admin@d1.test")
    second, _ = console("admin@d1.test")
    assert second.get("/admin/").status_code == 200
    assert first.post("/admin/logout", data={"csrf_token": token}).status_code == 303
    assert second.get("/admin/").status_code == 302


def test_an_invitation_sets_a_password_once_and_disabling_ends_sessions(app, console):
    browser, token = console("admin@d1.test")
    page = browser.post("/admin/admins", data={"email": "Nurse@d1.test", "role": "help_desk",
                                               "csrf_token": token}).get_data(as_text=True)
    link = page.split('id="invite-link">', 1)[1].split("<", 1)[0]
    path = link.removeprefix("http://localhost").replace("&amp;", "&")
    assert path.startswith("/admin/invite?token=")
    guest = app.test_client()
    invite = guest.get(path).get_data(as_text=True)
    assert "nurse@d1.test" in invite and "Help desk" in invite
    invitation = path.split("=", 1)[1]
    differ = guest.post("/admin/invite", data={"password": "one password", "token": invitation,
                                               "confirm": "another one",
                                               "csrf_token": csrf_of(invite)})
    assert "The two passwords differ." in differ.get_data(as_text=True)
    accepted = guest.post("/admin/invite", data={"password": "nurse password",
                                                 "token": invitation,
                                                 "confirm": "nurse password",
                                                 "csrf_token": csrf_of(invite)})
    assert accepted.status_code == 303
    assert guest.get(path).status_code == 404
    nurse, _ = console("nurse@d1.test", "nurse password")
    assert nurse.get("/admin/").status_code == 200

    admins = browser.get("/admin/admins").get_data(as_text=True)
    # The three staff accounts came first: the nurse is account 4.
    form = admins.split('action="/admin/admins/4/disable"', 1)[1].split("</form>", 1)[0]
    assert 'aria-label="Disable nurse@d1.test"' in form
    disabled = browser.post("/admin/admins/4/disable", data={"csrf_token": token})
    assert disabled.status_code == 303
    assert nurse.get("/admin/").status_code == 302
    log = browser.get("/admin/audit").get_data(as_text=True)
    for action in ("admin.invite", "admin.accept_invite", "admin.disable"):
        assert action in log
