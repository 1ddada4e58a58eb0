"""``GET /exports/oneroster-1.2.zip``: the app's own bundle with its bearer token, the same as
``gateway export`` writes, recorded in the ledger before a byte of it leaves."""
from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from gateway.cli import cli
from gateway.oneroster.vocabulary import (ROSTERING_SCOPES, SCOPE_ROSTER,
                                          SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.sharing.ledger import SpooledLedgerWriter
from gateway.sharing.policy import share_everything_document

from csv_export_support import as_csv, connected, ledger_entries, read_bundle
from test_csv_export import RESTRICTED

PATH = "/exports/oneroster-1.2.zip"


def download(client, token: str | None, **params):
    """The response, read whole and closed (a download holds its file open until then)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with client.get(PATH, query_string=params, headers=headers) as response:
        response.get_data()
    return response


def test_the_download_is_the_apps_bundle_and_is_recorded(
        connect_app, load_small, client, database, runner, tmp_path):
    load_small()
    app = connected(connect_app, client, RESTRICTED, ROSTERING_SCOPES)
    before = set(Path(tempfile.gettempdir()).glob("gateway-export-*"))
    response = download(client, app.token)
    assert response.status_code == 200
    # Built in a private folder, gone once the file is open: nothing stays on disk.
    assert set(Path(tempfile.gettempdir()).glob("gateway-export-*")) == before
    assert response.mimetype == "application/zip"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == \
        "attachment; filename=oneroster-1.2-bulk.zip"
    manifest, files, _ = read_bundle(response.data)
    entries = ledger_entries(database)
    assert {(e["channel"], e["endpoint"], e["app"]) for e in entries} == {
        ("csv-export", "getAllUsers", app.app_id),
        ("csv-export", "getAllEnrollments", app.app_id),
        ("csv-export", "getAllDemographics", app.app_id)}
    assert {e["entity"]: e["people"] for e in entries}["user"] == ["t-krab", "u2", "u3"]
    # The same bundle as the command writes for the app.
    out = tmp_path / "cli.zip"
    assert runner.invoke(cli, ["export", "--app", app.client_id, "--out", str(out)]).exit_code == 0
    assert read_bundle(out) == (manifest, files, read_bundle(response.data)[2])
    # And what REST serves it.
    served = app.api.records("/users")
    assert files["users"] == [as_csv("users", record, delta=False) | {"password": ""}
                              for record in served]


def test_a_delta_download(connect_app, load_small, client, database):
    load_small(now=dt.datetime(2026, 9, 1, 8))

    def edit(rows):
        rows["classes"][0]["title"] = "Math 3B"

    load_small(edit, now=dt.datetime(2026, 9, 2, 8))
    app = connected(connect_app, client, share_everything_document(), ROSTERING_SCOPES)
    response = download(client, app.token, since="2026-09-01T12:00:00Z")
    assert response.status_code == 200
    manifest, files, _ = read_bundle(response.data)
    assert manifest["file.classes"] == "delta" and set(files) == {"classes"}
    assert [(row["sourcedId"], row["status"], row["title"], row["dateLastModified"])
            for row in files["classes"]] == [
        ("k1", "active", "Math 3B", "2026-09-02T08:00:00.000Z")]
    # Classes are not about people: nothing to record.
    assert ledger_entries(database) == []


def _minor(response) -> str:
    return response.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"]


def test_the_download_needs_a_valid_token_with_a_roster_read_scope(
        connect_app, load_small, client, database, expire_tokens):
    load_small()
    missing = download(client, None)
    assert missing.status_code == 401 and _minor(missing) == "unauthorisedrequest"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert download(client, "not-a-token").status_code == 401
    demographics_only = connected(connect_app, client, share_everything_document(),
                                [SCOPE_ROSTER_DEMOGRAPHICS])
    refused = download(client, demographics_only.token)
    assert refused.status_code == 403 and _minor(refused) == "forbidden"
    nothing = connected(connect_app, client, None, ROSTERING_SCOPES, name="Unshared App")
    unshared = download(client, nothing.token)
    assert unshared.status_code == 403
    assert "no sharing policy" in unshared.get_json()["imsx_description"]
    app = connected(connect_app, client, share_everything_document(), [SCOPE_ROSTER], name="Other")
    expire_tokens()
    assert download(client, app.token).status_code == 401
    assert ledger_entries(database) == []


def test_a_bad_since_is_a_400(connect_app, load_small, client, database):
    load_small()
    app = connected(connect_app, client, share_everything_document(), ROSTERING_SCOPES)
    response = download(client, app.token, since="last week")
    assert response.status_code == 400 and _minor(response) == "invaliddata"
    assert "is not an ISO 8601 date-time" in response.get_json()["imsx_description"]
    assert ledger_entries(database) == []


def test_demographics_only_with_the_scope(connect_app, load_small, client, database):
    load_small()
    app = connected(connect_app, client, share_everything_document(), [SCOPE_ROSTER])
    manifest, files, _ = read_bundle(download(client, app.token).data)
    assert manifest["file.demographics"] == "absent" and "users" in files
    assert {e["endpoint"] for e in ledger_entries(database)} == {"getAllUsers",
                                                                 "getAllEnrollments"}


def test_no_record_no_bundle(connect_app, load_small, client, database, monkeypatch):
    load_small()
    app = connected(connect_app, client, share_everything_document(), ROSTERING_SCOPES)

    def fail(self):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr(SpooledLedgerWriter, "noted", fail)
    response = download(client, app.token)
    assert response.status_code == 500
    assert response.mimetype == "text/plain" and not response.data.startswith(b"PK")
    assert ledger_entries(database) == []
