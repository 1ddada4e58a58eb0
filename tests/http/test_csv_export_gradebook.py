"""The gradebook in an app's CSV export: categories.csv, scoreScales.csv, lineItems.csv and
results.csv are what the Gradebook service serves the app, row by row, in the binding's columns;
they come with the scopes that read them; results are in the ledger with their students; and the
bundle imports into another gateway as the same gradebook."""
from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.cli import cli
from gateway.gradebook.endpoints import BASE_PATH as GRADEBOOK
from gateway.oneroster.csv import binding
from gateway.oneroster.vocabulary import (ROSTERING_SCOPES, SCOPE_GRADEBOOK,
                                          SCOPE_GRADEBOOK_CORE)
from gateway.sharing.policy import share_everything_document

from bundles import gradebook_district, write_bundle
from csv_export_support import (connected, downloaded, imported_elsewhere, ledger_entries,
                                read_bundle)
# A second gateway on an empty store, to import a bundle into.
from test_csv_export import empty_store  # noqa: F401

GRADEBOOK_SCOPES = (*ROSTERING_SCOPES, SCOPE_GRADEBOOK)
ELEMENTARY = {"schools": ["s1"], "fields": {"user": ["*"]}, "pseudonymize": ["user.sourcedId"]}
"""Springfield Elementary only (class k1 and its student u1), user ids pseudonymized."""
FILES = {"categories": "categories", "scoreScales": "scoreScales", "lineItems": "lineItems",
         "results": "results"}
"""Each gradebook file and the collection REST serves it from (the same names)."""


def export(runner, app, out, *more: str):
    """``gateway export`` of ``app`` to ``out``; the bundle read back."""
    result = runner.invoke(cli, ["export", "--app", app.client_id, "--out", str(out), *more])
    assert result.exit_code == 0, result.output
    return read_bundle(out)


def served(app, collection: str) -> list[dict]:
    """The records of a gradebook collection REST serves the app."""
    response = app.api.client.get(f"{GRADEBOOK}/{collection}", query_string={"limit": "1000"},
                                  headers={"Authorization": f"Bearer {app.token}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()[collection]


def _ref(value: Any) -> str:
    return value["sourcedId"] if value else ""


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# For each file: CSV column -> how to get its value from the REST record, written out here
# (independently of the exporter's mapping).
REST_TO_CSV: dict[str, dict[str, Any]] = {
    "categories": {"title": "title", "weight": "weight"},
    "scoreScales": {"title": "title", "type": "type", "orgSourcedId": lambda r: "",
                    "courseSourcedId": lambda r: _ref(r.get("course")),
                    "classSourcedId": lambda r: _ref(r.get("class")),
                    "scoreScaleValue": lambda r: ",".join(
                        f"{{{v['itemValueLHS']}:{v['itemValueRHS']}}}"
                        for v in r["scoreScaleValue"])},
    "lineItems": {"title": "title", "description": "description", "assignDate": "assignDate",
                  "dueDate": "dueDate", "classSourcedId": lambda r: _ref(r.get("class")),
                  "categorySourcedId": lambda r: _ref(r.get("category")),
                  "academicSessionSourcedId": lambda r: _ref(r.get("academicSession")),
                  "resultValueMin": "resultValueMin", "resultValueMax": "resultValueMax",
                  "schoolSourcedId": lambda r: _ref(r.get("school"))},
    "results": {"lineItemSourcedId": lambda r: _ref(r.get("lineItem")),
                "studentSourcedId": lambda r: _ref(r.get("student")),
                "scoreStatus": "scoreStatus", "score": "score", "scoreDate": "scoreDate",
                "comment": "comment", "textScore": "textScore",
                "classSourcedId": lambda r: _ref(r.get("class")), "inProgress": "inProgress",
                "incomplete": "incomplete", "late": "late", "missing": "missing"},
}


def as_csv(file_name: str, record: dict[str, Any], *, delta: bool) -> dict[str, str]:
    """The row a gradebook REST record should be in its CSV file."""
    row = {"sourcedId": record["sourcedId"],
           "status": record["status"] if delta else "",
           "dateLastModified": record["dateLastModified"] if delta else ""}
    for column, source in REST_TO_CSV[file_name].items():
        row[column] = _text(source(record) if callable(source) else record.get(source))
    return row


def assert_rows_are_served(app, files, headers, *, delta: bool = False) -> None:
    """Each gradebook file holds, row by row, what REST serves the app (an absent file: none)."""
    for name, collection in FILES.items():
        records = served(app, collection)
        if delta:
            records = [r for r in records if r["sourcedId"] in
                       {row["sourcedId"] for row in files.get(name, ())}]
        assert [as_csv(name, r, delta=delta) for r in records] == files.get(name, []), name
        if name in files:
            assert headers[name] == list(binding.GRADEBOOK_BY_NAME[name].header)


def test_a_restricted_apps_gradebook_is_what_rest_serves_it(
        connect_app, load_bundle, client, database, runner, tmp_path):
    load_bundle(write_bundle(tmp_path / "district", gradebook_district()))
    app = connected(connect_app, client, ELEMENTARY, GRADEBOOK_SCOPES)
    manifest, files, headers = export(runner, app, tmp_path / "bundle.zip")

    assert_rows_are_served(app, files, headers)
    # k1's line item and Lisa's result only, Lisa by her pseudonym; k2's score scale is not the
    # app's, so there is no scoreScales file.
    assert [row["sourcedId"] for row in files["lineItems"]] == ["li-m1"]
    [result] = files["results"]
    [lisa] = [user["sourcedId"] for user in files["users"] if user["givenName"] == "Lisa"]
    assert (result["sourcedId"], result["studentSourcedId"], result["score"]) == (
        "res-1", lisa, "9.0")
    assert lisa != "u1"
    assert manifest["file.scoreScales"] == "absent" and "scoreScales" not in files
    assert {manifest[f"file.{name}"] for name in ("categories", "lineItems", "results")} == {
        "bulk"}

    # Lisa's grade is about Lisa: in the ledger on the export's channel, as REST's read is.
    entries = [e for e in ledger_entries(database)
               if e["channel"] == "csv-export" and e["entity"] == "result"]
    assert [(e["endpoint"], e["records"], e["people"]) for e in entries] == [
        ("getAllResults", 1, ["u1"])]


def test_a_share_everything_app_gets_every_gradebook_file(
        connect_app, load_bundle, client, database, runner, tmp_path):
    load_bundle(write_bundle(tmp_path / "district", gradebook_district()))
    app = connected(connect_app, client, share_everything_document(), GRADEBOOK_SCOPES)
    _, files, headers = export(runner, app, tmp_path / "bundle.zip")
    assert_rows_are_served(app, files, headers)
    assert files["scoreScales"][0]["scoreScaleValue"] == "{90:A},{80:B},{0:F}"
    assert sorted(row["sourcedId"] for row in files["results"]) == ["res-1", "res-2", "res-3"]
    [entry] = [e for e in ledger_entries(database)
               if e["channel"] == "csv-export" and e["entity"] == "result"]
    assert (entry["records"], sorted(entry["people"])) == (3, ["u1", "u2", "u3"])


def test_gradebook_files_come_with_the_scopes_that_read_them(
        connect_app, load_bundle, client, database, runner, tmp_path):
    load_bundle(write_bundle(tmp_path / "district", gradebook_district()))
    everything = share_everything_document()
    roster = connected(connect_app, client, everything, ROSTERING_SCOPES, "Roster")
    manifest, files, _ = export(runner, roster, tmp_path / "roster.zip")
    assert not set(files) & set(FILES)
    assert all(manifest[f"file.{name}"] == "absent" for name in FILES)
    assert not [e for e in ledger_entries(database) if e["entity"] == "result"]
    # gradebook-core.readonly reads the top-level collections, so it gets the files too.
    core = connected(connect_app, client, everything, (*ROSTERING_SCOPES, SCOPE_GRADEBOOK_CORE),
                     "Core")
    _, files, _ = export(runner, core, tmp_path / "core.zip")
    assert set(FILES) <= set(files)


def test_a_delta_has_the_gradebook_records_changed_since(
        connect_app, load_bundle, client, runner, tmp_path):
    rows = gradebook_district()
    load_bundle(write_bundle(tmp_path / "first", rows), now=dt.datetime(2026, 9, 1, 8))
    app = connected(connect_app, client, share_everything_document(), GRADEBOOK_SCOPES)
    served(app, "categories")  # the classes' default categories, made on the first read
    rows["results"][0]["score"] = "10"
    rows["results"] = rows["results"][:2]  # res-3 retired
    load_bundle(write_bundle(tmp_path / "second", rows), now=dt.datetime(2026, 9, 2, 8))
    manifest, files, headers = export(runner, app, tmp_path / "delta.zip",
                                      "--since", "2026-09-01T12:00:00Z")
    # The results changed; the classes' default categories were made (now) after ``since``.
    assert {name for name in FILES if manifest[f"file.{name}"] == "delta"} == {
        "categories", "results"}
    assert {row["title"] for row in files["categories"]} == {"Default"}
    assert [(r["sourcedId"], r["status"], r["score"]) for r in files["results"]] == [
        ("res-1", "active", "10.0"), ("res-3", "tobedeleted", "")]
    assert_rows_are_served(app, files, headers, delta=True)


def test_a_share_everything_bundle_reimports_with_the_same_gradebook(
        connect_app, load_bundle, client, runner, tmp_path, empty_store):  # noqa: F811
    load_bundle(write_bundle(tmp_path / "district", gradebook_district()))
    app = connected(connect_app, client, share_everything_document(), GRADEBOOK_SCOPES)
    out = tmp_path / "everything.zip"
    export(runner, app, out)
    copy = imported_elsewhere(connect_app, empty_store, out, GRADEBOOK_SCOPES)
    for collection in FILES.values():
        assert _contents(served(copy, collection)) == _contents(served(app, collection)), \
            collection


def _contents(records: list[dict]) -> list[dict]:
    """Records without their stamps and links (the import stamps its own; hrefs name each
    gateway)."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("dateLastModified", "href")}
        return value
    return sorted((strip(record) for record in records), key=lambda r: r["sourcedId"])


def test_the_download_holds_the_same_gradebook_files_as_the_command(
        connect_app, load_bundle, client, runner, tmp_path):
    load_bundle(write_bundle(tmp_path / "district", gradebook_district()))
    app = connected(connect_app, client, ELEMENTARY, GRADEBOOK_SCOPES)
    bundle = downloaded(app)
    written = export(runner, app, tmp_path / "cli.zip")
    for name in ("categories", "lineItems", "results"):
        assert bundle[1][name] == written[1][name], name
    assert len(bundle[1]["results"]) == 1


def test_a_restricted_bundle_reimports_as_the_gradebook_the_app_sees(
        connect_app, load_bundle, client, runner, tmp_path, empty_store):  # noqa: F811
    load_bundle(write_bundle(tmp_path / "district", gradebook_district()))
    app = connected(connect_app, client, ELEMENTARY, GRADEBOOK_SCOPES)
    out = tmp_path / "elementary.zip"
    export(runner, app, out)
    copy = imported_elsewhere(connect_app, empty_store, out, GRADEBOOK_SCOPES)
    for collection in ("lineItems", "results"):
        assert _contents(served(copy, collection)) == _contents(served(app, collection)), \
            collection
