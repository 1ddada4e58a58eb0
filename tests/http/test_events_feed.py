"""The change feed, ``GET /events``, from the outside: what imports and policy changes put in it,
what each app sees of it (its scope, its pseudonyms), paging by cursor, expiry, the ledger."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from gateway.events.feed import prune_events
from gateway.importing import run_import
from gateway.oneroster.csv.importer import ImportOptions
from gateway.sharing.service import app_district_id, set_policy
from gateway.store.apps import AppClient
from gateway.store.models import utcnow
from gateway.store.sharing import LedgerEntry

from bundles import write_bundle
from rostering_api import Api

K2_ONLY = {"schools": ["s2"], "classes": ["k2"]}


def feed(api: Api, after: str | None = None, limit: int | None = None):
    """GET /events with the app's token; the response."""
    params = {}
    if after is not None:
        params["after"] = after
    if limit is not None:
        params["limit"] = str(limit)
    return api.client.get("/events", query_string=params,
                          headers={"Authorization": f"Bearer {api.token}"})


def all_events(api: Api, after: str = "0", limit: int = 3) -> tuple[list[dict], str]:
    """Every event after ``after``, page by page (asserting each page), and the last cursor."""
    events: list[dict] = []
    while True:
        response = feed(api, after, limit)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["events"]) <= limit
        events += body["events"]
        assert int(body["next"]) >= int(after)
        after = body["next"]
        if not body["more"]:
            return events, after


def head(api: Api) -> str:
    """The cursor after everything the app may see now."""
    return all_events(api, "0", 1000)[1]


def test_an_import_s_changes_are_events_paged_by_cursor(load_small, api_for):
    rows = load_small()
    api = api_for()
    events, cursor = all_events(api, limit=4)
    # Every record of the first import, created, each once, in cursor order.
    users = [e["sourcedId"] for e in events if e["entity"] == "user"]
    assert sorted(users) == sorted(u["sourcedId"] for u in rows["users"])
    assert {e["entity"] for e in events} >= {"org", "academicSession", "course", "class", "user",
                                             "enrollment"}
    assert {e["type"] for e in events} == {"created"}
    cursors = [int(e["cursor"]) for e in events]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    assert set(events[0]) == {"cursor", "type", "entity", "sourcedId", "time"}

    def edit(rows):
        rows["users"][0]["givenName"] = "Elisabeth"  # u1 changes
        rows["users"] = [u for u in rows["users"] if u["sourcedId"] != "u4"]  # u4 retired
        rows["enrollments"] = [e for e in rows["enrollments"] if e["userSourcedId"] != "u4"]
        rows["roles"] = [r for r in rows["roles"] if r["userSourcedId"] != "u4"]
        rows["demographics"] = [d for d in rows.get("demographics", []) if d["sourcedId"] != "u4"]
    load_small(edit)
    later, _ = all_events(api, cursor, limit=2)
    by_user = {e["sourcedId"]: e["type"] for e in later if e["entity"] == "user"}
    assert by_user == {"u1": "updated", "u4": "deleted"}
    assert all(int(e["cursor"]) > int(cursor) for e in later)
    # Nothing changed since: the feed is at its head.
    response = feed(api, later[-1]["cursor"] if later else cursor)
    assert [e["cursor"] for e in response.get_json()["events"]] == [
        e["cursor"] for e in later if int(e["cursor"]) > int(later[-1]["cursor"])]


def test_an_app_sees_only_events_of_its_scope_with_the_ids_rest_shows_it(load_small, api_for):
    load_small()
    policy = dict(K2_ONLY, pseudonymize=["user.sourcedId"])
    restricted, everything = api_for(policy=policy), api_for()
    start_r, start_e = head(restricted), head(everything)

    def edit(rows):
        for user in rows["users"]:
            if user["sourcedId"] in ("u1", "u2"):  # u1 outside k2, u2 inside
                user["familyName"] = "Changed"
    load_small(edit)
    seen, _ = all_events(restricted, start_r)
    visible_ids = set(restricted.ids("/users"))
    assert [(e["entity"], e["type"]) for e in seen] == [("user", "updated")]
    assert seen[0]["sourcedId"] in visible_ids and seen[0]["sourcedId"] != "u2"
    # It is u2's pseudonym: REST shows that id with u2's name.
    [record] = [u for u in restricted.records("/users") if u["sourcedId"] == seen[0]["sourcedId"]]
    assert record["givenName"] == "Bart"
    # The app sharing everything sees both, in clear.
    assert sorted(e["sourcedId"] for e in all_events(everything, start_e)[0]) == ["u1", "u2"]


def test_a_policy_change_tells_the_app_what_left_and_entered_its_scope(load_small, api_for,
                                                                         database):
    load_small()
    api = api_for(policy={"schools": ["s1", "s2"], "classes": ["k1"]})
    start = head(api)
    with database.session_scope() as session:
        client = session.execute(select(AppClient).order_by(AppClient.id.desc())).scalars().first()
        set_policy(session, app_id=client.app_id,
                   district_id=app_district_id(session, client.app_id, "d1"),
                   document=K2_ONLY, now=utcnow())
    moved = {(e["entity"], e["sourcedId"], e["type"]) for e in all_events(api, start)[0]}
    assert {("class", "k1", "left"), ("user", "u1", "left"), ("class", "k2", "entered"),
            ("user", "u2", "entered"), ("enrollment", "e1", "left")} <= moved
    assert not any(sid in ("k3", "u4") for _, sid, _ in moved)


def run_import_of(database, directory, rows) -> None:
    """Import ``rows`` the way every entry point does (the apps' scopes rebuilt with it)."""
    outcome = run_import(database, write_bundle(directory, rows), ImportOptions(force=True))
    assert outcome.report.outcome == "applied"


def test_a_data_change_that_moves_a_student_out_of_scope_is_a_left_event(load_small, api_for,
                                                                         database, tmp_path):
    rows = load_small()
    api = api_for(policy=K2_ONLY)
    assert "u3" in api.ids("/users")
    start = head(api)

    for enrollment in rows["enrollments"]:  # u3's enrollment moves from k2 to k3, out of scope
        if enrollment["userSourcedId"] == "u3":
            enrollment["classSourcedId"] = "k3"
    run_import_of(database, tmp_path / "moved", rows)
    assert "u3" not in api.ids("/users")
    events = all_events(api, start)[0]
    assert ("user", "u3", "left") in {(e["entity"], e["sourcedId"], e["type"]) for e in events}
    # The enrollment itself is now out of scope: its update is not shown to this app.
    assert not any(e["entity"] == "enrollment" and e["type"] == "updated" for e in events)


def test_cursors_older_than_the_kept_events_have_expired(load_small, api_for, database):
    load_small()
    api = api_for()
    _, cursor = all_events(api, limit=1000)
    with database.session_scope() as session:
        removed = prune_events(session, utcnow() + dt.timedelta(days=1))
    assert removed > 0
    response = feed(api, "0")
    assert response.status_code == 410
    assert response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"] == "cursor_expired"
    # The cursor the app had reached is still good, and so is no cursor at all (from the oldest).
    assert feed(api, cursor).get_json() == {"events": [], "next": cursor, "more": False}
    assert feed(api).get_json() == {"events": [], "next": cursor, "more": False}


def test_bad_requests(load_small, api_for, client):
    load_small()
    api = api_for()
    assert client.get("/events").status_code == 401
    assert feed(api, "abc").status_code == 400
    assert feed(api, "99999999").status_code == 400
    assert feed(api, "0", 0).status_code == 400
    assert feed(api, "0", 5000).status_code == 400


def test_a_feed_page_naming_people_is_in_the_ledger(load_small, api_for, database):
    load_small()
    api = api_for(policy=dict(K2_ONLY, pseudonymize=["user.sourcedId"]))
    events, _ = all_events(api, limit=1000)
    with database.session_scope() as session:
        entries = session.execute(select(LedgerEntry).where(LedgerEntry.channel == "events")
                                  ).scalars().all()
    users = [e for e in events if e["entity"] == "user"]
    assert users
    by_entity = {entry.entity: entry for entry in entries}
    assert by_entity["user"].fields == ["sourcedId:pseudonym"]
    assert by_entity["user"].record_count == len(users)
    assert by_entity["user"].endpoint == "/events"
