"""The ``resources`` references of users, classes and courses on the rostering service: each
record names the resources its active links of classResources, courseResources and userResources
give it, by references that point into the Resources service and resolve there; a delta import
that retires a link serves the record without it; a policy that does not grant ``resources``
hides them, by every path, and the ledger records them only when they left."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, text

from gateway.oneroster.endpoints import RESOURCES
from gateway.oneroster.vocabulary import RESOURCES_SCOPES, ROSTERING_SCOPES
from gateway.store.events import Event

from bundles import write_bundle
from csv_export_support import ledger_entries
from resources_bundle import import_resources_district, resources_district
from rostering_api import ISSUER, Api

ALL_SCOPES = (*ROSTERING_SCOPES, *RESOURCES_SCOPES)
RESOURCES_BASE = ISSUER + RESOURCES.base_path


def ref(sourced_id: str) -> dict[str, str]:
    """A reference to a resource, as the rostering service sends it."""
    return {"href": f"{RESOURCES_BASE}/resources/{sourced_id}", "sourcedId": sourced_id,
            "type": "resource"}


# What the small district's resources files give each record (tests/resources_bundle.py).
EXPECTED = {
    "/classes/k1": [ref("res-math")], "/classes/k2": [ref("res-bio")], "/classes/k3": None,
    "/courses/c2": [ref("res-lab")], "/courses/c1": None,
    "/users/u1": [ref("res-tutor")], "/users/u2": [ref("res-tutor")], "/users/u3": None,
}


@pytest.fixture
def files(load_bundle, tmp_path) -> dict:
    """The small district with its resources files imported; returns the rows."""
    return import_resources_district(load_bundle, tmp_path)


@pytest.fixture
def api(api_for):
    """An app sharing the whole district, holding the rostering and the resources scopes."""
    def build(policy=None) -> Api:
        return api_for(scopes=ALL_SCOPES, **({} if policy is None else {"policy": policy}))
    return build


def single(api: Api, path: str, **params) -> dict:
    response = api.get(path, **params)
    assert response.status_code == 200, response.get_json()
    [record] = response.get_json().values()
    return record


def test_records_by_id_and_in_pages_name_their_resources(files, api):
    shared = api()
    for path, expected in EXPECTED.items():
        record = single(shared, path)
        assert record.get("resources") == expected, path
    for collection in ("/users", "/classes", "/courses"):
        served = {f"{collection}/{r['sourcedId']}": r.get("resources")
                  for r in shared.records(collection)}
        assert {p: v for p, v in served.items() if p in EXPECTED} == {
            p: v for p, v in EXPECTED.items() if p.startswith(collection + "/")}
    # Nested collections serve the same records.
    assert [r.get("resources") for r in shared.records("/classes/k1/students")] == [
        [ref("res-tutor")]]
    assert {r["sourcedId"]: r.get("resources") for r in shared.records("/schools/s2/classes")} == {
        "k2": [ref("res-bio")], "k3": None}
    # Selected alone, or left out.
    assert single(shared, "/users/u1", fields="sourcedId,resources") == {
        "sourcedId": "u1", "resources": [ref("res-tutor")]}
    assert "resources" not in single(shared, "/users/u1", fields="sourcedId,givenName")


def test_a_reference_resolves_in_the_resources_service_with_the_same_token(files, api, client):
    shared = api()
    for path in ("/users/u1", "/classes/k1", "/courses/c2"):
        [reference] = single(shared, path)["resources"]
        href = urlsplit(reference["href"])
        assert f"{href.scheme}://{href.netloc}" == ISSUER
        assert ".." not in href.path and href.path.startswith(RESOURCES.base_path + "/resources/")
        response = client.get(href.path, headers={"Authorization": f"Bearer {shared.token}"})
        assert response.status_code == 200, (href.path, response.get_json())
        assert response.get_json()["resource"]["sourcedId"] == reference["sourcedId"]


def test_references_are_the_same_rendered_or_not(files, api, database):
    shared = api()
    rendered = {path: single(shared, path) for path in EXPECTED}
    pages = {path: shared.records(path) for path in ("/users", "/classes", "/courses")}
    # A store migrated since its last import holds records without renderings: served as before.
    with database.session_scope() as session:
        for table in ("users", "classes", "courses"):
            session.execute(text(f"UPDATE {table} SET rendered = NULL"))
    fresh = api()
    assert {path: single(fresh, path) for path in EXPECTED} == rendered
    assert {path: fresh.records(path) for path in pages} == pages


def test_a_delta_that_retires_a_link_serves_the_record_without_it(files, api, load_bundle,
                                                                  tmp_path, database):
    shared = api()
    before = single(shared, "/users/u1")
    with database.session_scope() as session:
        seen = session.execute(select(func.max(Event.seq))).scalar_one()
    later = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    delta = {
        "userResources": [{"sourcedId": "ur1", "status": "tobedeleted",
                           "dateLastModified": "2030-01-02T03:04:05.000Z", "userSourcedId": "u1",
                           "classSourcedId": "k1", "resourceSourcedId": "res-tutor"}],
        "classResources": [{"sourcedId": "cr3", "status": "active",
                            "dateLastModified": "2030-01-02T03:04:05.000Z",
                            "classSourcedId": "k3", "resourceSourcedId": "res-lab"}],
    }
    load_bundle(write_bundle(tmp_path / "delta", delta,
                             modes={"userResources": "delta", "classResources": "delta"}),
                now=later.replace(tzinfo=None), district="d1")
    after = single(shared, "/users/u1")
    assert "resources" not in after
    # A record whose representation changed is re-stamped, so that dateLastModified> finds it.
    assert after["dateLastModified"] == "2030-01-02T03:04:05.000Z" != before["dateLastModified"]
    assert {k: v for k, v in after.items() if k not in ("dateLastModified",)} == {
        k: v for k, v in before.items() if k not in ("dateLastModified", "resources")}
    assert single(shared, "/classes/k3")["resources"] == [ref("res-lab")]
    # Records whose links did not change keep their renderings and stamps.
    assert single(shared, "/users/u2")["resources"] == [ref("res-tutor")]
    assert shared.ids("/users", filter="dateLastModified>'2030-01-01T00:00:00Z'") == ["u1"]
    assert shared.ids("/classes", filter="dateLastModified>'2030-01-01T00:00:00Z'") == ["k3"]
    # And the change feed says so.
    with database.session_scope() as session:
        events = session.execute(select(Event.entity, Event.sourced_id, Event.kind)
                                 .where(Event.seq > seen)).all()
    assert {("user", "u1", "updated"), ("class", "k3", "updated")} <= set(events)
    assert not {("user", "u2"), ("class", "k1")} & {(e, s) for e, s, _ in events}


def test_a_bulk_file_that_leaves_a_link_out_retires_it(files, api, load_bundle, tmp_path):
    rows = resources_district()
    rows["classResources"] = [r for r in rows["classResources"] if r["classSourcedId"] != "k2"]
    load_bundle(write_bundle(tmp_path / "again", rows))
    shared = api()
    assert "resources" not in single(shared, "/classes/k2")
    assert single(shared, "/classes/k1")["resources"] == [ref("res-math")]


def test_resources_can_be_filtered_on(files, api):
    shared = api()
    assert shared.ids("/users", filter="resources.sourcedId='res-tutor'") == ["u1", "u2"]
    assert shared.ids("/classes", filter="resources.sourcedId='res-bio'") == ["k2"]
    assert shared.ids("/courses", filter="resources.sourcedId!='res-lab'") == ["c1"]


def test_a_star_policy_grants_resources_and_the_ledger_records_them_when_they_leave(
        files, api, database):
    everyone = api({"schools": ["*"], "fields": {"user": ["*"]}})
    assert single(everyone, "/users/u1")["resources"] == [ref("res-tutor")]
    assert "resources" not in single(everyone, "/users/u3")
    # A page presented for a policy (not the rendering as it is) resolves them too.
    assert {r["sourcedId"]: r.get("resources") for r in everyone.records(
        "/users", filter="sourcedId='u1' OR sourcedId='u3'")} == {"u1": [ref("res-tutor")],
                                                                  "u3": None}
    first, second, page = ledger_entries(database)
    assert "resources" in first["fields"] and first["people"] == ["u1"]
    assert "resources" not in second["fields"] and second["people"] == ["u3"]
    assert "resources" in page["fields"] and page["people"] == ["u1", "u3"]


def test_a_policy_that_does_not_grant_resources_hides_them_by_every_path(files, api, database):
    named = {"user": ["givenName", "familyName", "roles", "enabledUser"],
             "class": ["title", "course", "school", "terms"],
             "course": ["title", "courseCode"]}
    hidden = api({"schools": ["*"], "fields": named})
    for path in EXPECTED:
        assert "resources" not in single(hidden, path), path
    for collection in ("/users", "/classes", "/courses", "/classes/k1/students"):
        assert all("resources" not in r for r in hidden.records(collection)), collection
    refused = hidden.get("/users/u1", fields="sourcedId,resources")
    assert refused.status_code == 400
    assert refused.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"] == "invalid_selection_field"
    # Filtering on a withheld field is refused like an unknown one: it would reveal the links.
    filtered = hidden.get("/users", filter="resources.sourcedId='res-tutor'")
    assert filtered.status_code == 400
    assert all("resources" not in entry["fields"] for entry in ledger_entries(database))


def test_the_resources_base_follows_the_public_base_url(files, api, app):
    shared = api()
    previous = app.config["ISSUER"]
    app.config["ISSUER"] = "https://sis.example.org/gateway"
    try:
        [reference] = single(shared, "/users/u1")["resources"]
    finally:
        app.config["ISSUER"] = previous
    assert reference["href"] == (
        "https://sis.example.org/gateway/ims/oneroster/resources/v1p2/resources/res-tutor")
