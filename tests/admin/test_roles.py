"""What each role may do, checked by the server whatever the page offers: a tech lead shares only
their schools and resets passwords only there; the help desk resets students' passwords and
changes nothing else."""
from __future__ import annotations

from gateway.oauth import service
from gateway.store.models import utcnow

from console_support import csrf_of

ROSTER = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"


def user_id(database, username: str) -> int:
    from sqlalchemy import select
    from gateway.store.models import User
    with database.session_scope() as session:
        return session.execute(select(User.id).where(User.username == username)).scalar_one()


def portal_signs_in(app, username: str, password: str) -> bool:
    browser = app.test_client()
    token = csrf_of(browser.get("/login").get_data(as_text=True))
    return browser.post("/login", data={"username": username, "password": password,
                                        "csrf_token": token}).status_code == 303


def test_the_help_desk_resets_students_passwords_only(app, console, database):
    desk, token = console("help@d1.test")
    done = desk.post(f"/admin/people/{user_id(database, 'lisa')}/password",
                     data={"password": "new lisa password", "csrf_token": token, "q": "li"})
    assert done.status_code == 200
    assert "Password set for lisa. Their portal sessions ended." in done.get_data(as_text=True)
    assert portal_signs_in(app, "lisa", "new lisa password")
    teacher = desk.post(f"/admin/people/{user_id(database, 'hoover')}/password",
                        data={"password": "new hoover password", "csrf_token": token})
    assert teacher.status_code == 403
    assert "The help desk may reset students&#39; passwords only." in teacher.get_data(as_text=True)
    assert not portal_signs_in(app, "hoover", "new hoover password")
    for path, data in (("/admin/apps", {"name": "Mine"}), ("/admin/ledger/verify", {}),
                       ("/admin/admins", {"email": "x@d1.test", "role": "help_desk"})):
        refused = desk.post(path, data={**data, "csrf_token": token})
        assert refused.status_code == 403, path
        assert "A help desk may not do this." in refused.get_data(as_text=True)
    admin, _ = console("admin@d1.test")
    log = admin.get("/admin/audit").get_data(as_text=True)
    assert "person.reset_password" in log and log.count("help@d1.test") >= 2


def test_a_tech_lead_shares_and_resets_only_at_their_schools(app, console, database):
    with database.session_scope() as session:
        app_id = service.register_app(session, name="Math app", district_sourced_id="d1",
                                      scopes=None, now=utcnow()).app_id
    lead, token = console("lead@d1.test")
    page = lead.get(f"/admin/apps/{app_id}").get_data(as_text=True)
    assert "Springfield Elementary" in page and "Springfield High" not in page
    form = {"csrf_token": token, "action": "save", "scopes": ROSTER, "f:user.givenName": "shared"}
    everywhere = lead.post(f"/admin/apps/{app_id}/policy", data={**form, "schools_mode": "all"})
    assert everywhere.status_code == 403
    assert "may share only their own schools" in everywhere.get_data(as_text=True)
    other = lead.post(f"/admin/apps/{app_id}/policy",
                      data={**form, "schools_mode": "chosen", "schools": "s2"})
    assert other.status_code == 403
    mine = lead.post(f"/admin/apps/{app_id}/policy",
                     data={**form, "schools_mode": "chosen", "schools": "s1"})
    assert mine.status_code == 200 and "Policy saved (revision 1)." in mine.get_data(as_text=True)
    assert lead.post(f"/admin/apps/{app_id}/rotate", data={"csrf_token": token}).status_code == 200
    # An app the district shares more widely is the district admin's to manage.
    admin, admin_token = console("admin@d1.test")
    widened = admin.post(f"/admin/apps/{app_id}/policy",
                         data={**form, "csrf_token": admin_token, "schools_mode": "all"})
    assert "Policy saved (revision 2)." in widened.get_data(as_text=True)
    for action in ("rotate", "revoke"):
        refused = lead.post(f"/admin/apps/{app_id}/{action}", data={"csrf_token": token})
        assert refused.status_code == 403
        assert "shared beyond your schools" in refused.get_data(as_text=True)

    people = lead.get("/admin/people?q=s").get_data(as_text=True)  # Simpson, Skinner...
    assert "lisa" in people and "bart" not in people
    refused = lead.post(f"/admin/people/{user_id(database, 'bart')}/password",
                        data={"password": "new bart password", "csrf_token": token})
    assert refused.status_code == 403
    assert "This person is not at one of your schools." in refused.get_data(as_text=True)
