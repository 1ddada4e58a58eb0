"""The one place the HTTP channels get what an app may see: its district's sharing policy for it,
as a :class:`~gateway.sharing.PolicyVisibility`, and where what they disclosed is recorded.

Disclosures are noted while a request reads and serializes, and appended to the ledger after the
view has built its response and before that response leaves: on SQLite in a transaction of the
ledger file of its own, through the process's own connection to that file (see
:func:`~gateway.sharing.append_noted`); on PostgreSQL in the reads' transaction, which then
commits once. If the append fails, the response is replaced by a 500: no data leaves
without its record."""
from __future__ import annotations

from flask import Flask, Response, current_app, g, request

from gateway import sharing
from gateway.database import get_database, request_session
from gateway.http.context import POLICY_CACHE
from gateway.sharing.ledger import fold_due, fold_ledger


def init_app(app: Flask) -> None:
    """Give the app its policy cache (parsed policies by version), and
    record each response's disclosures before it is sent."""
    app.extensions[POLICY_CACHE] = sharing.PolicyCache()
    app.after_request(_record_disclosures)
    # A request's visibilities hold its session: they must never outlive it, even where ``g``
    # does (an app context pushed around several requests, see gateway.cli.serve.isolated).
    app.teardown_request(lambda error: g.pop("visibilities", None))


def _record_disclosures(response: Response) -> Response:
    made = g.get("visibilities")
    if not made or response.status_code >= 400:
        return response
    writers = [visibility.ledger for visibility in made.values()
               if visibility.ledger is not None and visibility.ledger.pending]
    if not writers:
        return response
    session = request_session()
    database = get_database()
    try:
        if database.ledger_file is not None:
            # SQLite: the entries go in a transaction of the ledger file alone, through the
            # process's own connection to it (see gateway.store.LedgerFile), committed here; the
            # request's reads end at teardown. (SQLite cannot turn this request's read snapshot
            # into a write once another request has written since, SQLITE_BUSY_SNAPSHOT.)
            due = {district_id for district_id, seq in sharing.append_noted(
                database.ledger_file, database.engine.dialect, writers) if fold_due(seq)}
        else:
            # PostgreSQL (read committed) appends in the reads' transaction: the head's row lock
            # is still taken only at the append and sees the latest one, and one commit ends
            # both.
            due = set()
            for writer in writers:
                if any(fold_due(seq) for seq in writer.flush(fold_inline=False)):
                    due.add(writer.district_id)
            session.commit()
    except Exception as error:  # noqa: BLE001 - any failure must stop the data from leaving
        session.rollback()
        current_app.logger.exception("could not record a disclosure on %s", request.path)
        # The response never leaves: release what it holds (a download's open file) now.
        response.close()
        return current_app.make_response(current_app.handle_user_exception(error))
    if due:
        _fold_after(response, sorted(due))
    return response


def _fold_after(response: Response, district_ids: list[int]) -> None:
    """Fold the districts' pending entries into spans once ``response`` has gone: the fold is
    ledger upkeep (the entries are already committed, chained and durable), and the request
    whose append fell due should not wait for it (a fold of 256 pages takes a sizeable part of
    a second). A fold that fails stays due for the next one, or ``gateway ledger fold``."""
    app = current_app._get_current_object()

    def fold() -> None:
        try:
            with app.app_context():
                with get_database(app).session_scope() as session:
                    for district_id in district_ids:
                        fold_ledger(session, district_id, wait=False)
        except Exception:  # noqa: BLE001 -- nobody is waiting: log it, the entries stay pending
            app.logger.exception("folding the ledger after a response failed")
    response.call_on_close(fold)
