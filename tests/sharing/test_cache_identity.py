"""Every Visibility names its predicates for the page cache (``cache_identity``), and the read
path keys its counts, parent checks and anchors by that name, computed before the first query."""
from __future__ import annotations

from sqlalchemy import event

from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.oneroster.endpoints import endpoint
from gateway.oneroster.service import list_records, parse_collection_params
from gateway.sharing import PolicyCache, Unrestricted, visibility_for
from gateway.sharing.service import set_policy
from gateway.store.models import utcnow
from gateway.store.rostering import PageCache

from bundles import small_district, write_bundle
from sharing_data import MINIMUM_POLICY, SECRET

BASE = "https://gateway.test/ims/oneroster/rostering/v1p2"


def read(session, visibility, cache, district_id, operation="getAllUsers", path_ids=()):
    return list_records(session, endpoint(operation), list(path_ids), parse_collection_params(),
                        district_id=district_id, visibility=visibility, base_url=BASE,
                        cache=cache)


def counting(session):
    """The COUNT statements sent through ``session``'s engine, as a list that grows."""
    seen: list[str] = []

    def collect(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement.lower():
            seen.append(statement)
    event.listen(session.get_bind(), "before_cursor_execute", collect)
    return seen, lambda: event.remove(session.get_bind(), "before_cursor_execute", collect)


def test_every_visibility_carries_an_identity(session, register, small):
    creds = register()
    set_policy(session, app_id=creds.app_id, district_id=small,
               document={**MINIMUM_POLICY, "schools": ["s1"]}, now=utcnow())
    hash(Unrestricted().cache_identity)
    unversioned = [visibility_for(session, app_id=creds.app_id, district_id=small,
                                  secret_key=SECRET) for _ in range(2)]
    # Without a known policy version, each visibility's identity is its own.
    assert unversioned[0].cache_identity != unversioned[1].cache_identity
    policies = PolicyCache()
    versioned = [visibility_for(session, app_id=creds.app_id, district_id=small,
                                secret_key=SECRET, policy_version=(1, 1, "t"), cache=policies)
                 for _ in range(2)]
    # One policy version: one identity, shared by its requests.
    assert versioned[0].cache_identity == versioned[1].cache_identity
    assert versioned[0].cache_identity not in (unversioned[0].cache_identity,
                                               unversioned[1].cache_identity)


def test_counts_are_remembered_per_identity_and_not_across_policies(session, register, small):
    creds = register()
    set_policy(session, app_id=creds.app_id, district_id=small,
               document={**MINIMUM_POLICY, "schools": ["s1"]}, now=utcnow())
    cache = PageCache()
    everything = read(session, Unrestricted(), cache, small).total
    seen, stop = counting(session)
    try:
        assert read(session, Unrestricted(), cache, small).total == everything
        assert seen == []  # the identity named the remembered count: no COUNT sent
        policy = visibility_for(session, app_id=creds.app_id, district_id=small,
                                secret_key=SECRET)
        narrowed = read(session, policy, cache, small).total
        assert len(seen) == 1 and narrowed < everything
        assert read(session, policy, cache, small).total == narrowed
        assert len(seen) == 1
    finally:
        stop()


class _Anonymous(Unrestricted):
    """A stand-in that does not name its predicates (hides every user but u1)."""

    cache_identity = None

    def where(self, entity, table):
        return table.c.sourced_id == "u1" if entity == "user" else None


def test_a_visibility_without_identity_has_nothing_cached_for_it(session, small):
    cache = PageCache()
    assert read(session, _Anonymous(), cache, small).total == 1
    assert read(session, _Anonymous(), cache, small, "getClassesForUser", ["u1"]).total >= 1
    assert len(cache) == 0
    assert read(session, Unrestricted(), cache, small).total > 1
    assert len(cache) > 0


def test_presentations_are_remembered_only_for_shared_identities(session, register, small):
    creds = register()
    # The family name masked: every user record is presented, not sent as rendered.
    set_policy(session, app_id=creds.app_id, district_id=small, document=MINIMUM_POLICY,
               now=utcnow())
    unversioned = PageCache()
    alone = visibility_for(session, app_id=creds.app_id, district_id=small, secret_key=SECRET)
    served = read(session, alone, unversioned, small).records
    assert served and len(unversioned._presented) == 0
    versioned = PageCache()
    shared = visibility_for(session, app_id=creds.app_id, district_id=small, secret_key=SECRET,
                            policy_version=(1, 1, "t"), cache=PolicyCache())
    assert read(session, shared, versioned, small).records == served
    assert len(versioned._presented) == len(served)


def test_a_remembered_presentation_is_not_served_after_an_import_changes_the_record(
        session, database, register, small, tmp_path):
    # Presentations are named by sourcedId and data version, not by the rendering's bytes: an
    # import that changes a record moves the version, so the same process serves the change.
    creds = register()
    set_policy(session, app_id=creds.app_id, district_id=small, document=MINIMUM_POLICY,
               now=utcnow())
    session.commit()
    cache, policies = PageCache(), PolicyCache()

    def lisa() -> dict:
        visibility = visibility_for(session, app_id=creds.app_id, district_id=small,
                                    secret_key=SECRET, policy_version=(1, 1, "t"),
                                    cache=policies)
        [record] = [record for record in read(session, visibility, cache, small).records
                    if record["givenName"] == "Lisa"]
        return record

    assert lisa()["familyName"] == "S."
    assert len(cache._presented) > 0
    session.commit()
    bundle = small_district()
    bundle["users"] = [dict(user, familyName="Bouvier") if user["sourcedId"] == "u1" else user
                       for user in bundle["users"]]
    with database.session_scope() as importing:
        assert import_bundle(importing, write_bundle(tmp_path / "renamed", bundle),
                             ImportOptions()).outcome == "applied"
    assert lisa()["familyName"] == "B."
