"""The console's ledger: searching the entries by app and by date range, page by page, and a
student's disclosure record as PDF for a parent's request."""
from __future__ import annotations

import datetime as dt
import re
import zlib

from gateway.oauth import service
from gateway.sharing.ledger import record_disclosure, search_entries
from gateway.store.models import utcnow

DAY = dt.datetime(2026, 11, 2, 9, 0)


def pdf_text(data: bytes) -> str:
    """The text shown by a PDF's page streams (fpdf2 writes each line as one string)."""
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            stream = zlib.decompress(stream)
        except zlib.error:
            pass
        shown += [re.sub(rb"\\(.)", rb"\1", m).decode("latin-1")
                  for m in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", stream)]
    return "\n".join(shown)


def disclose(database) -> tuple[int, int]:
    """Two apps; the first receives u1 on 2 and 3 November (3 entries), the second u2 on 3 November."""
    with database.session_scope() as session:
        first = service.register_app(session, name="Reading app", district_sourced_id="d1",
                                     scopes=None, now=utcnow()).app_id
        second = service.register_app(session, name="Math app", district_sourced_id="d1",
                                      scopes=None, now=utcnow()).app_id
        for app_id, user, when in ((first, "u1", DAY), (first, "u1", DAY + dt.timedelta(days=1)),
                                   (first, "u1", DAY + dt.timedelta(days=1, hours=3)),
                                   (second, "u2", DAY + dt.timedelta(days=1))):
            record_disclosure(session, app_id=app_id, district_id=1, channel="rest",
                              endpoint="getUser", entity="user", fields=["givenName", "sourcedId"],
                              users=[user], record_count=1, now=when)
    return first, second


def test_search_by_app_and_dates_in_pages(database, district):
    first, second = disclose(database)
    with database.session_scope() as session:
        page = search_entries(session, 1, app_id=first, limit=2)
        assert [e.disclosed_at.day for e in page.entries] == [3, 3] and page.older is not None
        rest = search_entries(session, 1, app_id=first, limit=2, before=page.older)
        assert [e.disclosed_at.day for e in rest.entries] == [2] and rest.older is None
        on_the_3rd = search_entries(session, 1, since=dt.datetime(2026, 11, 3),
                                    until=dt.datetime(2026, 11, 4))
        assert sorted(e.app_name for e in on_the_3rd.entries) == ["Math app", "Reading app",
                                                                  "Reading app"]
        assert search_entries(session, 1, app_id=second, until=dt.datetime(2026, 11, 3)).entries == ()


def test_the_console_searches_and_exports_a_pdf(console, database):
    first, _ = disclose(database)
    browser, _ = console("help@d1.test")  # reading the ledger is for every role
    page = browser.get(f"/admin/ledger?search=1&app={first}&from=2026-11-03&to=2026-11-03")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>(2026-11-0\d [\d:]+)</td><td>([^<]+)</td>", text)
    assert rows == [("2026-11-03 12:00:00", "Reading app"), ("2026-11-03 09:00:00", "Reading app")]
    bad = browser.get("/admin/ledger?search=1&from=3 Nov")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_data(as_text=True)

    pdf = browser.get("/admin/ledger/export.pdf?student=u1")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-") and pdf.data.rstrip().endswith(b"%%EOF")
    assert 'filename="disclosures-u1.pdf"' in pdf.headers["Content-Disposition"]
    content = pdf_text(pdf.data)
    assert "Disclosure record of u1" in content and "3 disclosure(s) to 1 app(s)." in content
    assert "Reading app" in content and "givenName, sourcedId" in content
    assert "ledger.export" in browser.get("/admin/audit").get_data(as_text=True)
