"""Each committed broken bundle is rejected with exactly the located problem it was made to show."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.cli import cli
from gateway.store.models import District, ImportRun, User

USERS_HEADER = ("sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,"
                "middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,"
                "preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns")

EXPECTED = {
    "missing-column": "users.csv:1: column givenName: expected the required column(s) in the header: " + USERS_HEADER,
    "misordered-columns": "users.csv:1: column familyName: value 'familyName', expected column 7 to be "
                          "givenName (header order is fixed: " + USERS_HEADER + ")",
    "bad-enum": "orgs.csv:3: column type: value 'campus', expected one of department, district, local, "
                "national, school, state (or an ext: value)",
    "bad-date": "academicSessions.csv:3: column startDate: value '2026-13-01', expected a real calendar date YYYY-MM-DD",
    "bad-boolean": "users.csv:4: column enabledUser: value 'yes', expected true or false",
    "bad-user-ids": "users.csv:2: column userIds: value 'SIS=1001', expected identifiers as "
                    "{type:identifier},{type:identifier}",
    "missing-required-value": "courses.csv:2: column title: value '', expected a non-empty value",
    "duplicate-sourced-id": "users.csv:9: column sourcedId: value 'u3', expected a sourcedId not used before "
                            "in this file (already on line 4)",
    "unknown-class-in-enrollment": "enrollments.csv:2: column classSourcedId: value 'k9', expected the "
                                   "sourcedId of a record in classes.csv",
    "unknown-course-in-class": "classes.csv:3: column courseSourcedId: value 'c9', expected the sourcedId of "
                               "a record in courses.csv",
    "unknown-term-in-class": "classes.csv:2: column termSourcedIds: value 't7', expected the sourcedId of a "
                             "record in academicSessions.csv",
    "no-district-org": "orgs.csv: expected an org of type district in orgs.csv, or --district SOURCEDID (with "
                       "--district-name NAME when the district is new) for a bundle without one",
    "wrong-oneroster-version": "manifest.csv:3: column oneroster.version: value '1.0', expected OneRoster 1.1 or "
                               "1.2 (manifest oneroster.version 1.1 or 1.2); OneRoster 1.0 bundles are not "
                               "supported: export the bundle as OneRoster 1.2 (or 1.1)",
    "file-listed-but-missing": "manifest.csv:12: column file.demographics: value 'bulk', expected demographics.csv "
                               "in the bundle, since the manifest lists it as bulk",
    "wrong-field-count": "enrollments.csv:4: value '11 fields', expected 10 fields, one per header column",
    "not-utf8": "users.csv:4: value 'e,Van Hout\ufffdn,,,,,,,09', expected UTF-8 text (byte 0xe9 at position 38 "
                "of the line is not UTF-8; re-export the file as UTF-8)",
    "unterminated-quote": "orgs.csv:4: expected RFC 4180 CSV: a closing quote for the quoted field of the "
                          "record that starts here",
}


def test_every_broken_fixture_is_covered(fixtures_dir):
    present = {p.name for p in (fixtures_dir / "broken").iterdir() if p.is_dir()}
    assert present == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_bundle_is_rejected_with_its_problem(name, runner, database, fixtures_dir):
    result = runner.invoke(cli, ["import", str(fixtures_dir / "broken" / name)])
    assert result.exit_code == 1, result.output
    problems = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert problems == [EXPECTED[name]]
    assert "1 problem(s); the bundle was rejected and nothing was written:" in result.output
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(District)).scalar_one() == 0
        run = session.execute(select(ImportRun)).scalar_one()
        assert (run.outcome, run.error_count) == ("rejected", 1)
