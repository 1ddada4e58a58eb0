"""Property-based, through HTTP: random districts, random policies, random requests.

For every request tried against the REST service (collections, nested collections and by-id
reads, with random ``fields``, ``filter``, ``sort`` and paging), no response carries a record
the policy's scope leaves out or a field it withholds, ``X-Total-Count`` counts only visible
records, naming a withheld field is refused exactly as an unknown one, and the disclosure
ledger records exactly what was sent: the students whose records left and the fields, nothing
when nothing about a person left.
"""
from __future__ import annotations

import base64
import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest
from sqlalchemy import func, select

from gateway.oauth import service as oauth_service
from gateway.oneroster.schemas import ENTITIES
from gateway.oneroster.service import CHANNEL
from gateway.oneroster.vocabulary import ROSTERING_SCOPES
from gateway.sharing import parse_policy, visibility_for
from gateway.sharing import ledger
from gateway.sharing.ledger import entry_people
from gateway.sharing.policy import PEOPLE_ENTITIES
from gateway.sharing.service import set_policy
from gateway.store.models import utcnow
from gateway.store.sharing import LedgerEntry

from sharing_worlds import Oracle, insert_world, policy_documents, worlds

BASE = "/ims/oneroster/rostering/v1p2"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

# (path, entity, wrapper key) of the top-level collections; nested ones are built per world.
COLLECTIONS = [("/users", "user", "users"), ("/students", "user", "users"),
               ("/teachers", "user", "users"), ("/classes", "class", "classes"),
               ("/courses", "course", "courses"), ("/enrollments", "enrollment", "enrollments"),
               ("/demographics", "demographics", "demographics"), ("/orgs", "org", "orgs"),
               ("/schools", "org", "orgs"), ("/academicSessions", "academicSession",
                                             "academicSessions"),
               ("/terms", "academicSession", "academicSessions")]
WHOLE = ("/users", "/classes", "/courses", "/enrollments", "/demographics", "/orgs",
         "/academicSessions")
SINGLE = {"user": ("/users", "user"), "class": ("/classes", "class"),
          "enrollment": ("/enrollments", "enrollment"), "org": ("/orgs", "org"),
          "demographics": ("/demographics", "demographics"), "course": ("/courses", "course")}
_districts = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def people_stay_pending():
    """Entries keep their people pending (no fold) so each response's people can be read back."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger, "FOLD_EVERY", 10 ** 12)
        yield


def served(entity: str) -> list[str]:
    return [name for name, spec in ENTITIES[entity].fields.items() if spec.served]


def scalar_fields(entity: str) -> list[str]:
    return [name for name, spec in ENTITIES[entity].fields.items() if spec.scalar]


@st.composite
def requests(draw, world, entity_paths):
    """A random request: a path (collection, nested or by-id) and its query parameters."""
    kind = draw(st.sampled_from(["collection", "collection", "nested", "single"]))
    if kind == "single":
        entity = draw(st.sampled_from(sorted(SINGLE)))
        ids = entity_paths[entity]
        stored = draw(st.sampled_from(ids)) if ids else "nope"
        fields = draw(st.lists(st.sampled_from(served(entity)), max_size=3, unique=True))
        return {"kind": kind, "entity": entity, "stored": stored,
                "fields": ["sourcedId", *fields] if fields and "sourcedId" not in fields else fields}
    if kind == "nested":
        classes = entity_paths["class"] or ["nope"]
        schools = entity_paths["school"] or ["nope"]
        path, entity, key = draw(st.sampled_from([
            ("/classes/{}/students", "user", "users"), ("/classes/{}/teachers", "user", "users"),
            ("/schools/{}/enrollments", "enrollment", "enrollments"),
            ("/schools/{}/students", "user", "users"), ("/schools/{}/classes", "class", "classes")]))
        parent = draw(st.sampled_from(classes if path.startswith("/classes") else schools))
        parent_entity = "class" if path.startswith("/classes") else "org"
    else:
        path, entity, key = draw(st.sampled_from(COLLECTIONS))
        parent = parent_entity = None
    filter_field = None
    params: dict[str, Any] = {"limit": draw(st.sampled_from([1, 2, 5, 100])),
                              "offset": draw(st.sampled_from([0, 0, 1, 3]))}
    if draw(st.booleans()):
        # sourcedId always, so that each record sent can be traced back to the stored one.
        params["fields"] = ",".join(["sourcedId"] + draw(st.lists(
            st.sampled_from([name for name in served(entity) if name != "sourcedId"]),
            min_size=1, max_size=4, unique=True)))
    if draw(st.booleans()):
        field = draw(st.sampled_from(scalar_fields(entity)))
        op = draw(st.sampled_from(["=", "!=", "~", ">"]))
        value = draw(st.sampled_from(["a", "active", "2026-01-01", "s1", "u1", "S"]))
        params["filter"] = f"{field}{op}'{value}'"
        filter_field = field
        if draw(st.booleans()):
            params["filter"] += " OR status='active'"
    if draw(st.booleans()):
        params["sort"] = draw(st.sampled_from(scalar_fields(entity)))
        params["orderBy"] = draw(st.sampled_from(["asc", "desc"]))
    return {"kind": kind, "path": path, "entity": entity, "key": key, "parent": parent,
            "parent_entity": parent_entity, "params": params, "filter_field": filter_field}


def scenario():
    def with_requests(world):
        paths = {"user": [u["sourced_id"] for u in world.users],
                 "class": [k["sourced_id"] for k in world.classes],
                 "enrollment": [e["sourced_id"] for e in world.enrollments],
                 "org": [o["sourced_id"] for o in world.orgs],
                 "school": [o["sourced_id"] for o in world.orgs if o["type"] == "school"],
                 "demographics": [d["sourced_id"] for d in world.demographics],
                 "course": [c["sourced_id"] for c in world.courses]}
        return st.tuples(st.just(world), policy_documents(world),
                         st.lists(requests(world, paths), min_size=1, max_size=6))
    return worlds().flatmap(with_requests)


def connect(database, client, world, document) -> tuple[int, int, str]:
    """A new district holding ``world``, an app with ``document`` as its policy there, and a
    bearer token for it: (district id, app id, token)."""
    with database.session_scope() as session:
        district_sourced_id = f"prop-{next(_districts)}"
        district_id = insert_world(session, world, district_sourced_id)
        creds = oauth_service.register_app(session, name="Property App",
                                           district_sourced_id=district_sourced_id,
                                           scopes=list(ROSTERING_SCOPES), now=utcnow())
        set_policy(session, app_id=creds.app_id, district_id=district_id, document=document,
                   now=utcnow())
    basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers={"Authorization": "Basic " + basic})
    assert response.status_code == 200, response.get_json()
    return district_id, creds.app_id, response.get_json()["access_token"]


def last_seq(session, district_id: int) -> int:
    return session.execute(select(func.max(LedgerEntry.seq)).where(
        LedgerEntry.district_id == district_id)).scalar() or 0


def check_ledger(session, vis, district_id: int, before: int, entity: str,
                 records: list[dict], stored_ids: list[str]) -> None:
    """The entries written since ``before`` say exactly what ``records`` disclosed."""
    entries = session.execute(select(LedgerEntry).where(
        LedgerEntry.district_id == district_id, LedgerEntry.seq > before)).scalars().all()
    if entity not in PEOPLE_ENTITIES or not records:
        assert entries == []
        return
    assert len(entries) == 1
    entry = entries[0]
    assert entry.channel == CHANNEL and entry.entity == entity
    assert entry.record_count == len(records)
    names = {name for record in records for name in record}
    assert sorted(entry.fields) == sorted(vis.field_label(entity, name) for name in names)
    users = set(entry_people(session, district_id, entry.seq))
    if entity == "enrollment":
        enrolled = {e["sourced_id"]: e["user_sourced_id"] for e in check_ledger.world.enrollments}
        assert users == {enrolled[sid] for sid in stored_ids}
    else:
        assert users == set(stored_ids)


@SETTINGS
@given(case=scenario())
def test_no_response_leaves_the_policy_and_the_ledger_records_it(app, client, database, case):
    world, document, tried = case
    # Every top-level collection in full first, then the random requests.
    whole = [{"kind": "collection", "path": path, "entity": entity, "key": key, "parent": None,
              "parent_entity": None, "params": {"limit": 10000}, "filter_field": None,
              "whole": True}
             for path, entity, key in COLLECTIONS if path in WHOLE]
    tried = whole + tried
    policy = parse_policy(document)
    oracle = Oracle(world, policy)
    district_id, app_id, token = connect(database, client, world, document)
    headers = {"Authorization": f"Bearer {token}"}
    check_ledger.world = world
    with database.sessionmaker() as session:
        vis = visibility_for(session, app_id=app_id, district_id=district_id,
                             secret_key=app.config["SECRET_KEY"])
        visible = {entity: oracle.visible(entity) for entity in ENTITIES}
        for request in tried:
            entity = request["entity"]
            allowed = vis.fields(entity)
            before = last_seq(session, district_id)
            session.commit()  # see the request's own commits from here on
            if request["kind"] == "single":
                path, key = SINGLE[entity]
                sent_id = vis.present(entity, {"sourcedId": request["stored"]})["sourcedId"]
                query = {"fields": ",".join(request["fields"])} if request["fields"] else {}
                response = client.get(f"{BASE}{path}/{sent_id}", query_string=query,
                                      headers=headers)
                if any(name not in allowed for name in request["fields"]):
                    assert response.status_code == 400, response.get_json()
                    continue
                if request["stored"] not in visible[entity]:
                    assert response.status_code == 404, (request, response.get_json())
                    check_ledger(session, vis, district_id, before, entity, [], [])
                    continue
                assert response.status_code == 200, (request, response.get_json())
                records = [response.get_json()[key]]
            else:
                path = request["path"]
                if request["parent"] is not None:
                    parent_sent = vis.present(request["parent_entity"],
                                              {"sourcedId": request["parent"]})["sourcedId"]
                    path = path.format(parent_sent)
                params = request["params"]
                response = client.get(BASE + path, query_string=params, headers=headers)
                body = response.get_json()
                asked = params.get("fields", "").split(",") if "fields" in params else []
                filtered = request["filter_field"]
                named = asked + ([params["sort"]] if "sort" in params else [])
                withheld_named = any(name not in allowed for name in named)
                if withheld_named:
                    assert response.status_code in (400, 404), (request, body)
                    continue
                if response.status_code == 404:
                    # Only a parent the app may not see (or that does not exist) is a 404.
                    assert request["parent"] not in visible[request["parent_entity"]], request
                    continue
                if response.status_code == 400:
                    # Filtering or sorting on a field the app may not filter on (refused like an
                    # unknown one), or a filter value that is not of the field's type.
                    minor = body["imsx_CodeMinor"]["imsx_codeMinorField"][0][
                        "imsx_codeMinorFieldValue"]
                    if minor == "invalid_filter_field":
                        assert filtered not in vis.filterable(entity), (request, body)
                    else:
                        assert minor == "invaliddata" and ("filter" in params or "sort" in params), body
                    continue
                # A field the app may not filter or sort on is never accepted.
                assert "filter" not in params or filtered in vis.filterable(entity), request
                assert params.get("sort", "sourcedId") in vis.filterable(entity) | {"sourcedId"}, request
                assert response.status_code == 200, (request, body)
                records = body[request["key"]]
                total = int(response.headers["X-Total-Count"])
                assert total <= len(visible[entity]), (request, total)
                if request.get("whole"):
                    # The whole collection: exactly the visible records, counted exactly.
                    assert total == len(visible[entity]), (request, total)
                    assert {vis.resolve_id(entity, r["sourcedId"]) for r in records} == \
                        visible[entity], request
            stored_ids = []
            for record in records:
                assert set(record) <= allowed, (request, set(record) - allowed)
                stored = vis.resolve_id(entity, record["sourcedId"])
                assert stored in visible[entity], (request, record["sourcedId"])
                stored_ids.append(stored)
            session.commit()
            check_ledger(session, vis, district_id, before, entity, records, stored_ids)
