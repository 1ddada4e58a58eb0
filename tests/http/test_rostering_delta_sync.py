"""A delta sync from a client's point of view: read everything, let the district import a changed
bulk export, then ask only for what changed since the newest dateLastModified it had seen."""
from __future__ import annotations

import time


def newest_stamp(api, *paths: str) -> str:
    """The newest dateLastModified among every record the client read."""
    return max(record["dateLastModified"] for path in paths
               for record in api.records(path, limit="10000"))


def test_changed_and_deleted_records_are_exactly_what_a_sync_gets(load_small, api_for):
    load_small()
    api = api_for("d1")
    collections = ("/orgs", "/academicSessions", "/courses", "/classes", "/users",
                   "/enrollments", "/demographics")
    since = newest_stamp(api, *collections)
    time.sleep(0.01)  # the store keeps milliseconds: the next import is strictly later

    def change(rows):
        rows["users"][0]["givenName"] = "Lisa Marie"  # u1 changed
        rows["users"] = [u for u in rows["users"] if u["sourcedId"] != "u3"]  # u3 removed
        rows["roles"] = [r for r in rows["roles"] if r["userSourcedId"] != "u3"]
        rows["enrollments"] = [e for e in rows["enrollments"] if e["userSourcedId"] != "u3"]
        rows["classes"][1]["title"] = "Biology 1 (honors)"  # k2 changed
        krab_role = next(r for r in rows["roles"] if r["userSourcedId"] == "t-krab")
        krab_role["roleType"] = "secondary"  # t-krab's role changed: the user embeds it
    load_small(change)

    changed = {path: api.records(path, filter=f"dateLastModified>'{since}'", limit="10000")
               for path in collections}
    assert {path: [(r["sourcedId"], r["status"]) for r in records]
            for path, records in changed.items()} == {
        "/orgs": [], "/academicSessions": [], "/courses": [], "/demographics": [],
        "/classes": [("k2", "active")],
        "/users": [("u1", "active"), ("u3", "tobedeleted"), ("t-krab", "active")],
        "/enrollments": [("e4", "tobedeleted")],
    }
    assert changed["/users"][0]["givenName"] == "Lisa Marie"
    assert changed["/users"][2]["roles"][0]["roleType"] == "secondary"
    # The deletion is visible where the client looks for students too.
    assert api.ids("/students", filter=f"dateLastModified>'{since}'") == ["u1", "u3"]
    # A second sync from the newest stamp now seen gets nothing.
    again = newest_stamp(api, *collections)
    assert all(api.records(path, filter=f"dateLastModified>'{again}'") == []
               for path in collections)
