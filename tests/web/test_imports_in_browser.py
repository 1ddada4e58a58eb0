"""Imports in a real browser: the admin uploads a broken bundle and reads its problems by file and
line, uploads the fixed one, reads the dry run's counts and applies it; both run as jobs while
the page follows their progress."""
from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

from web_support import CHROMEBOOK, check_page, sign_in_to_console


def zipped(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return target


def broken_copy(folder: Path, target: Path) -> Path:
    """The bundle with the second user's enabledUser made unreadable."""
    shutil.copytree(folder, target)
    users = target / "users.csv"
    rows = list(csv.reader(io.StringIO(users.read_text())))
    rows[2][rows[0].index("enabledUser")] = "maybe"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    users.write_text(out.getvalue())
    return target


def renamed_copy(bundle, target):
    """A copy of ``bundle`` whose first user has another given name; and that user's sourcedId."""
    shutil.copytree(bundle, target)
    path = target / "users.csv"
    with path.open(newline="", encoding="utf-8") as source:
        rows = list(csv.DictReader(source))
    rows[0]["givenName"] = "Renamed"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target, rows[0]["sourcedId"]


def test_an_admin_reads_a_broken_bundles_problems_then_applies_the_fixed_one(chromium, demo,
                                                                            tmp_path):
    server, _ = demo
    bundle = tmp_path / "instance" / "demo-bundle"
    page = chromium.new_context(viewport=CHROMEBOOK).new_page()
    sign_in_to_console(page, server.base)
    page.get_by_role("link", name="Imports").click()
    page.get_by_label("Roster bundle").set_input_files(
        str(zipped(broken_copy(bundle, tmp_path / "broken"), tmp_path / "broken.zip")))
    page.get_by_role("button", name="Upload and check").click()
    page.get_by_text("Rejected: 1 problem(s). Nothing was written.").wait_for(timeout=60000)
    problems = page.get_by_role("heading", name="users.csv", level=3)
    assert problems.count() == 1
    assert page.locator("li", has_text="Line 3, column enabledUser: value “maybe”").count() == 1
    assert page.get_by_role("button", name="Apply the import").count() == 0
    check_page(page, "admin-import-rejected")

    page.get_by_role("link", name="Back to imports").click()
    fixed, renamed = renamed_copy(bundle, tmp_path / "fixed")
    page.get_by_label("Roster bundle").set_input_files(str(zipped(fixed, tmp_path / "ok.zip")))
    page.get_by_role("button", name="Upload and check").click()
    page.get_by_text("The bundle is valid. Nothing was written yet.").wait_for(timeout=60000)
    users = page.get_by_role("row", name="users.csv").get_by_role("cell").all_inner_texts()
    assert users[:2] == ["0", "1"] and int(users[2]) > 0  # one person renamed, nothing added
    # The diff's sample names the record and the field that changes.
    assert page.locator("li", has_text=f"Changed: {renamed} (givenName)").count() == 1
    check_page(page, "admin-import-dry-run")
    page.get_by_role("button", name="Apply the import").click()
    page.get_by_text("Applied: the district's data is updated.").wait_for(timeout=60000)
    page.get_by_role("link", name="Back to imports").click()
    assert page.locator("tbody tr td:nth-child(2)").all_inner_texts()[:3] == [
        "applied", "dry-run", "dry-run-rejected"]
    check_page(page, "admin-imports")
