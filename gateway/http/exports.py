"""The CSV export as a download, for vendors who take files: ``GET /exports/oneroster-1.2.zip``
(``?since=TIMESTAMP`` for a delta), with the app's OAuth bearer token and a roster read scope.

The OneRoster REST binding has no bundle operation, so the path is the gateway's own, outside
``/ims/oneroster/``; errors still carry the binding's body (401, 403, 400 for a bad ``since``).
The bundle is :func:`gateway.exporting.open_bundle`'s, built in a private temporary folder;
its disclosures are appended by the request's after-request hook (:mod:`gateway.http.visibility`)
like any REST response's, and only then is the file streamed from disk (never held in memory).
If the append fails the answer is a 500 and no byte of the bundle leaves.
"""
from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request, send_file

from gateway import exporting
from gateway.database import request_session
from gateway.http import context
from gateway.http.auth import authorize_request
from gateway.oneroster.endpoints import BASE_PATH
from gateway.sharing.ledger import SpooledLedgerWriter

blueprint = Blueprint("exports", __name__)

DOWNLOAD_PATH = "/exports/oneroster-1.2.zip"


@blueprint.get(DOWNLOAD_PATH)
def download() -> Response:
    """The bearer's bundle: bulk, or delta with ``since``."""
    grant = authorize_request(exporting.READ_SCOPES)
    since = exporting.parse_since(request.args.get("since"))
    if grant.policy_version is None:
        raise exporting.NothingShared("The district has set no sharing policy for this app: it "
                                      "shares nothing with it.")
    session = request_session()
    # The spool is an anonymous temporary file, closed at teardown once appended.
    ledger = g.export_ledger = SpooledLedgerWriter(session, app_id=grant.app_id,
                                                   district_id=grant.district_id)
    bundle, result = exporting.open_bundle(
        session, context.request_visibility(grant.app_id, grant.district_id,
                                            grant.policy_version, ledger=ledger),
        ledger, district_id=grant.district_id, since=since,
        scopes=grant.scopes,
        base_url=current_app.config["ISSUER"].rstrip("/") + BASE_PATH,
        default_category_title=current_app.config["DEFAULT_CATEGORY_TITLE"])
    response = send_file(bundle, mimetype="application/zip", as_attachment=True,
                         download_name=f"oneroster-1.2-{result.mode}.zip", conditional=False,
                         etag=False, max_age=0)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.teardown_request
def _close_spool(error: BaseException | None) -> None:
    # After the after-request hook appended the entries (or the request failed and recorded
    # nothing). Not on the response's close: a file response is passed straight to the server,
    # which closes the file, not the response.
    ledger = g.pop("export_ledger", None)
    if ledger is not None:
        ledger.close()
