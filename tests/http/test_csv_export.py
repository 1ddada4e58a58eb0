"""``gateway export``: an app's OneRoster 1.2.1 CSV bundle is exactly what REST serves it (scope,
masks, pseudonyms, withheld fields), re-imports, has deltas, and is in the ledger before it is in
place; bad inputs are refused clearly and leave nothing behind."""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway import create_app, exporting
from gateway.cli import cli
from gateway.oneroster.csv import binding
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.oneroster.vocabulary import (RESOURCES_SCOPES, ROSTERING_SCOPES, SCOPE_ROSTER,
                                          SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.sharing.ledger import SpooledLedgerWriter, verify_ledger
from gateway.sharing.policy import share_everything_document
from gateway.store import Database, ledger_database_path
from gateway.store.migrate import upgrade_database
from gateway.store.models import District

from bundles import write_bundle
from csv_export_support import as_csv, connected, ledger_entries, read_bundle
from resources_bundle import resources_district

RESTRICTED = {
    "schools": ["s2"], "grades": ["09"],
    "fields": {"user": ["*"], "demographics": ["*"]},
    "mask": {"user.familyName": "initial", "demographics.birthDate": "year"},
    "pseudonymize": ["user.sourcedId", "user.username"],
}
"""Students of grade 09 at Springfield High; familyName and birthDate masked, user ids and
usernames pseudonymized, email (and the other contact fields, agents, profiles) withheld."""

# Each file, and the REST collection that serves the same records.
COLLECTIONS = (("orgs", "/orgs"), ("academicSessions", "/academicSessions"),
               ("courses", "/courses"), ("classes", "/classes"), ("users", "/users"),
               ("enrollments", "/enrollments"), ("demographics", "/demographics"))


def run_export(runner, *args: str):
    return runner.invoke(cli, ["export", *args])


def test_a_restricted_apps_export_is_what_rest_serves_it_field_by_field(
        connect_app, load_small, client, database, runner, tmp_path):
    load_small()
    app = connected(connect_app, client, RESTRICTED, ROSTERING_SCOPES)
    out = tmp_path / "restricted.zip"
    result = run_export(runner, "--app", app.client_id, "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest, files, headers = read_bundle(out)

    for name, path in COLLECTIONS:
        served = app.api.records(path, limit=1000)
        if not served:
            assert manifest[f"file.{name}"] == "absent" and name not in files
            continue
        assert manifest[f"file.{name}"] == "bulk"
        assert headers[name] == list(binding.ROSTERING_BY_NAME[name].header)
        rows = files[name]
        # The same records, in the order REST serves them, each field as REST has it.
        assert [row["sourcedId"] for row in rows] == [record["sourcedId"] for record in served]
        for row, record in zip(rows, served):
            expected = as_csv(name, record, delta=False)
            assert {column: row[column] for column in expected} == expected, name
            # Columns REST has no value for (passwords) are blank.
            assert all(row[column] == "" for column in row if column not in expected), name

    users = files["users"]
    # The scope: grade 09 at s2 (Bart, Milhouse) and their class's teacher, nobody else.
    assert sorted(row["givenName"] for row in users) == ["Bart", "Edna", "Milhouse"]
    assert sorted(row["familyName"] for row in users) == ["K.", "S.", "V."]
    assert not {row["sourcedId"] for row in users} & {"u2", "u3", "t-krab"}
    assert not {row["username"] for row in users} & {"bart", "milhouse", "krabappel"}
    assert all(row["email"] == "" and row["agentSourcedIds"] == "" for row in users)
    assert [row["birthDate"] for row in files["demographics"]] == ["2011-01-01"]
    assert {row["userSourcedId"] for row in files["enrollments"]} <= {
        row["sourcedId"] for row in users}
    # A user's roles: as REST embeds them, with its pseudonymous id.
    by_id = {record["sourcedId"]: record for record in app.api.records("/users")}
    for row in files["roles"]:
        served_roles = by_id[row["userSourcedId"]]["roles"]
        assert (row["roleType"], row["role"], row["orgSourcedId"]) in [
            (role["roleType"], role["role"], role["org"]["sourcedId"]) for role in served_roles]
    assert len(files["roles"]) == sum(len(user["roles"]) for user in by_id.values())
    assert "userProfiles" not in files and manifest["file.userProfiles"] == "absent"
    assert manifest["manifest.version"] == "1.0" and manifest["oneroster.version"] == "1.2"
    assert all(manifest[f"file.{name}"] == "absent"
               for name in binding.GRADEBOOK_FILES + binding.RESOURCES_FILES)


def test_every_person_in_the_bundle_is_in_the_ledger_before_it_is_in_place(
        connect_app, load_small, client, database, runner, tmp_path):
    load_small()
    app = connected(connect_app, client, RESTRICTED, ROSTERING_SCOPES)
    out = tmp_path / "bundle.zip"
    result = run_export(runner, "--app", str(app.app_id), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    _, files, _ = read_bundle(out)
    entries = ledger_entries(database)
    assert json.loads(result.stdout) == {
        "app": app.app_id, "district": "d1", "out": str(out), "mode": "bulk",
        "rows": {name: len(rows) for name, rows in files.items()}, "notices": [],
        "ledger_entries": len(entries)}
    assert {(e["channel"], e["endpoint"], e["entity"], e["app"]) for e in entries} == {
        ("csv-export", "getAllUsers", "user", app.app_id),
        ("csv-export", "getAllEnrollments", "enrollment", app.app_id),
        ("csv-export", "getAllDemographics", "demographics", app.app_id)}
    by_entity = {e["entity"]: e for e in entries}
    # Stored ids: Bart, Milhouse and Edna, whom the bundle names by pseudonym only.
    assert by_entity["user"]["people"] == ["t-krab", "u2", "u3"]
    assert by_entity["user"]["records"] == len(files["users"])
    assert "familyName:initial" in by_entity["user"]["fields"]
    assert "sourcedId:pseudonym" in by_entity["user"]["fields"]
    assert "email" not in by_entity["user"]["fields"]
    assert by_entity["enrollment"]["people"] == ["t-krab", "u2", "u3"]
    assert by_entity["demographics"]["people"] == ["u2"]
    with database.session_scope() as session:
        district_id = session.execute(select(District.id)).scalar_one()
        assert verify_ledger(session, district_id).ok


def test_the_resources_rest_serves_on_records_are_neither_in_their_files_nor_disclosed(
        connect_app, load_bundle, client, database, runner, tmp_path):
    # The 1.2.1 files have no column for a record's resources (users.csv dropped
    # resourceSourcedIds): an export neither reads nor reports them on users, classes and
    # courses; the links are in the resources files.
    load_bundle(write_bundle(tmp_path / "resources", resources_district()))
    app = connected(connect_app, client, share_everything_document(),
                    (*ROSTERING_SCOPES, *RESOURCES_SCOPES))
    assert [r["sourcedId"] for r in app.api.records("/users", filter="resources.sourcedId='res-tutor'")
            ] == ["u1", "u2"]
    rest_entries = len(ledger_entries(database))
    out = tmp_path / "bundle.zip"
    result = run_export(runner, "--app", str(app.app_id), "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest, files, headers = read_bundle(out)
    for name, path in COLLECTIONS:
        served = app.api.records(path, limit=1000)
        rows = files[name]
        assert headers[name] == list(binding.ROSTERING_BY_NAME[name].header)
        assert [row["sourcedId"] for row in rows] == [record["sourcedId"] for record in served]
        for row, record in zip(rows, served):
            expected = as_csv(name, record, delta=False)
            assert {column: row[column] for column in expected} == expected, name
    # The resources go in files of their own (test_csv_export_resources.py), not on the records.
    assert all(manifest[f"file.{name}"] == "bulk" for name in binding.RESOURCES_FILES)
    exported = [e for e in ledger_entries(database)[rest_entries:] if e["channel"] == "csv-export"]
    records = [e for e in exported if e["endpoint"] != "getResourcesForUser"]
    user_entry = next(e for e in records if e["entity"] == "user")
    assert "roles" in user_entry["fields"] and "givenName" in user_entry["fields"]
    assert all(not field.startswith("resources") for e in records for field in e["fields"])
    assert sorted(user_entry["people"]) == sorted(row["sourcedId"] for row in files["users"])
    # What userResources.csv tells of people is an entry of its own: who uses which resources.
    links = [e for e in exported if e["endpoint"] == "getResourcesForUser"]
    assert sorted(p for e in links for p in e["people"]) == sorted(
        {row["userSourcedId"] for row in files["userResources"]})


def test_a_failed_ledger_append_leaves_no_file_and_no_entry(
        connect_app, load_small, client, database, runner, tmp_path, monkeypatch):
    load_small()
    app = connected(connect_app, client, RESTRICTED, ROSTERING_SCOPES)
    out = tmp_path / "out" / "bundle.zip"
    out.parent.mkdir()

    def fail(self):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr(SpooledLedgerWriter, "noted", fail)
    result = run_export(runner, "--app", app.client_id, "--out", str(out))
    assert result.exit_code != 0
    assert list(out.parent.iterdir()) == []
    assert ledger_entries(database) == []


def test_an_existing_file_is_replaced_only_by_a_complete_bundle(
        connect_app, load_small, client, database, runner, tmp_path, monkeypatch):
    load_small()
    app = connected(connect_app, client, RESTRICTED, ROSTERING_SCOPES)
    out = tmp_path / "bundle.zip"
    out.write_bytes(b"the previous bundle")

    def fail(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("gateway.exporting._zip_folder", fail)
    assert run_export(runner, "--app", app.client_id, "--out", str(out)).exit_code != 0
    assert out.read_bytes() == b"the previous bundle"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle.zip")] == []
    assert ledger_entries(database) == []


@pytest.fixture
def empty_store(tmp_path, _migrated_template):
    """A second gateway on a store of its own, migrated and empty."""
    if os.environ.get("GATEWAY_TEST_DATABASE_URL"):
        schema = f"gateway_export_{tmp_path.name[-20:].replace('-', '_').lower()}"
        url = os.environ["GATEWAY_TEST_DATABASE_URL"]
        admin = Database(url)
        with admin.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in url else "?"
        url = f"{url}{separator}options=-csearch_path%3D{schema}"
        migrating = Database(url)
        upgrade_database(migrating)
        migrating.dispose()
    else:
        path = tmp_path / "empty.sqlite3"
        shutil.copyfile(_migrated_template, path)
        shutil.copyfile(ledger_database_path(_migrated_template), ledger_database_path(str(path)))
        url = f"sqlite:///{path}"
    other = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "other-key",
                        "INSTANCE_PATH": str(tmp_path / "instance-empty"),
                        "ISSUER": "http://gateway.test"})
    yield other
    other.extensions["gateway.db"].dispose()
    if os.environ.get("GATEWAY_TEST_DATABASE_URL"):
        with admin.engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def _without_stamps(records: list[dict]) -> list[dict]:
    # An import stamps what it adds with its own time: that is the one field that must differ.
    return [{k: v for k, v in record.items() if k != "dateLastModified"} for record in records]


def test_a_share_everything_bundle_reimports_into_an_empty_gateway_as_the_same_roster(
        connect_app, load_small, client, database, runner, tmp_path, empty_store):
    load_small()
    app = connected(connect_app, client, share_everything_document(), ROSTERING_SCOPES)
    out = tmp_path / "everything.zip"
    assert run_export(runner, "--app", app.client_id, "--out", str(out)).exit_code == 0
    _, files, _ = read_bundle(out)
    assert set(files) == {"orgs", "academicSessions", "courses", "classes", "users",
                          "userProfiles", "roles", "enrollments", "demographics"}

    other_database = empty_store.extensions["gateway.db"]
    with other_database.session_scope() as session:
        report = import_bundle(session, out, ImportOptions())
        assert report.outcome == "applied", [str(p) for p in report.problems]
        assert report.notices == []
    copy = connected(connect_app, empty_store.test_client(), share_everything_document(),
                     ROSTERING_SCOPES, on=empty_store)
    for _, path in COLLECTIONS:
        assert _without_stamps(copy.api.records(path, limit=1000)) == \
            _without_stamps(app.api.records(path, limit=1000)), path


def test_a_delta_bundle_has_what_changed_since_with_its_stamps_and_deletions(
        connect_app, load_small, client, database, runner, tmp_path):
    first = dt.datetime(2026, 9, 1, 8, 0, 0)
    load_small(now=first)
    app = connected(connect_app, client, share_everything_document(), ROSTERING_SCOPES)

    def edit(rows):
        rows["users"][0]["givenName"] = "Elisabeth"  # u1
        rows["users"] = [u for u in rows["users"] if u["sourcedId"] != "u3"]
        rows["roles"] = [r for r in rows["roles"] if r["userSourcedId"] != "u3"]
        rows["enrollments"] = [e for e in rows["enrollments"] if e["userSourcedId"] != "u3"]

    load_small(edit, now=dt.datetime(2026, 9, 2, 8, 0, 0))
    out = tmp_path / "delta.zip"
    result = run_export(runner, "--app", app.client_id, "--out", str(out),
                        "--since", "2026-09-01T12:00:00Z")
    assert result.exit_code == 0, result.output
    manifest, files, _ = read_bundle(out)
    assert {name for name in binding.ROSTERING_BY_NAME if manifest[f"file.{name}"] == "delta"} \
        == {"users", "roles", "enrollments"} == set(files)
    assert all(manifest[f"file.{name}"] == "absent" for name in ("orgs", "classes", "courses"))
    users = {row["sourcedId"]: row for row in files["users"]}
    assert {k: (v["status"], v["givenName"], v["dateLastModified"]) for k, v in users.items()} == {
        "u1": ("active", "Elisabeth", "2026-09-02T08:00:00.000Z"),
        "u3": ("tobedeleted", "Milhouse", "2026-09-02T08:00:00.000Z")}
    served = app.api.records("/users", filter="dateLastModified>'2026-09-01T12:00:00Z'")
    for record in served:
        expected = as_csv("users", record, delta=True)
        assert {column: users[record["sourcedId"]][column] for column in expected} == expected
    assert [(r["sourcedId"], r["status"]) for r in files["enrollments"]] == [("e4", "tobedeleted")]
    assert {(r["userSourcedId"], r["status"]) for r in files["roles"]} == {
        ("u1", "active"), ("u3", "tobedeleted")}

    # Nothing changed after: a delta of nothing, every file absent.
    later = tmp_path / "later.zip"
    assert run_export(runner, "--app", app.client_id, "--out", str(later),
                      "--since", "2026-09-03").exit_code == 0
    manifest, files, _ = read_bundle(later)
    assert files == {} and all(value == "absent" for key, value in manifest.items()
                               if key.startswith("file."))


def test_demographics_only_with_the_demographics_scope(
        connect_app, load_small, client, database, runner, tmp_path):
    load_small()
    app = connected(connect_app, client, share_everything_document(), [SCOPE_ROSTER])
    out = tmp_path / "bundle.zip"
    assert run_export(runner, "--app", app.client_id, "--out", str(out)).exit_code == 0
    manifest, files, _ = read_bundle(out)
    assert manifest["file.demographics"] == "absent" and "demographics" not in files
    assert "users" in files


@pytest.mark.parametrize("args, message", [
    (["--app", "nope", "--out", "{tmp}/x.zip"], "no app with id or client_id 'nope'"),
    (["--app", "{app}", "--out", "{tmp}/x.zip", "--since", "yesterday"],
     "since: 'yesterday' is not an ISO 8601 date-time"),
    (["--app", "{app}", "--out", "{tmp}/x.zip", "--since", "2026-13-01T00:00:00Z"],
     "is not an ISO 8601 date-time"),
    (["--app", "{app}", "--out", "{tmp}/missing/x.zip"], "does not exist"),
    (["--app", "{app}", "--out", "{tmp}"], "is a folder"),
    (["--app", "{app}", "--out", "{tmp}/x.zip", "--district", "d9"],
     "is not connected to district 'd9'"),
])
def test_bad_inputs_are_refused_clearly(
        connect_app, load_small, client, database, runner, tmp_path, args, message):
    load_small()
    app = connected(connect_app, client, RESTRICTED, ROSTERING_SCOPES)
    args = [arg.format(tmp=tmp_path, app=app.client_id) for arg in args]
    result = run_export(runner, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "x.zip").exists()
    assert ledger_entries(database) == []


def test_an_app_the_district_shares_nothing_with_gets_no_bundle(
        connect_app, load_small, client, database, runner, tmp_path):
    load_small()
    app = connected(connect_app, client, None, ROSTERING_SCOPES)
    result = run_export(runner, "--app", app.client_id, "--out", str(tmp_path / "x.zip"))
    assert result.exit_code == 1
    assert "has set no sharing policy for app" in result.output
    demographics_only = connected(connect_app, client, share_everything_document(),
                                [SCOPE_ROSTER_DEMOGRAPHICS], name="Demographics App")
    result = run_export(runner, "--app", demographics_only.client_id, "--out",
                        str(tmp_path / "x.zip"))
    assert result.exit_code == 1
    assert "holds no roster read scope" in result.output
    assert not (tmp_path / "x.zip").exists()


def test_the_bundle_file_is_private(connect_app, load_small, client, database, runner, tmp_path):
    load_small()
    app = connected(connect_app, client, RESTRICTED, ROSTERING_SCOPES)
    out = tmp_path / "bundle.zip"
    assert run_export(runner, "--app", app.client_id, "--out", str(out)).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    # Its work folder is gone.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle.zip")] == []


def test_an_import_landing_during_the_export_never_mixes_two_versions_in_one_bundle(
        connect_app, load_small, client, database, runner, tmp_path, monkeypatch):
    """An import commits while the export reads its first file. SQLite's read snapshot keeps the
    export on the old data; PostgreSQL (read committed) would see the new data from the next
    page on, so the export notices the district's new data version and reads it all again,
    disclosing only what it finally wrote."""
    load_small()
    app = connected(connect_app, client, share_everything_document(), ROSTERING_SCOPES)
    read = exporting._read_collection
    landed = []

    def read_then_import(session, visibility, collection, *args, **kwargs):
        read(session, visibility, collection, *args, **kwargs)
        if not landed:
            def edit(rows):
                rows["orgs"][1]["name"] = "Springfield Elementary School"
                rows["users"][0]["givenName"] = "Elisabeth"
            load_small(edit)
            landed.append(True)

    monkeypatch.setattr(exporting, "_read_collection", read_then_import)
    out = tmp_path / "bundle.zip"
    assert run_export(runner, "--app", app.client_id, "--out", str(out)).exit_code == 0
    assert landed == [True]
    _, files, _ = read_bundle(out)
    school = {row["sourcedId"]: row["name"] for row in files["orgs"]}["s1"]
    lisa = {row["sourcedId"]: row["givenName"] for row in files["users"]}["u1"]
    assert (school, lisa) in {("Springfield Elementary", "Lisa"),
                              ("Springfield Elementary School", "Elisabeth")}
    if database.dialect == "postgresql":
        assert (school, lisa) == ("Springfield Elementary School", "Elisabeth")
    # One attempt's disclosures only.
    assert sorted(e["endpoint"] for e in ledger_entries(database)) == [
        "getAllDemographics", "getAllEnrollments", "getAllUsers"]


def test_an_export_that_imports_keep_overtaking_fails_and_says_why(
        connect_app, load_small, client, database, runner, tmp_path, monkeypatch):
    load_small()
    app = connected(connect_app, client, share_everything_document(), ROSTERING_SCOPES)
    versions = iter(range(100))
    monkeypatch.setattr(exporting, "district_data_version", lambda conn, district: next(versions))
    out = tmp_path / "bundle.zip"
    result = run_export(runner, "--app", app.client_id, "--out", str(out))
    assert result.exit_code == 1
    assert "the district's data changed during each of 3 attempts" in result.output
    assert not out.exists() and ledger_entries(database) == []
