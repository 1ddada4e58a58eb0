"""Scope snapshots (gateway.sharing.snapshots) through the REST service: built with the policy,
refreshed by an import in the import's transaction, never used for another data version, and
rebuilt on first use when missing, with the same answers from the live predicates meanwhile."""
from __future__ import annotations

import json

from sqlalchemy import delete, func, select, update

from gateway.cli import cli
from gateway.sharing.snapshots import snapshot_ready
from gateway.store.models import District
from gateway.store.sharing import ScopeMember, ScopeSnapshot, SharingPolicy

from bundles import write_bundle

# School s2, grade 09 only: Bart and Milhouse (k2), and their teacher.
POLICY = {"schools": ["s2"], "grades": ["09"], "fields": {"user": ["*"]}}


def district_id(database) -> int:
    with database.session_scope() as session:
        return session.execute(select(District.id).where(District.sourced_id == "d1")).scalar_one()


def snapshots(database) -> list[tuple[int, int, int]]:
    """(policy revision, data version, member count) of every stored snapshot."""
    with database.session_scope() as session:
        rows = session.execute(
            select(ScopeSnapshot.policy_revision, ScopeSnapshot.data_version,
                   func.count(ScopeMember.row_id))
            .outerjoin(ScopeMember, ScopeMember.snapshot_id == ScopeSnapshot.id)
            .group_by(ScopeSnapshot.id).order_by(ScopeSnapshot.id)).all()
    return [tuple(row) for row in rows]


def test_setting_a_policy_builds_its_snapshot_and_pages_read_through_it(load_small, api_for,
                                                                         database):
    load_small()
    api = api_for(policy=POLICY)
    # 1 class (k2) + 3 users (u2, u3, t-krab); the data version of one import.
    assert snapshots(database) == [(1, 1, 4)]
    assert api.ids("/users") == ["u2", "u3", "t-krab"]
    response = api.get("/users", limit="1", offset="1")
    assert response.headers["X-Total-Count"] == "3"
    assert [u["sourcedId"] for u in response.get_json()["users"]] == ["u3"]
    assert api.ids("/users", filter="familyName='Simpson'") == ["u2"]
    assert api.ids("/classes") == ["k2"]
    assert api.ids("/classes/k2/students") == ["u2", "u3"]
    assert api.get("/users/u4").status_code == 404


def test_a_share_everything_policy_needs_no_snapshot(load_small, api_for, database):
    load_small()
    api = api_for()
    assert snapshots(database) == []
    assert len(api.ids("/users")) == 7


def test_the_cli_import_refreshes_the_snapshot_in_its_transaction(load_small, api_for, database,
                                                                  runner, tmp_path):
    rows = load_small()
    api = api_for(policy=POLICY)
    assert api.ids("/users") == ["u2", "u3", "t-krab"]
    # Martin moves to Biology 1 (grade 09): the next import puts him in scope.
    for row in rows["enrollments"]:
        if row["sourcedId"] == "e6":
            row["classSourcedId"] = "k2"
    result = runner.invoke(cli, ["import", str(write_bundle(tmp_path / "moved", rows))])
    assert result.exit_code == 0, result.output
    assert "sharing scopes refreshed for 1 app(s)" in result.output
    # Only the snapshot of the new data version is left.
    assert snapshots(database) == [(1, 2, 5)]
    assert api.ids("/users") == ["u2", "u3", "u4", "t-krab"]


def test_a_snapshot_of_another_data_version_is_never_used(load_small, api_for, database):
    load_small()
    api = api_for(policy=POLICY)
    district = district_id(database)
    # Data changed without its snapshot being refreshed (here: by hand, plus a version bump): the
    # stale snapshot must not decide, so the user added to the scope shows at once.
    with database.session_scope() as session:
        app_id = session.execute(select(SharingPolicy.app_id)).scalar_one()
        session.execute(update(District).where(District.id == district)
                        .values(data_version=District.data_version + 1))
        assert not snapshot_ready(session, app_id, district)
        # Poison the stale snapshot: were it used, u4 would show.
        stale = session.execute(select(ScopeSnapshot.id)).scalar_one()
        u4 = session.execute(select(func.min(ScopeMember.row_id)).where(
            ScopeMember.snapshot_id == stale)).scalar_one()
        session.execute(delete(ScopeMember).where(ScopeMember.snapshot_id == stale))
        session.add(ScopeMember(snapshot_id=stale, kind="u", row_id=u4, sourced_id="u4"))
    assert api.ids("/users") == ["u2", "u3", "t-krab"]
    # That request rebuilt the snapshot for the current version; the next one reads through it.
    assert snapshots(database) == [(1, 2, 4)]
    with database.session_scope() as session:
        assert snapshot_ready(session, app_id, district)
    assert api.ids("/users") == ["u2", "u3", "t-krab"]
    assert api.get("/classes/k3/students").status_code == 404


def test_replacing_the_policy_replaces_the_snapshot(load_small, api_for, database, runner,
                                                   tmp_path):
    load_small()
    api = api_for(policy=POLICY)
    with database.session_scope() as session:
        app_id = session.execute(select(SharingPolicy.app_id)).scalar_one()
    wider = tmp_path / "wider.json"
    wider.write_text(json.dumps({**POLICY, "grades": ["09", "10"]}))
    result = runner.invoke(cli, ["apps", "policy", str(app_id), str(wider)])
    assert result.exit_code == 0, result.output
    # Revision 2 only: k2 and k3, u2, u3, u4 and t-krab.
    assert snapshots(database) == [(2, 1, 6)]
    assert api.ids("/users") == ["u2", "u3", "u4", "t-krab"]


def members_all_visible(database) -> bool:
    """PostgreSQL: whether every page of scope_members is marked all-visible (vacuumed), so that
    index-only probes need no heap visit."""
    with database.engine.connect() as conn:
        pages, visible = conn.exec_driver_sql(
            "SELECT relpages, relallvisible FROM pg_class "
            "WHERE oid = 'scope_members'::regclass").one()
    if pages > 0 and visible == pages:
        return True
    # On a server shared with other work, a snapshot older than the vacuum (another session's
    # open transaction) keeps the newest pages from being marked: the vacuum must still have run.
    with database.engine.connect() as conn:
        vacuumed, others_hold_snapshots = conn.exec_driver_sql(
            "SELECT (SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'scope_members'::regclass), "
            "EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_xmin IS NOT NULL "
            "AND pid <> pg_backend_pid())").one()
    return bool(vacuumed) and others_hold_snapshots


def test_cli_policy_and_import_leave_the_snapshot_vacuumed(load_small, database, runner,
                                                            tmp_path):
    rows = load_small()
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(POLICY))
    result = runner.invoke(cli, ["apps", "create", "--district", "d1", "--name", "vendor",
                                 "--policy", str(policy_file), "--json"])
    assert result.exit_code == 0, result.output
    assert snapshots(database) == [(1, 1, 4)]
    if database.dialect == "postgresql":
        assert members_all_visible(database)
    for row in rows["enrollments"]:
        if row["sourcedId"] == "e6":
            row["classSourcedId"] = "k2"
    result = runner.invoke(cli, ["import", str(write_bundle(tmp_path / "moved", rows))])
    assert result.exit_code == 0, result.output
    assert snapshots(database) == [(1, 2, 5)]
    if database.dialect == "postgresql":
        assert members_all_visible(database)
