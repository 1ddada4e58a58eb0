"""The console's ledger in a real browser: an admin searches the disclosures of one app over a
date range, then downloads a student's record as PDF for a parent."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from gateway.sharing.ledger import record_disclosure
from gateway.store.models import District

from web_support import CHROMEBOOK, check_page, sign_in_to_console


def test_an_admin_searches_the_ledger_and_downloads_a_pdf(chromium, demo, database):
    server, _ = demo
    with database.session_scope() as session:
        district_id = session.execute(select(District.id)).scalar_one()
        for day in (2, 3, 20):
            record_disclosure(session, app_id=1, district_id=district_id, channel="rest",
                              endpoint="getUser", entity="user", fields=["givenName"],
                              users=["stu-0001"], record_count=1,
                              now=dt.datetime(2026, 11, day, 8, 30))
    page = chromium.new_context(viewport=CHROMEBOOK).new_page()
    sign_in_to_console(page, server.base)
    page.get_by_role("link", name="Disclosures").click()
    page.get_by_label("App", exact=True).select_option(label="Demo app (quickstart)")
    page.get_by_label("From").fill("2026-11-01")
    page.get_by_label("To").fill("2026-11-03")
    page.get_by_role("button", name="Search", exact=True).click()
    table = page.get_by_role("table", name="Disclosures, newest first")
    table.wait_for()
    assert [cell for cell in table.locator("tbody tr td:first-child").all_inner_texts()] == [
        "2026-11-03 08:30:00", "2026-11-02 08:30:00"]
    check_page(page, "admin-ledger-search")

    page.get_by_label("Student's sourcedId").fill("stu-0001")
    page.get_by_role("button", name="Look up").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the record (PDF)").click()
    assert download.value.suggested_filename == "disclosures-stu-0001.pdf"
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(5) == b"%PDF-"
    page.context.close()
