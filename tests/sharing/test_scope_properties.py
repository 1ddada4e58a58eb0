"""Property-based: random districts and random policies, checked against PolicyVisibility and SQL
over the store tables. Nothing outside the policy's scope passes ``where`` (and nothing inside is
lost), ``present`` never emits a withheld field or a clear pseudonymized value, and the ledger
records exactly what ``disclosed`` was told left."""
from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest
from sqlalchemy import select

from gateway.oneroster.schemas import ENTITIES
from gateway.oneroster.serialize import serialize_page
from gateway.sharing import LedgerWriter, PolicyVisibility, Pseudonymizer, parse_policy
from gateway.oauth import service as oauth_service
from gateway.sharing import ledger
from gateway.sharing.ledger import entry_people
from gateway.sharing.scope import STRATEGIES, Scope
from gateway.sharing.service import set_policy
from gateway.sharing.snapshots import current_snapshot_id, needs_snapshot, snapshot_ready
from gateway.store.models import (AcademicSession, Class, Course, Demographics, Enrollment, Org,
                                  Role, User, UserProfile, utcnow)
from gateway.store.sharing import LedgerEntry

from sharing_worlds import Oracle, insert_world, policy_documents, worlds

MODELS = {"org": Org, "academicSession": AcademicSession, "course": Course, "class": Class,
          "user": User, "enrollment": Enrollment, "demographics": Demographics}
BASE = "http://gateway.test/ims/oneroster/rostering/v1p2"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

@pytest.fixture(scope="module", autouse=True)
def people_stay_pending():
    """Entries keep their people pending (no fold) so each response's people can be read back."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ledger, "FOLD_EVERY", 10 ** 12)
        yield


def scenario():
    return worlds().flatmap(lambda world: st.tuples(st.just(world), policy_documents(world)))


def visible_ids(session, scope_where, entity: str, district_id: int) -> set[str]:
    table = MODELS[entity].__table__
    query = select(table.c.sourced_id).where(table.c.district_id == district_id)
    predicate = scope_where(entity, table)
    if predicate is not None:
        query = query.where(predicate)
    return set(session.execute(query).scalars())


@SETTINGS
@given(case=scenario())
def test_where_selects_exactly_the_policy_scope(database, case):
    world, document = case
    policy = parse_policy(document)
    with database.sessionmaker() as session:
        try:
            district_id = insert_world(session, world)
            oracle = Oracle(world, policy)
            for strategy in STRATEGIES:
                scope = Scope(policy, district_id, database.dialect, strategy)
                for entity in MODELS:
                    assert visible_ids(session, scope.where, entity, district_id) == \
                        oracle.visible(entity), (entity, strategy, document)
            # The same rows through the policy's scope snapshot, built when the policy is set.
            app_id = oauth_service.register_app(session, name="Scoped", district_sourced_id="d1",
                                                scopes=None, now=utcnow()).app_id
            set_policy(session, app_id=app_id, district_id=district_id, document=document,
                       now=utcnow())
            assert snapshot_ready(session, app_id, district_id) == needs_snapshot(policy)
            if needs_snapshot(policy):
                scope = Scope(policy, district_id, database.dialect,
                              members=current_snapshot_id(app_id, district_id))
                for entity in MODELS:
                    assert visible_ids(session, scope.where, entity, district_id) == \
                        oracle.visible(entity), (entity, "snapshot", document)
            # A NOT of each predicate is exact too (what previews count with).
            scope = Scope(policy, district_id, database.dialect)
            for entity, model in MODELS.items():
                table = model.__table__
                hidden = set(session.execute(select(table.c.sourced_id).where(
                    table.c.district_id == district_id, ~scope.where(entity, table))).scalars())
                every = set(session.execute(select(table.c.sourced_id).where(
                    table.c.district_id == district_id)).scalars())
                assert hidden == every - oracle.visible(entity), entity
        finally:
            session.rollback()


@SETTINGS
@given(world=worlds())
def test_without_a_policy_nothing_passes(database, world):
    with database.sessionmaker() as session:
        try:
            district_id = insert_world(session, world)
            scope = Scope(None, district_id, database.dialect)
            for entity in MODELS:
                assert visible_ids(session, scope.where, entity, district_id) == set()
        finally:
            session.rollback()


def _records(session, entity: str, district_id: int, ids: set[str]) -> tuple[list, list[str]]:
    """The visible records of ``entity`` serialized as the REST service does, and their ids."""
    table = MODELS[entity].__table__
    rows = session.execute(select(table).where(table.c.district_id == district_id,
                                               table.c.sourced_id.in_(sorted(ids)))
                           .order_by(table.c.sourced_id)).all()
    related = None
    if entity == "user":
        related = {
            "roles": session.execute(select(Role.__table__).where(
                Role.__table__.c.district_id == district_id)).all(),
            "userProfiles": session.execute(select(UserProfile.__table__).where(
                UserProfile.__table__.c.district_id == district_id)).all()}
    elif entity in ("org", "academicSession"):
        related = {"children": session.execute(select(table).where(
            table.c.district_id == district_id)).all()}
    return serialize_page(entity, rows, BASE, related=related), [row.sourced_id for row in rows]


def _walk_refs(value: Any):
    """Every ``{href, sourcedId, type}`` reference inside a record."""
    if isinstance(value, dict):
        if set(value) == {"href", "sourcedId", "type"}:
            yield value
            return
        for item in value.values():
            yield from _walk_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_refs(item)


@SETTINGS
@given(case=scenario(), app_id=st.integers(1, 3))
def test_present_never_leaks_a_withheld_field_or_a_clear_pseudonymized_value(database, case,
                                                                           app_id):
    world, document = case
    policy = parse_policy(document)
    with database.sessionmaker() as session:
        try:
            district_id = insert_world(session, world)
            vis = PolicyVisibility(policy, session=session, app_id=app_id, district_id=district_id,
                                   pseudonyms=Pseudonymizer("k", app_id, district_id),
                                   ledger=LedgerWriter(session, app_id=app_id,
                                                       district_id=district_id))
            oracle = Oracle(world, policy)
            for entity in MODELS:
                ids = oracle.visible(entity)
                if not ids:
                    continue
                records, stored = _records(session, entity, district_id, ids)
                sent = [vis.present(entity, dict(record)) for record in records]
                allowed = vis.fields(entity)
                for clear, out, stored_id in zip(records, sent, stored):
                    assert set(out) <= allowed, (entity, set(out) - allowed)
                    for name, value in out.items():
                        treatment = policy.treatment(entity, name)
                        assert treatment != "withheld"
                        if treatment == "pseudonymized" and clear[name]:
                            assert value != clear[name], (entity, name)
                        if treatment == "masked:initial":
                            assert value == (clear[name][:1] + "." if clear[name] else "")
                    namespace = vis.id_namespace(entity)
                    if namespace:
                        assert out["sourcedId"] != stored_id
                        assert vis.resolve_id(entity, out["sourcedId"]) == stored_id
                        assert vis.resolve_id(entity, stored_id) is None
                    else:
                        assert out["sourcedId"] == stored_id
                    for ref in _walk_refs(out):
                        assert ref["href"].endswith("/" + ref["sourcedId"])
                        if vis.id_namespace(ref["type"]):
                            back = vis.resolve_id(ref["type"], ref["sourcedId"])
                            assert back is not None and back != ref["sourcedId"]
                    if "roles" in out and vis.id_namespace("user"):
                        for role in out["roles"]:
                            if "userProfile" in role:
                                assert not role["userProfile"].startswith("up-")
                # The ledger records exactly what was sent, for entities about people.
                before = session.execute(select(LedgerEntry.seq).order_by(
                    LedgerEntry.seq.desc()).limit(1)).scalar() or 0
                vis.disclosed("rest", f"/{entity}", entity, sent, stored)
                entry = session.execute(select(LedgerEntry).where(
                    LedgerEntry.district_id == district_id, LedgerEntry.seq > before)).scalar_one_or_none()
                if entity not in ("user", "enrollment", "demographics"):
                    assert entry is None
                    continue
                assert entry.record_count == len(sent)
                assert entry.fields == sorted(vis.field_label(entity, name)
                                              for name in {k for r in sent for k in r})
                users = set(entry_people(session, district_id, entry.seq))
                if entity == "enrollment":
                    expected = {e["user_sourced_id"] for e in world.enrollments
                                if e["sourced_id"] in ids}
                else:
                    expected = set(stored)
                assert users == expected
        finally:
            session.rollback()


def test_every_entity_has_a_rule():
    assert set(MODELS) == set(ENTITIES)
