"""Imports from the console: an uploaded bundle is checked by a dry-run job that runs outside the
request (a process of its own until the job queue takes over), its problems are shown by file
and line, and only a valid bundle of the admin's own district can then be applied."""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

from bundles import small_district, write_bundle, zipped
from console_support import csrf_of


def finished(browser, location: str) -> str:
    """The job's page once the job has ended (it refreshes itself until then)."""
    deadline = time.monotonic() + 60
    while True:
        page = browser.get(location).get_data(as_text=True)
        if 'http-equiv="refresh"' not in page:
            return page
        assert time.monotonic() < deadline, page
        time.sleep(0.2)


def upload(browser, token: str, data: bytes) -> str:
    response = browser.post("/admin/imports", content_type="multipart/form-data", data={
        "csrf_token": token, "bundle": (io.BytesIO(data), "roster.zip")})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def test_a_broken_bundle_shows_its_problems_and_a_fixed_one_is_applied(console, tmp_path):
    browser, token = console("admin@d1.test")
    rows = small_district()
    rows["users"][1]["enabledUser"] = "maybe"
    job = upload(browser, token, zipped(write_bundle(tmp_path / "broken", rows)))
    page = finished(browser, job)
    assert "Rejected: 1 problem(s). Nothing was written." in page
    assert re.search(r"<h3>users.csv</h3>\s*<ul><li>Line 3, column enabledUser: value “maybe”, "
                     r"expected", page), page
    assert "Apply the import" not in page

    rows["users"][1]["enabledUser"] = "true"
    rows["users"][0]["givenName"] = "Elisabeth"
    job = upload(browser, token, zipped(write_bundle(tmp_path / "fixed", rows)))
    page = finished(browser, job)
    assert "The bundle is valid. Nothing was written yet." in page
    assert re.search(r"<th scope=\"row\">users.csv</th><td>0</td><td>1</td>", page), page
    applied = browser.post(job + "/apply", data={"csrf_token": csrf_of(page)})
    assert applied.status_code == 303
    page = finished(browser, applied.headers["Location"])
    assert "Applied: the district's data is updated." in page
    history = browser.get("/admin/imports").get_data(as_text=True)
    outcomes = re.findall(r"<td>[0-9: -]+</td><td>([a-z-]+)</td>", history)
    assert outcomes == ["applied", "dry-run", "dry-run-rejected"]
    log = browser.get("/admin/audit").get_data(as_text=True)
    assert "import.upload" in log and "import.apply" in log


def test_only_a_district_admin_imports_and_only_their_district(console, tmp_path):
    desk, desk_token = console("help@d1.test")
    refused = desk.post("/admin/imports", content_type="multipart/form-data", data={
        "csrf_token": desk_token, "bundle": (io.BytesIO(b"PK"), "roster.zip")})
    assert refused.status_code == 403
    browser, token = console("admin@d1.test")
    rows = small_district()
    for table in rows.values():
        for row in table:
            for key, value in row.items():
                if value == "d1":
                    row[key] = "d2"
    rows["orgs"][0]["sourcedId"] = "d2"
    job = upload(browser, token, zipped(write_bundle(tmp_path / "other", rows)))
    page = finished(browser, job)
    assert "This bundle is of district d2, not of Springfield District" in page
    assert "Apply the import" not in page
    assert browser.post(job + "/apply", data={"csrf_token": token}).status_code == 400
    # The help desk reads the report; nobody finds a job by a made-up id.
    assert "This bundle is of district d2" in desk.get(job).get_data(as_text=True)
    assert browser.get("/admin/imports/not-a-job").status_code == 400


def held_upload(browser, token: str, tmp_path) -> tuple[str, str]:
    """Upload a bundle that retires 2 of the 7 enrollments (over the 25 % mass-change threshold):
    its job's location and its page once the dry run has held it."""
    rows = small_district()
    rows["enrollments"] = [e for e in rows["enrollments"] if e["sourcedId"] not in ("e3", "e4")]
    job = upload(browser, token, zipped(write_bundle(tmp_path / "held", rows)))
    page = finished(browser, job)
    assert "Held: refused: enrollments.csv would mark 2 of 7 active enrollments" in page, page
    assert "Approve the change and apply" in page and "Reject: write nothing" in page
    return job, page


def test_a_held_import_is_rejected_then_cannot_be_applied(console, app, tmp_path):
    browser, token = console("admin@d1.test")
    job, page = held_upload(browser, token, tmp_path)
    bundle = Path(app.instance_path) / "uploads" / job.rsplit("/", 1)[1] / "bundle.zip"
    assert bundle.exists()

    rejected = browser.post(job + "/reject", data={"csrf_token": csrf_of(page)})
    assert rejected.status_code == 303 and rejected.headers["Location"].endswith(job)
    page = browser.get(job).get_data(as_text=True)
    assert "Rejected by admin@d1.test: nothing was written." in page
    assert "Approve the change and apply" not in page and "Reject: write nothing" not in page
    # The bundle held every student's record: it is gone, not kept for an import never to come.
    assert not bundle.exists()

    refused = browser.post(job + "/apply", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "This upload was rejected by admin@d1.test" in refused.get_data(as_text=True)
    again = browser.post(job + "/reject", data={"csrf_token": token})
    assert again.status_code == 400
    log = browser.get("/admin/audit").get_data(as_text=True)
    assert log.count("import.reject") == 1 and "import.apply" not in log


def test_only_a_role_that_manages_imports_rejects(console, tmp_path):
    browser, token = console("admin@d1.test")
    job, _ = held_upload(browser, token, tmp_path)
    for email in ("help@d1.test", "lead@d1.test"):
        other, other_token = console(email)
        page = other.get(job).get_data(as_text=True)
        assert "Held: refused: enrollments.csv" in page and "Reject: write nothing" not in page
        assert other.post(job + "/reject", data={"csrf_token": other_token}).status_code == 403
    page = browser.get(job).get_data(as_text=True)
    assert "Rejected by" not in page and "Approve the change and apply" in page
    assert "import.reject" not in browser.get("/admin/audit").get_data(as_text=True)


def test_an_upload_being_applied_is_not_rejected(console, tmp_path):
    browser, token = console("admin@d1.test")
    job, page = held_upload(browser, token, tmp_path)
    applied = browser.post(job + "/apply", data={"csrf_token": csrf_of(page)})
    assert applied.status_code == 303
    assert "Reject: write nothing" not in browser.get(job).get_data(as_text=True)
    refused = browser.post(job + "/reject", data={"csrf_token": token})
    assert refused.status_code == 400
    assert "already being applied" in refused.get_data(as_text=True)
    page = finished(browser, applied.headers["Location"])
    assert "Applied: the district's data is updated." in page
