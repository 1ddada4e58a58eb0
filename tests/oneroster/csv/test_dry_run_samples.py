"""The dry run's samples: a few added, changed and retired records per file, by sourcedId and, for
a changed one, the columns that change -- bounded, whatever the size of the file."""
from __future__ import annotations

import copy

from gateway.oneroster.csv.importer import ImportOptions, ImportReport, import_bundle

from bundles import small_district, write_bundle


def test_a_dry_run_samples_what_would_be_added_changed_and_retired(database, tmp_path):
    rows = small_district()
    with database.session_scope() as session:
        assert import_bundle(session, write_bundle(tmp_path / "first", rows),
                             ImportOptions(force=True)).outcome == "applied"
    changed = copy.deepcopy(rows)
    lisa = next(u for u in changed["users"] if u["sourcedId"] == "u1")
    lisa["givenName"], lisa["email"] = "Elisabeth", "elisabeth@example.org"
    changed["users"] = [u for u in changed["users"] if u["sourcedId"] != "u4"]
    changed["enrollments"] = [e for e in changed["enrollments"] if e["userSourcedId"] != "u4"]
    changed["roles"] = [r for r in changed["roles"] if r["userSourcedId"] != "u4"]
    for n in range(8):
        changed["users"].append({**lisa, "sourcedId": f"new-{n}", "username": f"new{n}",
                                 "email": f"new{n}@example.org"})
    with database.session_scope() as session:
        report = import_bundle(session, write_bundle(tmp_path / "second", changed),
                               ImportOptions(force=True, dry_run=True))
    assert report.outcome == "dry-run", report.to_dict()
    users = report.samples["users"]
    [lisa_changes] = users["changed"]
    assert lisa_changes["sourcedId"] == "u1"
    assert set(lisa_changes["fields"]) == {"email", "givenName"}, users
    assert users["retired"] == ["u4"]
    # Eight were added; five are shown.
    assert report.files["users"].added == 8 and len(users["added"]) == 5
    assert set(users["added"]) <= {f"new-{n}" for n in range(8)}
    assert "classes" not in report.samples  # nothing changes there
    # The samples travel with the report (a job hands it back as a dict).
    assert ImportReport.from_dict(report.to_dict()).samples == report.samples


def test_an_applied_import_carries_no_samples(database, tmp_path):
    with database.session_scope() as session:
        report = import_bundle(session, write_bundle(tmp_path / "b", small_district()),
                               ImportOptions(force=True))
    assert report.samples == {} and "samples" not in report.to_dict()
