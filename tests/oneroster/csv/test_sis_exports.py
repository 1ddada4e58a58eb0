"""Bundles shaped like real SIS exports (fixtures/sis-exports, written from the OneRoster 1.1 and
1.2 CSV specifications): each imports, with a notice for every normalization, or is refused with
every problem listed; --strict refuses what would be normalized."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from bundles import small_district, write_bundle
from gateway.cli import cli
from gateway.store.models import District, ImportRun, Org, Role, User


def _run(runner, path, *args):
    return runner.invoke(cli, ["import", str(path), *args])


def _problems(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.startswith("  ")]


def _notes(output: str) -> list[str]:
    return [line[len("note: "):] for line in output.splitlines() if line.startswith("note: ")]


def _count(database, model) -> int:
    with database.session_scope() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_1p1_export_without_a_district_org_imports_under_the_district_named(runner, database, fixtures_dir):
    path = fixtures_dir / "sis-exports" / "v1p1-no-district"
    refused = _run(runner, path)
    assert refused.exit_code == 1
    assert _problems(refused.output) == [
        "orgs.csv: expected an org of type district in orgs.csv, or --district SOURCEDID (with --district-name "
        "NAME when the district is new) for a bundle without one"]
    # The typo'd key is named, never silently ignored.
    assert ("manifest.csv:18: column propertyName: read 'source.sytemCode'; not a property of the OneRoster 1.1 "
            "manifest; ignored") in _notes(refused.output)

    unnamed = _run(runner, path, "--district", "d1")
    assert unnamed.exit_code == 1
    assert _problems(unnamed.output) == [
        "manifest.csv: value 'd1', expected --district-name NAME to create district d1 (it is not in the store "
        "yet and the bundle has no org of type district for it)"]
    assert _count(database, District) == 0 and _count(database, User) == 0

    applied = _run(runner, path, "--district", "d1", "--district-name", "Springfield District")
    assert applied.exit_code == 0, applied.output
    assert "district d1 (Springfield District)" in applied.output
    assert "orgs.csv              bulk           3        0          0        0         0" in applied.output
    assert ("orgs.csv:2: column parentSourcedId: read '', stored 'd1'; an org without a parent, placed under "
            "district d1 (--district) (1 more like it)") in _notes(applied.output)
    with database.session_scope() as session:
        orgs = dict(session.execute(select(Org.sourced_id, Org.parent_sourced_id)).all())
        kinds = dict(session.execute(select(Org.sourced_id, Org.type)).all())
    assert orgs == {"d1": None, "s1": "d1", "s2": "d1"}
    assert kinds["d1"] == "district"

    again = _run(runner, path, "--district", "d1")
    assert again.exit_code == 0, again.output
    for line in again.output.splitlines():
        if ".csv " in line and ("bulk" in line):
            added, changed, _, deleted, rejected = line.split()[2:]
            assert (added, changed, deleted, rejected) == ("0", "0", "0", "0"), line


def test_a_sloppy_1p1_export_imports_with_a_notice_for_each_kind_of_fix(runner, database, fixtures_dir):
    path = fixtures_dir / "sis-exports" / "v1p1-sloppy"
    result = _run(runner, path)
    assert result.exit_code == 0, result.output
    notes = _notes(result.output)
    assert ("academicsessions.csv: file name differs from the binding's academicSessions.csv only in case; "
            "read as academicSessions.csv") in notes
    assert ("users.csv:2: column dateLastModified: read '2026-08-20', stored '2026-08-20T00:00:00Z'; a date "
            "without a time, read as midnight UTC (8 more like it)") in notes
    assert ("classes.csv:2: column classType: read 'Scheduled', stored 'scheduled'; differs from the binding's "
            "value only in case (2 more like it)") in notes
    assert ("users.csv:2: column role: read 'Student', stored 'student'; differs from the binding's value only "
            "in case (8 more like it)") in notes
    assert ("demographics.csv:1: a header and no data rows: every demographics record of the district will be "
            "marked tobedeleted (the mass-change guard still applies)") in notes
    with database.session_scope() as session:
        roles = set(session.execute(select(Role.user_sourced_id, Role.role)).all())
    assert ("a-skinner", "siteAdministrator") in roles and ("u1", "student") in roles


def test_strict_refuses_every_normalization_and_writes_nothing(runner, database, fixtures_dir):
    result = _run(runner, fixtures_dir / "sis-exports" / "v1p1-sloppy", "--strict")
    assert result.exit_code == 1
    problems = _problems(result.output)
    assert ("classes.csv:2: column classType: value 'Scheduled', expected the binding's exact form (differs from "
            "the binding's value only in case; without --strict it would be read as 'scheduled') "
            "(2 more like it)") in problems
    assert any(p.startswith("academicsessions.csv: expected the binding's exact form (file name differs")
               for p in problems)
    assert len(problems) == 10
    assert _count(database, District) == 0 and _count(database, User) == 0
    with database.session_scope() as session:
        assert session.execute(select(ImportRun.outcome)).scalar_one() == "rejected"


def test_a_1p2_delta_without_a_district_org_applies_to_the_district_named(runner, database, tmp_path,
                                                                          fixtures_dir):
    assert _run(runner, write_bundle(tmp_path / "first", small_district())).exit_code == 0
    path = fixtures_dir / "sis-exports" / "v1p2-delta-no-district"
    refused = _run(runner, path)
    assert refused.exit_code == 1 and "or --district SOURCEDID" in refused.output
    applied = _run(runner, path, "--district", "d1")
    assert applied.exit_code == 0, applied.output
    assert "users.csv             delta          0        2          0        1         0" in applied.output
    with database.session_scope() as session:
        users = dict(session.execute(select(User.sourced_id, User.status)).all())
    assert users["u4"] == "tobedeleted" and users["u1"] == "active"


def test_a_broken_bundle_lists_every_problem_across_the_manifest_and_the_files(runner, database, fixtures_dir,
                                                                               tmp_path):
    report_path = tmp_path / "report.json"
    result = _run(runner, fixtures_dir / "sis-exports" / "v1p2-several-problems", "--report", str(report_path))
    assert result.exit_code == 1
    assert _problems(result.output) == [
        "manifest.csv:6: column value: value 'full', expected absent, bulk or delta for file.courses",
        "orgs.csv:3: column type: value 'campus', expected one of department, district, local, national, "
        "school, state (or an ext: value)",
        "academicSessions.csv:4: column endDate: value '2027-02-30', expected a real calendar date YYYY-MM-DD",
        "users.csv:2: column enabledUser: value 'yes', expected true or false",
        "roles.csv:3: column role: value '', expected one of aide, counselor, districtAdministrator, guardian, "
        "parent, principal, proctor, relative, siteAdministrator, student, systemAdministrator, teacher "
        "(or an ext: value)",
        "enrollments.csv:5: column classSourcedId: value 'k404', expected the sourcedId of a record in classes.csv",
    ]
    report = json.loads(report_path.read_text())
    assert report["problem_count"] == 6 and report["format"] == "OneRoster 1.2 CSV"
    assert report["problems"][1] == {"file": "orgs.csv", "line": 3, "column": "type", "value": "campus",
                                     "expected": "one of department, district, local, national, school, "
                                                 "state (or an ext: value)"}
    assert _count(database, District) == 0 and _count(database, User) == 0


def test_the_json_report_carries_each_notice_with_its_location_and_values(runner, fixtures_dir, tmp_path):
    report_path = tmp_path / "report.json"
    result = _run(runner, fixtures_dir / "sis-exports" / "v1p1-sloppy", "--dry-run", "--report", str(report_path))
    assert result.exit_code == 0, result.output
    notices = json.loads(report_path.read_text())["notices"]
    assert {"file": "classes.csv", "line": 2, "column": "classType", "read": "Scheduled", "stored": "scheduled",
            "what": "differs from the binding's value only in case", "more": 2} in notices


def test_user_ids_without_braces_are_read_with_a_notice_and_refused_under_strict(runner, database, tmp_path):
    files = small_district()
    files["users"][0]["userIds"] = "local:12345"
    files["users"][1]["userIds"] = "SIS:1002, LDAP:bart"
    path = write_bundle(tmp_path / "unbraced", files)
    strict = _run(runner, path, "--strict")
    assert strict.exit_code == 1
    result = _run(runner, path)
    assert result.exit_code == 0, result.output
    assert ("users.csv:2: column userIds: read 'local:12345', stored '{local:12345}'; identifiers without their "
            "braces, read as {type:identifier} (1 more like it)") in _notes(result.output)
    with database.session_scope() as session:
        ids = dict(session.execute(select(User.sourced_id, User.user_ids)).all())
    assert ids["u2"] == [{"type": "SIS", "identifier": "1002"}, {"type": "LDAP", "identifier": "bart"}]
