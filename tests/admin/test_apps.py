"""Apps in the console: the policy form says what the CLI's policy documents say, deleting an app
keeps the ledger, the dashboard's warnings, and the public transparency page."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from gateway.admin.policy_form import document_from_form, field_rows, row_choices
from gateway.oauth import service
from gateway.sharing.policy import PolicyError, parse_policy
from gateway.sharing.service import set_policy
from gateway.store.models import utcnow

ROSTER = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"
RESTRICTIVE = {
    "description": "Grade 3 math only", "schools": ["s1"], "grades": ["03"], "classes": ["k1"],
    "classRules": [{"subject": "Mathematics", "courseCode": "M3"}], "names": "legal",
    "fields": {"user": ["sourcedId", "givenName", "familyName", "email", "grades"],
               "demographics": ["birthDate", "sex"], "enrollment": ["*"]},
    "mask": {"user.familyName": "initial", "demographics.birthDate": "year"},
    "pseudonymize": ["user.sourcedId"], "scopes": [ROSTER],
    "contract": {"start": "2026-08-01", "end": "2027-07-31"}}


def as_form(policy) -> dict[str, list[str]]:
    """The form a browser sends back for the page showing ``policy`` untouched."""
    rows = row_choices(policy)
    form = {"description": [rows.description], "scopes": sorted(rows.scopes),
            "contract_start": [rows.contract_start], "contract_end": [rows.contract_end],
            "names": [rows.names]}
    for what in ("schools", "grades", "classes"):
        chosen = getattr(rows, what)
        form[f"{what}_mode"] = ["all" if chosen is None else "chosen"]
        form[what] = sorted(chosen or ())
    for index, rule in enumerate(rows.rules):
        for key, value in rule.items():
            form[f"rule_{key}_{index}"] = [value]
    if rows.all_users:
        form["all_users"] = ["on"]
    for entity_rows in field_rows(policy).values():
        for row in entity_rows:
            form[row.name] = [row.current]
    return form


def treatments(policy) -> dict:
    return {(row.entity, row.field): row.current
            for rows in field_rows(policy).values() for row in rows}


def test_the_form_sends_back_the_policy_it_shows():
    policy = parse_policy(RESTRICTIVE)
    again = parse_policy(document_from_form(as_form(policy)))
    assert treatments(again) == treatments(policy)
    for name in ("schools", "grades", "classes", "class_rules", "scopes", "contract_start",
                 "contract_end", "names", "all_users"):
        assert getattr(again, name) == getattr(policy, name), name
    assert again.masks["demographics"]["birthDate"] == "year"
    assert again.treatment("user", "email") == "shared"
    assert again.treatment("user", "phone") == "withheld"


def test_the_form_names_what_makes_no_policy():
    form = as_form(parse_policy(RESTRICTIVE))
    form.update(schools_mode=["chosen"], schools=[], scopes=[], contract_end=[""])
    form["f:user.sourcedId"] = ["withheld"]
    with pytest.raises(PolicyError) as raised:
        document_from_form(form)
    assert raised.value.problems == [
        "Choose at least one of the schools, or all of them.",
        "user.sourcedId cannot be withheld.", "Grant at least one scope.",
        "A contract needs both a start and an end date."]


def test_a_preview_changes_nothing_and_save_applies_it(console, database):
    with database.session_scope() as session:
        app_id = service.register_app(session, name="Math app", district_sourced_id="d1",
                                      scopes=None, now=utcnow()).app_id
    browser, token = console("admin@d1.test")
    form = {**as_form(parse_policy(RESTRICTIVE)), "csrf_token": [token]}
    preview = browser.post(f"/admin/apps/{app_id}/policy", data={**form, "action": ["preview"]})
    text = preview.get_data(as_text=True)
    assert "What this change would do" in text and "Policy saved" not in text
    assert re.search(r"<th scope=\"row\">Students</th><td>0</td><td>1</td>", text), text
    assert "No sharing policy yet: it sees nothing." in text
    saved = browser.post(f"/admin/apps/{app_id}/policy", data={**form, "action": ["save"]})
    text = saved.get_data(as_text=True)
    assert "Policy saved (revision 1)." in text and "What this policy changed" in text
    assert "It sees 1 students, 1 teachers and 1 classes today." in text
    unknown = browser.post(f"/admin/apps/{app_id}/policy", data={
        **form, "classes": ["k1", "k9"], "action": ["save"]})
    assert unknown.status_code == 400
    assert "the policy names classes that district d1 does not have: k9" in \
        unknown.get_data(as_text=True)


def test_deleting_an_app_takes_its_access_and_keeps_the_ledger(console, database, client):
    with database.session_scope() as session:
        created = service.register_app(session, name="Gone app", district_sourced_id="d1",
                                       scopes=None, now=utcnow())
        set_policy(session, app_id=created.app_id, district_id=1,
                   document={"schools": ["*"]}, now=utcnow())
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(created.client_id, created.client_secret)).get_json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/ims/oneroster/rostering/v1p2/users/u1", headers=bearer).status_code == 200
    browser, csrf = console("admin@d1.test")
    unticked = browser.post(f"/admin/apps/{created.app_id}/delete", data={"csrf_token": csrf})
    assert unticked.status_code == 400
    deleted = browser.post(f"/admin/apps/{created.app_id}/delete",
                           data={"csrf_token": csrf, "confirm": "yes"})
    assert deleted.status_code == 303
    assert client.get("/ims/oneroster/rostering/v1p2/users/u1", headers=bearer).status_code == 401
    assert "Gone app" not in browser.get("/admin/apps").get_data(as_text=True)
    record = browser.get("/admin/ledger/export.csv?student=u1")
    assert record.headers["Content-Type"] == "text/csv; charset=utf-8"
    lines = record.get_data(as_text=True).splitlines()
    assert lines[0] == "disclosed_at,app_id,app,channel,endpoint,entity,fields"
    assert any(f",{created.app_id},," in line for line in lines[1:]), lines
    assert "app.delete" in browser.get("/admin/audit").get_data(as_text=True)


def test_the_dashboard_warns_of_empty_policies_and_ending_contracts(console, database):
    soon = (utcnow().date() + dt.timedelta(days=10)).isoformat()
    with database.session_scope() as session:
        for name, document in (
                ("Empty app", {"schools": ["s1"], "grades": ["12"]}),
                ("Ending app", {"schools": ["*"], "contract": {"start": "2026-01-01", "end": soon}}),
                ("Fine app", {"schools": ["*"]})):
            app_id = service.register_app(session, name=name, district_sourced_id="d1",
                                          scopes=None, now=utcnow()).app_id
            set_policy(session, app_id=app_id, district_id=1, document=document, now=utcnow())
    browser, _ = console("help@d1.test")
    page = browser.get("/admin/").get_data(as_text=True)
    warnings = re.findall(r'<p class="warning">(.*?)</p>', page)
    assert warnings == [
        "Empty app: its sharing policy shares nobody&#39;s records, so the app receives no "
        "people.", f"Ending app: its contract ends on {soon}."]


def test_the_transparency_page_shows_live_apps_and_how_they_receive_fields(app, district,
                                                                           database):
    with database.session_scope() as session:
        for name in ("Shown app", "Revoked app"):
            app_id = service.register_app(session, name=name, district_sourced_id="d1",
                                          scopes=None, now=utcnow()).app_id
            set_policy(session, app_id=app_id, district_id=1, document=RESTRICTIVE, now=utcnow())
        service.revoke(session, str(app_id), now=utcnow())
    visitor = app.test_client()
    page = visitor.get("/districts/d1/privacy")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Springfield District" in text
    assert "Shown app" in text and "Revoked app" not in text
    rows = re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td><td>([^<]+)</td></tr>", text)
    assert {row for row in rows if row[0] == "user"} == {
        ("user", "sourcedId", "pseudonymized"), ("user", "givenName", "shared"),
        ("user", "familyName", "masked (initial)"), ("user", "grades", "shared"),
        ("user", "email", "shared")}
    assert ("demographics", "birthDate", "masked (year)") in rows
    assert "2026-08-01 to 2027-07-31" in text
    assert visitor.get("/districts/nope/privacy").status_code == 404
