"""The schema is created by migrations and matches the models."""
from __future__ import annotations

import datetime as dt
import json
import os

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
import pytest
from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.exc import IntegrityError

from gateway import create_app
from gateway.cli import cli
from gateway.lti.platform import registration
from gateway.oauth import service
from gateway.oauth.credentials import hash_access_token
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store import LEDGER_SCHEMA, Database, ledger_database_path
from gateway.store.migrate import alembic_config, current_revision, is_up_to_date, upgrade_database
from gateway.store.models import utcnow
from gateway.store.schema import metadata

from bundles import small_district, write_bundle
from resources_bundle import resources_district

LEDGER_TABLES = ("ledger_heads", "ledger_entries", "ledger_pending", "ledger_plans", "ledger_spans",
                 "ledger_folds", "ledger_seals", "ledger_checkpoints")


def expected_metadata(dialect: str) -> MetaData:
    """The models as the database holds them: on SQLite the ledger's tables are in the attached
    ledger file (gateway.store.LEDGER_SCHEMA)."""
    if dialect != "sqlite":
        return metadata
    placed = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(placed, schema=LEDGER_SCHEMA if table.name in LEDGER_TABLES else None)
    return placed


def test_migrations_produce_exactly_the_models(database):
    with database.engine.connect() as conn:
        # SQLite: the main file and the attached ledger file (not "temp").
        opts = {"include_schemas": True,
                "include_name": lambda name, kind, _: kind != "schema" or name in (
                    None, "main", LEDGER_SCHEMA)} if conn.dialect.name == "sqlite" else {}
        context = MigrationContext.configure(conn, opts=opts)
        differences = compare_metadata(context, expected_metadata(conn.dialect.name))
    assert differences == []


def test_on_sqlite_the_ledger_lives_in_its_own_file(database):
    if database.dialect != "sqlite":
        pytest.skip("PostgreSQL keeps the ledger with the store: it has row locks")
    with database.engine.connect() as conn:
        files = {name: path for _, name, path in conn.exec_driver_sql("PRAGMA database_list")}
        main_tables = set(conn.exec_driver_sql(
            "SELECT name FROM main.sqlite_master WHERE type = 'table'").scalars())
        ledger_tables = set(conn.exec_driver_sql(
            "SELECT name FROM ledger.sqlite_master WHERE type = 'table'").scalars())
    assert files["ledger"] == ledger_database_path(files["main"])
    assert files["ledger"].endswith("gateway-ledger.sqlite3")
    assert ledger_tables == set(LEDGER_TABLES) and not main_tables & set(LEDGER_TABLES)


def test_every_roster_table_is_unique_by_district_and_sourced_id(database):
    inspector = inspect(database.engine)
    for table in ("orgs", "academic_sessions", "courses", "classes", "users", "roles",
                  "user_profiles", "enrollments", "demographics"):
        uniques = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)]
        assert ("district_id", "sourced_id") in uniques, table


def test_db_upgrade_command_reports_head(runner, database):
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "at revision 0025" in result.output
    assert is_up_to_date(database)
    assert current_revision(database) == "0025"


@pytest.fixture
def unmigrated_database(tmp_path):
    """An empty database of this test's own (PostgreSQL: a schema of its own), at no revision."""
    base_url = os.environ.get("GATEWAY_TEST_DATABASE_URL")
    schema = f"gateway_migrate_{os.getpid()}"
    if base_url:
        admin = Database(base_url)
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url = f"{base_url}{'&' if '?' in base_url else '?'}options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    database = Database(url)
    yield database
    database.dispose()
    if base_url:
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def test_upgrading_removes_credential_passwords_kept_in_clear(unmigrated_database):
    # 0008: earlier imports kept userProfiles.csv passwords in clear; the upgrade removes them.
    database = unmigrated_database
    upgrade_database(database, "0006")
    with database.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO user_profiles (district_id, sourced_id, status, date_last_modified, row_hash, "
            "user_sourced_id, profile_type, vendor_id, credential_type, username, password) VALUES "
            "(1, 'up1', 'active', '2026-12-01 00:00:00', 0, 'u1', 'lms', 'acme', 'password', 'eh', 'clear-Secret')"))
    upgrade_database(database)
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT username, password FROM user_profiles")).all() == [("eh", None)]


# -- 0011: one token table ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lti", "oneroster", "other"])
def test_a_token_without_the_owner_its_kind_names_is_refused(database, kind):
    with pytest.raises(IntegrityError, match="ck_access_tokens_owner|CHECK|check"):
        with database.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO access_tokens (token_hash, kind, scope, issued_at, expires_at) "
                "VALUES ('h', :kind, '', '2026-12-01 00:00:00', '2026-12-01 01:00:00')"),
                {"kind": kind})


ROSTER_TOKEN, SERVICE_TOKEN = "issued-by-oauth-token-before-0011", "issued-by-lti-token-before-0011"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def downgrade_database(database: Database, revision: str) -> None:
    config = alembic_config(database.url)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def issue_tokens_at_0009(database: Database, tmp_path) -> dict[str, str]:
    """At 0009: the small district, an app connected to it with an LTI tool, and one token of
    each kind in its own table, as the token endpoints then wrote them. Returns the tool's ids."""
    # Today's importer writes today's roster tables: import at the head, then go down to 0009.
    upgrade_database(database)
    with database.session_scope() as session:
        import_bundle(session, write_bundle(tmp_path / "bundle", small_district()),
                      ImportOptions(force=True))
    downgrade_database(database, "0009")
    now = utcnow()
    with database.session_scope() as session:
        app = service.register_app(session, name="Math Tool", district_sourced_id="d1",
                                   scopes=None, now=now)
        tool = registration.register_tool(
            session, app=app.app_id, district=None, name="Math Tool",
            login_url="https://tool.example/login", redirect_uris=["https://tool.example/launch"],
            target_link_uri="https://tool.example/launch", jwks_url="https://tool.example/jwks",
            now=now)
        session.execute(text(
            "INSERT INTO access_tokens (token_hash, app_client_id, district_id, scope, issued_at, "
            "expires_at) SELECT :hash, id, district_id, scope, :now, :expires FROM app_clients"),
            {"hash": hash_access_token(ROSTER_TOKEN), "now": now,
             "expires": now + dt.timedelta(hours=1)})
        session.execute(text(
            "INSERT INTO lti_access_tokens (token_hash, tool_id, scope, issued_at, expires_at) "
            "SELECT :hash, id, scope, :now, :expires FROM lti_tools"),
            {"hash": hash_access_token(SERVICE_TOKEN), "now": now,
             "expires": now + dt.timedelta(hours=1)})
    return {"app_id": app.app_id, "deployment_id": tool.deployment_id}


def call_with_each_token(database: Database, tmp_path, world) -> dict[tuple[str, str], int]:
    """The status of a OneRoster read and of an NRPS read, with each token, on the migrated store."""
    app = create_app({"TESTING": True, "DATABASE_URL": database.url, "SECRET_KEY": "test-secret-key",
                      "ISSUER": "http://gateway.test", "INSTANCE_PATH": str(tmp_path / "instance")})
    try:
        with app.extensions["gateway.db"].session_scope() as session:
            set_policy(session, app_id=world["app_id"], district_id=1,
                       document=share_everything_document(), now=utcnow())
        client = app.test_client()
        urls = {"oneroster": "/ims/oneroster/rostering/v1p2/classes/k2/students",
                "nrps": f"/lti/deployments/{world['deployment_id']}/contexts/k2/memberships"}
        return {(service_name, token): client.get(url, headers={
                    "Authorization": f"Bearer {token}"}).status_code
                for service_name, url in urls.items() for token in (ROSTER_TOKEN, SERVICE_TOKEN)}
    finally:
        app.extensions["gateway.db"].dispose()


def test_0011_moves_the_tokens_of_both_kinds_and_they_keep_working(unmigrated_database, tmp_path):
    database = unmigrated_database
    world = issue_tokens_at_0009(database, tmp_path)

    upgrade_database(database)

    with database.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT kind, app_client_id IS NOT NULL, tool_id IS NOT NULL, district_id "
            "FROM access_tokens ORDER BY kind")).all()
    assert rows == [("lti", False, True, None), ("oneroster", True, False, 1)]
    assert "lti_access_tokens" not in inspect(database.engine).get_table_names()
    # Each token serves its own service, as before, and is unknown to the other.
    assert call_with_each_token(database, tmp_path, world) == {
        ("oneroster", ROSTER_TOKEN): 200, ("oneroster", SERVICE_TOKEN): 401,
        ("nrps", ROSTER_TOKEN): 401, ("nrps", SERVICE_TOKEN): 200}


def test_0011_downgrades_to_two_token_tables(unmigrated_database, tmp_path):
    database = unmigrated_database
    issue_tokens_at_0009(database, tmp_path)
    upgrade_database(database)
    with database.engine.begin() as conn:
        before = conn.execute(text("SELECT token_hash, tool_id, scope, issued_at, expires_at "
                                   "FROM access_tokens WHERE kind = 'lti'")).all()
        # A revoked LTI token stays behind: the old table cannot say it is revoked.
        conn.execute(text(
            "INSERT INTO access_tokens (token_hash, kind, tool_id, scope, issued_at, expires_at, "
            "revoked_at) SELECT 'revoked', kind, tool_id, scope, issued_at, expires_at, issued_at "
            "FROM access_tokens WHERE kind = 'lti'"))

    downgrade_database(database, "0009")

    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT token_hash, tool_id, scope, issued_at, expires_at "
                                 "FROM lti_access_tokens")).all() == before
        assert conn.execute(text("SELECT token_hash FROM access_tokens")).scalars().all() == [
            hash_access_token(ROSTER_TOKEN)]
        columns = {column["name"] for column in inspect(conn).get_columns("access_tokens")}
    assert not {"kind", "tool_id"} & columns
    # And up again: the same store as a direct upgrade.
    upgrade_database(database)
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT kind FROM access_tokens ORDER BY kind")).scalars().all() == [
            "lti", "oneroster"]


# -- 0013: per-person disclosure spans -----------------------------------------------------------

def _v1_entry(prev: str, seq: int, app_id: int, at: dt.datetime, entity: str, fields: list[str],
              users: list[str]) -> dict:
    """An entry as revisions 0003-0011 wrote it: its hash covers its sorted user list."""
    import hashlib
    import json as json_module

    content = {"prev": prev, "district": 1, "app": app_id, "channel": "rest",
               "endpoint": f"/{entity}", "at": at.isoformat(timespec="microseconds"),
               "entity": entity, "fields": fields, "records": len(users), "users": sorted(users)}
    digest = hashlib.sha256(json_module.dumps(content, sort_keys=True, separators=(",", ":"),
                                              ensure_ascii=False).encode()).hexdigest()
    return {"district_id": 1, "seq": seq, "app_id": app_id, "channel": "rest",
            "endpoint": f"/{entity}", "disclosed_at": at, "entity": entity,
            "fields": json_module.dumps(fields), "record_count": len(users), "prev_hash": prev,
            "hash": digest, "users": users}


def test_0013_turns_per_person_rows_into_spans_and_rehashes_the_chain(unmigrated_database):
    from gateway.sharing.ledger import GENESIS, student_disclosures, verify_ledger
    from gateway.store.sharing import LedgerSeal

    database = unmigrated_database
    upgrade_database(database, "0011")
    t0 = dt.datetime(2026, 9, 1, 8)
    plan = [(1, "user", ["givenName"], ["u1", "u2"]), (2, "user", ["givenName"], ["u1"]),
            (1, "enrollment", ["role"], ["u1"]), (1, "user", ["givenName"], ["u2", "u3"]),
            (2, "user", ["givenName"], ["u1"])]
    prev, entries = GENESIS, []
    for seq, (app_id, entity, fields, users) in enumerate(plan, start=1):
        entries.append(_v1_entry(prev, seq, app_id, t0 + dt.timedelta(hours=seq), entity, fields,
                                 users))
        prev = entries[-1]["hash"]
    with database.engine.begin() as conn:
        # Entries 1 and 2 were pruned: the chain starts after a checkpoint.
        conn.execute(text("INSERT INTO ledger_checkpoints (district_id, seq, hash, pruned_at, "
                          "entry_count, cutoff) VALUES (1, 2, :h, :t, 2, :t)"),
                     {"h": entries[1]["hash"], "t": t0})
        for entry in entries[2:]:
            conn.execute(text(
                "INSERT INTO ledger_entries (district_id, seq, app_id, channel, endpoint, "
                "disclosed_at, entity, fields, record_count, prev_hash, hash) VALUES "
                "(:district_id, :seq, :app_id, :channel, :endpoint, :disclosed_at, :entity, "
                ":fields, :record_count, :prev_hash, :hash)"), entry)
            for user in entry["users"]:
                for table in ("ledger_entry_users", "ledger_user_index"):
                    conn.execute(text(f"INSERT INTO {table} (district_id, seq, user_sourced_id) "
                                      "VALUES (1, :s, :u)"), {"s": entry["seq"], "u": user})
        conn.execute(text("INSERT INTO ledger_heads (district_id, seq, hash, indexed_seq) "
                          "VALUES (1, 5, :h, 5)"), {"h": prev})
    upgrade_database(database)
    with database.session_scope() as session:
        result = verify_ledger(session, 1)
        assert result.ok, result.problems
        assert (result.entries, result.first_seq, result.checkpoint_seq, result.folded_seq,
                result.seals) == (3, 3, 2, 5, 1)
        seal = session.execute(select(LedgerSeal)).scalar_one()
        # The old head vouches for the new chain.
        assert (seal.from_seq, seal.to_seq, seal.legacy_hash) == (3, 5, prev)
        assert seal.entry_hash == result.head_hash != prev
        u1 = student_disclosures(session, 1, "u1")
        assert [(a.app_id, a.count, a.first, a.last) for a in u1.apps] == [
            (1, 1, t0 + dt.timedelta(hours=3), t0 + dt.timedelta(hours=3)),
            (2, 1, t0 + dt.timedelta(hours=5), t0 + dt.timedelta(hours=5))]
        assert [p.entity for p in u1.apps[0].plans] == ["enrollment"]
        assert student_disclosures(session, 1, "u3").total == 1
    with database.engine.connect() as conn:
        tables = set(inspect(conn).get_table_names(schema=LEDGER_SCHEMA if
                                                   database.dialect == "sqlite" else None))
    assert "ledger_entry_users" not in tables and "ledger_user_index" not in tables


def test_0013_downgrades_an_empty_ledger_and_refuses_to_drop_a_record(unmigrated_database):
    from gateway.sharing.ledger import record_disclosure

    database = unmigrated_database
    upgrade_database(database)
    downgrade_database(database, "0011")
    upgrade_database(database)
    with database.session_scope() as session:
        record_disclosure(session, app_id=1, district_id=1, channel="rest", endpoint="/users",
                          entity="user", fields=["givenName"], users=["u1"], record_count=1,
                          now=dt.datetime(2026, 9, 1))
    with pytest.raises(RuntimeError, match="cannot be rebuilt from spans"):
        downgrade_database(database, "0011")


def test_0024_renders_again_the_records_that_have_resource_links(unmigrated_database, tmp_path):
    database = unmigrated_database
    upgrade_database(database)
    with database.session_scope() as session:
        import_bundle(session, write_bundle(tmp_path / "bundle", resources_district()),
                      ImportOptions(force=True))
    downgrade_database(database, "0023")

    def renderings(conn) -> dict[str, bytes | None]:
        rows = conn.execute(text("SELECT sourced_id, rendered FROM users"
                                 " UNION ALL SELECT sourced_id, rendered FROM classes")).all()
        return {sid: None if body is None else bytes(body) for sid, body in rows}

    with database.engine.begin() as conn:
        # Going down cleared the renderings that hold references: older code must not serve them.
        before = renderings(conn)
        assert before["u1"] is before["u2"] is before["k1"] is before["k2"] is None
        assert before["u3"] is not None and before["k3"] is not None
        # What 0023's code rendered: no resources.
        conn.execute(text("UPDATE users SET rendered = :stale WHERE sourced_id IN ('u1', 'u2')"),
                     {"stale": b'{"stale":true}'})
        version = conn.execute(text("SELECT data_version FROM districts")).scalar_one()
    app = create_app({"TESTING": True, "DATABASE_URL": database.url,
                      "SECRET_KEY": "test-secret-key", "ISSUER": "http://gateway.test",
                      "INSTANCE_PATH": str(tmp_path / "instance")})
    try:
        result = app.test_cli_runner().invoke(cli, ["db", "upgrade"])
    finally:
        app.extensions["gateway.db"].dispose()
    assert result.exit_code == 0, result.output
    assert "at revision 0025" in result.output
    assert "rendered 5 records" in result.output  # u1, u2, k1, k2 and course c2
    with database.engine.connect() as conn:
        after = renderings(conn)
        assert conn.execute(text("SELECT data_version FROM districts")).scalar_one() == version + 1
    for linked, resource in (("u1", "res-tutor"), ("u2", "res-tutor"), ("k1", "res-math"),
                             ("k2", "res-bio")):
        assert json.loads(after[linked])["resources"] == [{
            "href": f"/../../resources/v1p2/resources/{resource}", "sourcedId": resource,
            "type": "resource"}], linked
    assert after["u3"] == before["u3"] and after["k3"] == before["k3"]
