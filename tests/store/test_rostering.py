"""The rostering queries: anchored (keyset) pages equal OFFSET pages, counts and anchors are
computed once per data version, the plans use the indexes, and a Visibility is honoured by every
read (collection, single, nested, counts, fields, filters, ids, presentation, the ledger)."""
from __future__ import annotations

import datetime as dt
import random
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, insert, or_, select, update

from gateway.errors import InvalidData, InvalidFilterField, InvalidSelectionField, NotFound
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.oneroster.endpoints import endpoint
from gateway.oneroster.schemas import ENTITIES
from gateway.oneroster.service import (get_record, list_records, parse_collection_params)
from gateway.sharing.visibility import Unrestricted
from gateway.oneroster.rendering import render_district
from gateway.store import rostering as store
from gateway.store.models import District
from gateway.store.rostering import PageCache, RecordQuery, SortKey

from bundles import small_district, write_bundle

BASE = "https://gateway.test/ims/oneroster/rostering/v1p2"
users = store.users


# ------------------------------------------------------------------------------------ fixtures

@pytest.fixture
def small(database, tmp_path):
    """The small district d1 imported; returns its district id."""
    return import_small(database, tmp_path / "small")


def import_small(database, path, edit=None) -> int:
    rows = small_district()
    if edit is not None:
        edit(rows)
    with database.session_scope() as session:
        report = import_bundle(session, write_bundle(path, rows), ImportOptions(force=True))
        assert report.outcome == "applied"
        return session.query(District.id).filter_by(sourced_id="d1").scalar()


@pytest.fixture
def crowd(database) -> int:
    """A district of 40 users with repeating names and missing emails, for paging orders."""
    rng = random.Random(7)
    stamp = dt.datetime(2026, 11, 28, 12, 0)
    with database.session_scope() as session:
        district = District(sourced_id="crowd", name="Crowd", data_version=1)
        session.add(district)
        session.flush()
        session.execute(insert(users), [{
            "district_id": district.id, "sourced_id": f"u{i:02d}", "status": "active",
            "date_last_modified": stamp + dt.timedelta(seconds=rng.randrange(3)),
            "row_hash": 0, "enabled_user": rng.random() < 0.5,
            "given_name": rng.choice("ABC"), "family_name": rng.choice("XYZ"),
            "email": None if rng.random() < 0.3 else f"{rng.choice('pqr')}@x.org",
        } for i in range(40)])
        return district.id


@contextmanager
def statements(database):
    """Collect the SQL (and parameters) the block sends."""
    seen: list[tuple[str, object]] = []

    def collect(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))
    event.listen(database.engine, "before_cursor_execute", collect)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", collect)


def read(database, operation: str, path_ids=(), visibility=None, cache=None, **params):
    """list_records for ``operation`` of district d1 (or the crowd), as the service returns it."""
    district_id = params.pop("district_id", 1)
    with database.session_scope() as session:
        return list_records(session, endpoint(operation), list(path_ids),
                            parse_collection_params(**params), district_id=district_id,
                            visibility=visibility or Unrestricted(), base_url=BASE, cache=cache)


def read_one(database, operation: str, sourced_id: str, visibility=None, fields=(), cache=None):
    with database.session_scope() as session:
        return get_record(session, endpoint(operation), sourced_id, fields, district_id=1,
                          visibility=visibility or Unrestricted(), base_url=BASE, cache=cache)


def ids(page) -> list[str]:
    return [record["sourcedId"] for record in page.records]


# ------------------------------------------------------------------------------ deep paging

ORDERS = {
    "primary key": ((), False),
    "primary key desc": ((), True),
    "nullable email": (("email",), False),
    "nullable email desc": (("email",), True),
    "family and given name": (("family_name", "given_name"), False),
    "family and given name desc": (("family_name", "given_name"), True),
    "boolean then date": (("enabled_user", "date_last_modified"), False),
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_anchored_pages_are_exactly_the_offset_pages(database, crowd, order):
    columns, descending = ORDERS[order]
    keys = tuple(SortKey(users.c[name], descending) for name in columns) + \
        (SortKey(users.c.id, descending),)
    for conditions in ([users.c.district_id == crowd],
                       [users.c.district_id == crowd, users.c.given_name != "B"]):
        query = RecordQuery("user", tuple(conditions), keys, cache_key=(order, len(conditions)))
        cache = PageCache(stride=4)
        with database.engine.connect() as conn:
            everything = store.fetch_page(conn, query, 0, 1000)
            assert len(everything) == store.count_records(conn, query)
            for limit in (1, 3, 7):
                for offset in range(0, len(everything) + 3):
                    page = store.fetch_page(conn, query, offset, limit, cache)
                    assert page == everything[offset:offset + limit], (order, offset, limit)


def test_one_kept_statement_serves_every_page_between_two_anchors(database, crowd):
    # The limit and the offset past the anchor are parameters: a page statement is built once
    # per query, order and anchor, and every page read through it is the offset page.
    keys = (SortKey(users.c.email, False), SortKey(users.c.id, False))
    query = RecordQuery("user", (users.c.district_id == crowd,), keys, cache_key=("kept",))
    cache = PageCache(stride=4)
    with database.engine.connect() as conn:
        everything = store.fetch_page(conn, query, 0, 1000)
        for offset in (0, 1, 2, 3):
            for limit in (1, 2, 5):
                assert store.fetch_page(conn, query, offset, limit, cache) == \
                    everything[offset:offset + limit]
        assert len(cache._statements) == 1
        for offset in (4, 5, 7, 8, 9):
            assert store.fetch_page(conn, query, offset, 3, cache) == everything[offset:offset + 3]
        # Anchors 1 and 2 (offsets 4-7 and 8-11): one statement each.
        assert len(cache._statements) == 3


def test_counts_and_anchors_are_computed_once_per_data_version(database, small, tmp_path):
    cache = PageCache(stride=2)
    with statements(database) as seen:
        for _ in range(3):
            page = read(database, "getAllUsers", cache=cache, limit="2", offset="4")
            assert (ids(page), page.total) == (["t-hoover", "t-krab"], 7)
    counts = [s for s, _ in seen if "count(*)" in s]
    anchors = [s for s, _ in seen if "row_number()" in s]
    assert (len(counts), len(anchors)) == (1, 1)

    # An import bumps the data version: the next read counts and anchors afresh.
    def add_user(rows):
        rows["users"].insert(0, {"sourcedId": "u0", "enabledUser": "true", "username": "maggie",
                                 "givenName": "Maggie", "familyName": "Simpson"})
    import_small(database, tmp_path / "again", add_user)
    with statements(database) as seen:
        page = read(database, "getAllUsers", cache=cache, limit="2", offset="6")
    assert (ids(page), page.total) == (["p1", "u0"], 8)
    assert len([s for s, _ in seen if "count(*)" in s]) == 1
    assert len([s for s, _ in seen if "row_number()" in s]) == 1


def test_the_data_version_is_what_invalidates(database, small):
    cache = PageCache()
    assert read(database, "getAllUsers", cache=cache).total == 7
    with database.session_scope() as session:
        session.execute(update(users).where(users.c.sourced_id == "p1").values(district_id=99))
    assert read(database, "getAllUsers", cache=cache).total == 7  # same version: remembered
    with database.session_scope() as session:
        session.execute(update(District).values(data_version=District.data_version + 1))
    assert read(database, "getAllUsers", cache=cache).total == 6


def test_a_read_past_the_remembered_end_checks_for_a_newer_version(database, small, tmp_path):
    cache = PageCache()
    assert read(database, "getAllUsers", cache=cache, offset="7").total == 7

    def add_user(rows):
        rows["users"].append({"sourcedId": "u0", "enabledUser": "true", "username": "maggie",
                              "givenName": "Maggie", "familyName": "Simpson"})
    import_small(database, tmp_path / "again", add_user)
    page = read(database, "getAllUsers", cache=cache, offset="7")
    assert (ids(page), page.total) == (["u0"], 8)


def test_a_rendered_page_reads_no_related_rows(database, small):
    with statements(database) as seen:
        page = read(database, "getAllUsers", cache=PageCache())
    assert not [s for s, _ in seen if "FROM user_profiles" in s or "FROM roles" in s]
    assert page.records[0]["roles"]


def test_the_profile_query_is_skipped_for_pages_without_profile_holders(database, small):
    # Records not rendered yet (a store migrated since its last import) are served as before.
    with database.session_scope() as session:
        session.execute(update(users).values(rendered=None))
    cache = PageCache()
    read(database, "getAllUsers", cache=cache)  # learns who holds profiles
    with statements(database) as seen:
        page = read(database, "getAllUsers", cache=cache, limit="4")
    assert [s for s, _ in seen if "FROM user_profiles" in s] == []
    assert all("userProfiles" not in user for user in page.records)
    with statements(database) as seen:
        page = read(database, "getAllUsers", cache=cache, offset="4", limit="1")
    assert len([s for s, _ in seen if "FROM user_profiles" in s]) == 1
    assert page.records[0]["userProfiles"][0]["profileId"] == "up1"
    with statements(database) as seen:
        assert "userProfiles" not in read_one(database, "getUser", "u1", cache=cache)
        assert read_one(database, "getUser", "t-hoover", cache=cache)["userProfiles"]
    assert len([s for s, _ in seen if "FROM user_profiles" in s]) == 1


def test_profiles_added_by_an_import_are_served_at_once(database, small, tmp_path):
    cache = PageCache()
    assert "userProfiles" not in read_one(database, "getUser", "u1", cache=cache)
    assert "userProfiles" not in read(database, "getAllUsers", cache=cache).records[0]

    def add_profile(rows):
        rows["userProfiles"].append({"sourcedId": "up2", "userSourcedId": "u1",
                                     "profileType": "app", "vendorId": "acme",
                                     "credentialType": "sso", "username": "lisa"})
    import_small(database, tmp_path / "again", add_profile)
    assert read_one(database, "getUser", "u1", cache=cache)["userProfiles"][0]["profileId"] == "up2"
    assert read(database, "getAllUsers", cache=cache).records[0]["userProfiles"][0][
        "profileId"] == "up2"


def test_the_cache_is_bounded():
    cache = PageCache(max_values=3)
    for i in range(5):
        cache.put(i, i)
    assert [cache.get(i) for i in range(5)] == [None, None, 2, 3, 4]


# ------------------------------------------------------------------------------- query plans

def plans(database, seen) -> list[tuple[str, str]]:
    """(statement, EXPLAIN QUERY PLAN details joined) for each SELECT in ``seen``."""
    out = []
    with database.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        for statement, parameters in seen:
            if statement.lstrip().upper().startswith("SELECT"):
                rows = raw.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
                out.append((statement, " | ".join(row[3] for row in rows)))
    return out


VERSION_PROBE = re.compile(
    r" \| SCALAR SUBQUERY \d+ \| SEARCH districts USING INTEGER PRIMARY KEY \(rowid=\?\)")


def plan_of(found: list[tuple[str, str]], *fragments: str) -> str:
    """The plan of the one statement containing ``fragments`` (a page's version probe, a
    primary-key lookup of the district, left out)."""
    [plan] = [plan for statement, plan in found if all(f in statement for f in fragments)]
    return VERSION_PROBE.sub("", plan)


@pytest.fixture
def sqlite_only(database):
    if database.dialect != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")


def test_plans_of_the_hot_reads_use_the_indexes(database, small, sqlite_only):
    with statements(database) as seen:
        read(database, "getAllUsers", limit="100")
    found = plans(database, seen)
    assert plan_of(found, "FROM users", "ORDER BY users.id") == \
        "SEARCH users USING INDEX ix_users_district_id_id (district_id=?)"
    # Related rows are read for records not rendered yet (and by the import's render pass).
    with database.session_scope() as session:
        session.execute(update(users).values(rendered=None))
    with statements(database) as seen:
        read(database, "getAllUsers", limit="100")
    found = plans(database, seen)
    assert plan_of(found, "FROM roles") == (
        "SEARCH roles USING INDEX ix_roles_district_id_user_sourced_id "
        "(district_id=? AND user_sourced_id=?) | USE TEMP B-TREE FOR ORDER BY")
    assert plan_of(found, "FROM user_profiles") == (
        "SEARCH user_profiles USING INDEX ix_user_profiles_district_id_user_sourced_id "
        "(district_id=? AND user_sourced_id=?) | USE TEMP B-TREE FOR ORDER BY")
    with database.engine.begin() as conn:
        assert render_district(conn, 1) == 7

    with statements(database) as seen:
        read(database, "getAllUsers", cache=PageCache(stride=2), limit="2", offset="4")
    assert plan_of(plans(database, seen), "FROM users", "users.id >", "LIMIT") == \
        "SEARCH users USING INDEX ix_users_district_id_id (district_id=? AND id>?)"

    with statements(database) as seen:
        read(database, "getAllUsers", filter="email='lisa@example.edu'")
    assert plan_of(plans(database, seen), "FROM users", "users.email =", "LIMIT").startswith(
        "SEARCH users USING INDEX ix_users_district_id_email (district_id=? AND email=?)")

    with statements(database) as seen:
        read(database, "getStudentsForClass", ["k2"])
    assert plan_of(plans(database, seen), "FROM users", "LIMIT") == (
        "SEARCH users USING INDEX sqlite_autoindex_users_1 (district_id=? AND sourced_id=?) | "
        "LIST SUBQUERY 2 | SEARCH enrollments USING INDEX "
        "ix_enrollments_district_id_class_sourced_id_role "
        "(district_id=? AND class_sourced_id=? AND role=?) | USE TEMP B-TREE FOR ORDER BY")

    with statements(database) as seen:
        read_one(database, "getUser", "u1")
    assert plan_of(plans(database, seen), "FROM users") == \
        "SEARCH users USING INDEX sqlite_autoindex_users_1 (district_id=? AND sourced_id=?)"


# --------------------------------------------------------------------------------- visibility

class HideSchool:
    """A sharing-policy double: hides school s2 and what is in it, withholds users' emails, keeps
    family names out of filters and sorts (as if masked), shows user ids as "anon-<id>", and keeps
    a ledger of what it was told left."""

    def __init__(self, school: str = "s2") -> None:
        self.school = school
        self.ledger: list[tuple] = []

    def where(self, entity, table):
        if entity == "org":
            return table.c.sourced_id != self.school
        if entity in ("class", "enrollment"):
            return table.c.school_sourced_id != self.school
        if entity == "course":
            return table.c.org_sourced_id != self.school
        if entity == "user":
            return or_(table.c.primary_org_sourced_id.is_(None),
                       table.c.primary_org_sourced_id != self.school)
        return None

    def driver(self, entity, table):
        return None

    def fields(self, entity):
        if entity == "user":
            return frozenset(ENTITIES["user"].field_names) - {"email"}
        return None

    def filterable(self, entity):
        if entity == "user":
            return frozenset({"sourcedId", "givenName", "status", "roles"})
        return None

    def resolve_id(self, entity, external_id):
        if entity == "user":
            return external_id[5:] if external_id.startswith("anon-") else None
        return external_id

    def present(self, entity, record):
        record = dict(record)
        if entity == "user":
            record["sourcedId"] = "anon-" + record["sourcedId"]
        if entity == "enrollment":
            record["user"] = {**record["user"], "sourcedId": "anon-" + record["user"]["sourcedId"]}
        return record

    def disclosed(self, channel, endpoint, entity, records, stored_ids):
        self.ledger.append((channel, endpoint, entity, [r["sourcedId"] for r in records],
                            list(stored_ids)))


def test_where_hides_records_from_collections_counts_and_by_id_reads(database, small):
    hide = HideSchool()
    page = read(database, "getAllClasses", visibility=hide)
    assert (ids(page), page.total) == (["k1"], 1)
    assert ids(read(database, "getAllSchools", visibility=hide)) == ["s1"]
    assert ids(read(database, "getAllEnrollments", visibility=hide)) == ["e1", "e2"]
    for operation, sourced_id in (("getClass", "k2"), ("getSchool", "s2"), ("getOrg", "s2"),
                                  ("getCourse", "c2"), ("getEnrollment", "e3")):
        with pytest.raises(NotFound):
            read_one(database, operation, sourced_id, hide)
    # Embedded children are filtered too.
    assert read_one(database, "getOrg", "d1", hide)["children"] == [
        {"href": f"{BASE}/orgs/s1", "sourcedId": "s1", "type": "org"}]


def test_where_applies_to_nested_paths_their_parents_and_links(database, small):
    hide = HideSchool()
    for operation, parents in (("getClassesForSchool", ["s2"]),
                               ("getStudentsForClass", ["k2"]),
                               ("getEnrollmentsForClassInSchool", ["s2", "k2"])):
        with pytest.raises(NotFound):
            read(database, operation, parents, visibility=hide)
    page = read(database, "getStudentsForClass", ["k1"], visibility=hide)
    assert (ids(page), page.total) == (["anon-u1"], 1)
    assert ids(read(database, "getClassesForTeacher", ["anon-t-hoover"], visibility=hide)) == ["k1"]
    assert ids(read(database, "getTermsForSchool", ["s1"], visibility=hide)) == []
    # t-krab is hidden (primary org s2): unknown as a parent.
    with pytest.raises(NotFound):
        read(database, "getClassesForTeacher", ["anon-t-krab"], visibility=hide)


def test_an_or_in_a_filter_never_widens_what_is_visible(database, small):
    hide = HideSchool()
    page = read(database, "getAllClasses", visibility=hide,
                filter="school.sourcedId='s2' OR title~''")
    assert (ids(page), page.total) == (["k1"], 1)


def test_ids_are_resolved_and_records_presented(database, small):
    hide = HideSchool()
    page = read(database, "getAllUsers", visibility=hide)
    assert (ids(page), page.total) == (["anon-u1", "anon-t-hoover", "anon-p1"], 3)
    assert read_one(database, "getUser", "anon-u1", hide)["sourcedId"] == "anon-u1"
    with pytest.raises(NotFound):
        read_one(database, "getUser", "u1", hide)  # the stored id is not an id this app knows
    assert ids(read(database, "getAllUsers", visibility=hide, filter="sourcedId='anon-p1'")) == \
        ["anon-p1"]
    assert ids(read(database, "getAllUsers", visibility=hide, filter="sourcedId='p1'")) == []
    assert ids(read(database, "getAllUsers", visibility=hide, filter="sourcedId!='anon-p1'")) == \
        ["anon-u1", "anon-t-hoover"]
    assert ids(read(database, "getClassesForUser", ["anon-u1"], visibility=hide)) == ["k1"]
    [enrollment] = read(database, "getAllEnrollments", visibility=hide, limit="1").records
    assert enrollment["user"]["sourcedId"] == "anon-u1"


def test_withheld_fields_are_neither_served_nor_accepted(database, small):
    hide = HideSchool()
    assert all("email" not in user for user in read(database, "getAllUsers", visibility=hide).records)
    assert "email" not in read_one(database, "getUser", "anon-t-hoover", hide)
    with pytest.raises(InvalidSelectionField):
        read(database, "getAllUsers", visibility=hide, fields=["sourcedId,email"])
    with pytest.raises(InvalidSelectionField):
        read_one(database, "getUser", "anon-u1", hide, fields=["email"])
    # Withheld or unfilterable fields are refused exactly like unknown ones.
    for expression in ("email~'example'", "familyName='Simpson'", "primaryOrg.sourcedId='s1'"):
        with pytest.raises(InvalidFilterField):
            read(database, "getAllUsers", visibility=hide, filter=expression)
    with pytest.raises(InvalidData, match="cannot be sorted on"):
        read(database, "getAllUsers", visibility=hide, sort="familyName")
    assert ids(read(database, "getAllUsers", visibility=hide, filter="roles.role='teacher'")) == \
        ["anon-t-hoover"]
    assert ids(read(database, "getAllUsers", visibility=hide, sort="givenName")) == \
        ["anon-t-hoover", "anon-u1", "anon-p1"]


def test_every_response_carrying_records_is_reported_as_sent(database, small):
    hide = HideSchool()
    read(database, "getStudentsForClass", ["k1"], visibility=hide)
    read_one(database, "getUser", "anon-p1", hide)
    read(database, "getAllUsers", visibility=hide, filter="givenName='Nobody'")
    assert hide.ledger == [
        ("oneroster-rest", "getStudentsForClass", "user", ["anon-u1"], ["u1"]),
        ("oneroster-rest", "getUser", "user", ["anon-p1"], ["p1"]),
    ]


def test_cached_counts_belong_to_one_visibility(database, small):
    cache = PageCache()
    assert read(database, "getAllUsers", cache=cache).total == 7
    assert read(database, "getAllUsers", cache=cache, visibility=HideSchool()).total == 3
    assert read(database, "getAllUsers", cache=cache, visibility=HideSchool("s1")).total == 5
    assert read(database, "getAllUsers", cache=cache).total == 7


def test_a_visibility_may_name_its_own_cache_identity(database, small):
    class Named(HideSchool):
        def __init__(self, school: str, identity: str) -> None:
            super().__init__(school)
            self.cache_identity = identity

    cache = PageCache()
    assert read(database, "getAllUsers", cache=cache, visibility=Named("s2", "a")).total == 3
    assert read(database, "getAllUsers", cache=cache, visibility=Named("s1", "b")).total == 5
    # The identity is trusted: one that lies shares another's remembered count.
    assert read(database, "getAllUsers", cache=cache, visibility=Named("s1", "a")).total == 3


# ----------------------------------------------------------------------------------- renderings

COLLECTIONS = ("getAllOrgs", "getAllAcademicSessions", "getAllCourses", "getAllClasses",
               "getAllUsers", "getAllEnrollments", "getAllDemographics")


def unrender(database) -> None:
    """Forget every rendering, as a store migrated to 0019 before its next import is."""
    with database.session_scope() as session:
        for entity in ("org", "academicSession", "course", "class", "user", "enrollment",
                       "demographics"):
            session.execute(update(store.ENTITY_TABLES[entity]).values(rendered=None))


def test_renderings_serve_exactly_what_rendering_per_request_serves(database, small):
    served = {operation: read(database, operation).records for operation in COLLECTIONS}
    assert all(served[operation] for operation in COLLECTIONS if operation != "getAllDemographics")
    unrender(database)
    assert {operation: read(database, operation).records for operation in COLLECTIONS} == served


def test_an_import_renders_again_what_it_changed(database, small, tmp_path):
    before = {user["sourcedId"]: user for user in read(database, "getAllUsers").records}

    def edit(rows):
        # A role moves school (the user row itself unchanged), a school gains a parent, a name
        # changes: each rendering that embeds one of them must change.
        next(r for r in rows["roles"] if r["sourcedId"] == "r-u1")["orgSourcedId"] = "s2"
        next(u for u in rows["users"] if u["sourcedId"] == "u2")["givenName"] = "Renamed"
    import_small(database, tmp_path / "again", edit)
    after = {user["sourcedId"]: user for user in read(database, "getAllUsers").records}
    assert after["u1"]["roles"][0]["org"]["sourcedId"] == "s2"
    assert after["u1"]["dateLastModified"] != before["u1"]["dateLastModified"]
    assert after["u2"]["givenName"] == "Renamed"
    assert after["t-krab"] == before["t-krab"]
    with database.session_scope() as session:
        assert not session.execute(select(store.users.c.id).where(
            store.users.c.rendered.is_(None))).first()


def test_a_page_with_an_unrendered_record_is_served_whole(database, small):
    served = read(database, "getAllUsers").records
    with database.session_scope() as session:
        session.execute(update(users).where(users.c.sourced_id == "u3").values(rendered=None))
    assert read(database, "getAllUsers").records == served
    assert read_one(database, "getUser", "u3") == next(u for u in served if u["sourcedId"] == "u3")


def test_a_field_selection_is_cut_from_the_rendering(database, small):
    page = read(database, "getAllUsers", fields=["sourcedId", "givenName"], cache=PageCache())
    assert page.records[0].keys() == {"sourcedId", "givenName"}
