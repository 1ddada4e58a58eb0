"""A student's disclosure record as a PDF, for a parent's request: the same content as the CSV
export (which apps received which of the student's fields, how often, first and last time, and
every entry), laid out for reading and printing. Built with fpdf2 (pure Python, no system
libraries), with its core Helvetica font: text outside Latin-1 is replaced, never dropped silently.
"""
from __future__ import annotations

import datetime as dt

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from gateway.sharing.ledger import StudentDisclosures


def _latin1(text: str) -> str:
    # The core fonts cover Latin-1 only; anything else shows as "?" rather than failing the export.
    return text.encode("latin-1", "replace").decode("latin-1")


def _when(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M") + " UTC"


def disclosure_record_pdf(record: StudentDisclosures, *, district_name: str,
                          now: dt.datetime) -> bytes:
    """The PDF of ``record`` (every entry: call :func:`student_disclosures` with ``limit=None``)."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Disclosure record of {record.user_sourced_id}"))
    pdf.set_creator("K-12 Interoperability Gateway")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def line(text: str, size: float = 10, style: str = "", height: float = 6) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(width, height, _latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    line(f"Disclosure record of {record.user_sourced_id}", 16, "B", 9)
    line(f"{district_name}, produced {_when(now)} from the district's hash-chained disclosure ledger.")
    line(f"{record.total} disclosure(s) to {len(record.apps)} app(s).")
    pdf.ln(3)
    for app in record.apps:
        line(app.app_name or f"App {app.app_id}", 12, "B", 7)
        line(f"{app.count} time(s), first {_when(app.first)}, last {_when(app.last)}.")
        for entity, names in app.fields.items():
            line(f"{entity}: {', '.join(names)}")
        pdf.ln(2)
    if record.entries:
        line("Every disclosure, newest first", 12, "B", 7)
        for entry in record.entries:
            line(f"{_when(entry.disclosed_at)}  {entry.app_name or entry.app_id}  "
                 f"{entry.channel} {entry.endpoint}  {entry.entity}: {', '.join(entry.fields)}", 9,
                 height=5)
    return bytes(pdf.output())
