"""The portal: sign-in with CSRF-protected forms and hardened cookies, and the list of tools a
person may launch in each of their classes."""
from __future__ import annotations

import re

from sqlalchemy import update

from gateway import create_app
from gateway.lti.platform.portal import set_password
from gateway.oauth import service
from gateway.store.apps import AppClient
from gateway.store.lti import Tool
from gateway.store.models import utcnow

from bundles import small_district, write_bundle
from lti_support import PASSWORD, csrf_of, forms, portal_csrf


def login_page(client) -> str:
    return client.get("/login").get_data(as_text=True)


def test_login_form_carries_a_csrf_token(client):
    response = client.get("/login")

    assert response.status_code == 200
    [form] = forms(response.get_data(as_text=True))
    assert form["action"] == "/login" and form["method"] == "post"
    assert set(form["fields"]) == {"csrf_token", "username", "password"}
    assert len(form["fields"]["csrf_token"]) >= 32


def test_sign_in_and_see_the_portal(client, passwords):
    token = csrf_of(login_page(client))
    response = client.post("/login", data={"username": "lisa", "password": PASSWORD,
                                           "csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"] == "/portal"
    page = client.get("/portal")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Hello, Lisa</h1>" in text and "Springfield District" in text
    # A class without anything to launch is not listed: the page says there is nothing yet.
    assert "Math 3A" not in text and "No apps have been placed for you yet." in text
    assert "Biology" not in text
    # The CSRF token changes on sign-in: one planted before cannot be reused after.
    assert csrf_of(text) != token


def test_sign_in_refuses_a_missing_or_wrong_csrf_token(client, passwords):
    login_page(client)
    for data in ({"username": "lisa", "password": PASSWORD},
                 {"username": "lisa", "password": PASSWORD, "csrf_token": "forged"}):
        response = client.post("/login", data=data)
        assert response.status_code == 400
        assert "The form has expired or was not sent from this site" in response.get_data(as_text=True)
    assert client.get("/portal").status_code == 302


def test_sign_in_refuses_a_cross_origin_post(client, passwords):
    token = csrf_of(login_page(client))
    response = client.post("/login", data={"username": "lisa", "password": PASSWORD,
                                           "csrf_token": token},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 400
    assert "sent from another site" in response.get_data(as_text=True)


def test_wrong_password_unknown_user_and_disabled_accounts_do_not_sign_in(client, passwords, database):
    from gateway.store.models import User

    with database.session_scope() as session:
        session.execute(update(User).where(User.username == "bart").values(enabled_user=False))
    for username, password in (("lisa", "wrong password"), ("nobody", PASSWORD), ("bart", PASSWORD)):
        token = csrf_of(login_page(client))
        response = client.post("/login", data={"username": username, "password": password,
                                               "csrf_token": token})
        assert response.status_code == 200
        assert "Unknown username or wrong password." in response.get_data(as_text=True)
        assert client.get("/portal").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, passwords):
    token = csrf_of(login_page(client))
    response = client.post("/login", data={"username": "lisa", "password": PASSWORD,
                                           "csrf_token": token})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_over_https(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "k",
                      "INSTANCE_PATH": str(tmp_path / "i"), "ISSUER": "https://gateway.example"})
    response = app.test_client().get("/login", base_url="https://gateway.example")
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    app.extensions["gateway.db"].dispose()


def test_logout_needs_the_csrf_token(client, sign_in):
    sign_in("lisa")
    assert client.post("/logout").status_code == 400
    assert client.get("/portal").status_code == 200
    response = client.post("/logout", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert client.get("/portal").status_code == 302


def test_an_ambiguous_username_asks_for_the_district(client, database, passwords, tmp_path):
    from gateway.oneroster.csv.importer import ImportOptions, import_bundle

    rows = small_district()
    rows["orgs"][0].update(sourcedId="d2", name="Shelbyville District")
    for org in rows["orgs"][1:]:
        org["parentSourcedId"] = "d2"
    for role in rows["roles"]:
        if role["orgSourcedId"] == "d1":
            role["orgSourcedId"] = "d2"
    with database.session_scope() as session:
        assert import_bundle(session, write_bundle(tmp_path / "d2", rows),
                             ImportOptions(force=True)).outcome == "applied"
        set_password(session, "lisa", PASSWORD, district="d2")

    token = csrf_of(login_page(client))
    response = client.post("/login", data={"username": "lisa", "password": PASSWORD,
                                           "csrf_token": token})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.findall(r'<option value="([^"]+)">([^<]+)</option>', page) == [
        ("d1", "Springfield District"), ("d2", "Shelbyville District")]
    response = client.post("/login", data={"username": "lisa", "password": PASSWORD,
                                           "district": "d2", "csrf_token": csrf_of(page)})
    assert response.status_code == 303
    assert "Shelbyville District" in client.get("/portal").get_data(as_text=True)


def test_portal_lists_placed_tools_per_class(client, sign_in, tool, make_tool, place, database):
    place(tool.client_id, "k1", title="Fractions")
    place(tool.client_id, "k2", title="Cells")
    hidden = make_tool(slug="hidden", on_portal=False)
    place(hidden.client_id, "k1", title="Hidden")
    pending = make_tool(slug="pending", status="pending")
    place(pending.client_id, "k1", title="Pending")

    sign_in("lisa")
    page = client.get("/portal").get_data(as_text=True)

    assert "Fractions" in page and '<span class="sub">Math Tool</span>' in page
    assert "Cells" not in page and "Hidden" not in page and "Pending" not in page
    # A student may not add content.
    assert "Add content from" not in page
    launch_forms = [f for f in forms(page) if f["action"].startswith("/portal/launch/")]
    assert len(launch_forms) == 1


def test_instructors_may_add_content_from_deep_linking_tools(client, sign_in, tool):
    sign_in("hoover")
    page = client.get("/portal").get_data(as_text=True)
    [picker] = [f for f in forms(page) if f["action"] == "/portal/deep-linking"]
    assert picker["fields"]["class"] == "k1"
    assert "Add content from Math Tool" in page


def test_a_revoked_app_disappears_from_the_portal(client, sign_in, tool, place, database, app_id):
    place(tool.client_id, "k1", title="Fractions")
    with database.session_scope() as session:
        service.revoke(session, str(app_id), now=utcnow())
    sign_in("lisa")
    assert "Fractions" not in client.get("/portal").get_data(as_text=True)


def test_launch_needs_sign_in_and_csrf(client, tool, place, sign_in):
    link_id = place(tool.client_id, "k1")
    assert client.post(f"/portal/launch/{link_id}").status_code == 400
    sign_in("lisa")
    assert client.post(f"/portal/launch/{link_id}").status_code == 400
    response = client.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 303


def test_a_link_in_someone_elses_class_cannot_be_launched(client, tool, place, sign_in):
    link_id = place(tool.client_id, "k2")
    sign_in("lisa")
    response = client.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 403
    assert "class you are not enrolled in" in response.get_data(as_text=True)


def test_pending_tools_cannot_be_launched(client, tool, place, sign_in, database):
    link_id = place(tool.client_id, "k1")
    with database.session_scope() as session:
        session.execute(update(Tool).values(status="pending"))
    sign_in("lisa")
    response = client.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 403


def test_revoked_app_cannot_be_launched(client, tool, place, sign_in, database):
    link_id = place(tool.client_id, "k1")
    with database.session_scope() as session:
        session.execute(update(AppClient).values(revoked_at=utcnow()))
    sign_in("lisa")
    response = client.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 403


def test_a_one_letter_password_from_the_sis_signs_nobody_in(client, app, passwords, tmp_path):
    # users.csv sets lisa's password to "a": the import is refused, her password stays hers.
    from gateway.cli import cli

    rows = small_district()
    rows["users"][0]["password"] = "a"
    result = app.test_cli_runner().invoke(cli, ["import", str(write_bundle(tmp_path / "weak", rows))])
    assert result.exit_code == 1
    assert ("users.csv:2: column password: value '(not shown)', expected a password of 8 to 1024 "
            "characters (the portal's password rule), or an empty value for no portal password") in result.output
    refused = client.post("/login", data={"username": "lisa", "password": "a",
                                          "csrf_token": csrf_of(login_page(client))})
    assert refused.status_code == 200
    assert "Unknown username or wrong password." in refused.get_data(as_text=True)
    signed_in = client.post("/login", data={"username": "lisa", "password": PASSWORD,
                                            "csrf_token": csrf_of(login_page(client))})
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/portal"
