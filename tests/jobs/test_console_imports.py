"""With a job queue, an import uploaded in the admin console is a job on it: a real `gateway
worker` runs the dry run and the apply, and the console's pages show what the worker wrote."""
from __future__ import annotations

import io
import re
import time

from sqlalchemy import select

from gateway.admin.accounts import create_admin
from gateway.cli import cli
from gateway.store.models import User, utcnow

from bundles import import_small_district, small_district, write_bundle, zipped
from console_support import PASSWORD, csrf_of


def _finished(browser, location: str, worker) -> str:
    deadline = time.monotonic() + 120
    while True:
        page = browser.get(location).get_data(as_text=True)
        if 'http-equiv="refresh"' not in page:
            return page
        assert time.monotonic() < deadline, page + worker.output()
        time.sleep(0.3)


def test_a_console_upload_is_dry_run_and_applied_by_a_queue_worker(queued_app, start_worker,
                                                                  tmp_path):
    database = queued_app.extensions["gateway.db"]
    with database.session_scope() as session:
        import_small_district(session, tmp_path / "first")
        create_admin(session, district="d1", email="admin@d1.test", role="district_admin",
                     password=PASSWORD, schools=[], now=utcnow())
    browser = queued_app.test_client()
    token = csrf_of(browser.get("/admin/login").get_data(as_text=True))
    assert browser.post("/admin/login", data={"email": "admin@d1.test", "password": PASSWORD,
                                              "csrf_token": token}).status_code == 303
    token = csrf_of(browser.get("/admin/").get_data(as_text=True))

    rows = small_district()
    rows["users"][0]["givenName"] = "Elisabeth"
    uploaded = browser.post("/admin/imports", content_type="multipart/form-data", data={
        "csrf_token": token, "bundle": (io.BytesIO(zipped(write_bundle(tmp_path / "b", rows))),
                                        "roster.zip")})
    assert uploaded.status_code == 303, uploaded.get_data(as_text=True)
    job = uploaded.headers["Location"]
    # Queued, not run: no worker yet, and the upload waits in the spool for one.
    assert 'http-equiv="refresh"' in browser.get(job).get_data(as_text=True)
    assert any((tmp_path / "spool" / "uploads").iterdir())

    worker = start_worker()
    page = _finished(browser, job, worker)
    assert "The bundle is valid. Nothing was written yet." in page, page
    applied = browser.post(job + "/apply", data={"csrf_token": csrf_of(page)})
    assert applied.status_code == 303
    page = _finished(browser, applied.headers["Location"], worker)
    assert "Applied: the district's data is updated." in page, page + worker.output()
    with database.session_scope() as session:
        assert "Elisabeth" in session.execute(select(User.given_name)).scalars().all()
    jobs = queued_app.test_cli_runner().invoke(cli, ["jobs"]).output
    assert len(re.findall(r"imports\s+finished\s.*console import", jobs)) == 2, jobs
