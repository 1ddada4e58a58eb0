"""The gradebook CSV files (categories, scoreScales, lineItems, results; 1.1's categories,
lineItems, results) are imported with the rest of a bundle: checked row by row like the rostering
files, read back through the gradebook REST service, and never touching what apps wrote."""
from __future__ import annotations

import base64
import csv
import datetime as dt

import pytest
from sqlalchemy import select

from gateway.gradebook.endpoints import BASE_PATH
from gateway.oauth import service
from gateway.oneroster.csv.binding import LINE_ITEMS
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.oneroster.vocabulary import GRADEBOOK_SCOPES, ROSTERING_SCOPES
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import app_district_id, set_policy
from gateway.store.events import Event
from gateway.store.gradebook import Category, LineItem, Result, ScoreScale
from gateway.store.models import utcnow

from bundles import (gradebook_district, v1p1_district, write_bundle,
                     write_v1p1_bundle)

NOW = dt.datetime(2026, 10, 1, 12, 0, 0)
LATER = dt.datetime(2026, 10, 2, 12, 0, 0)


def imported(database, path, files, modes=None, now=NOW, **options):
    with database.session_scope() as session:
        return import_bundle(session, write_bundle(path, files, modes=modes),
                             ImportOptions(force=True, now=now, **options))


def stored(database, model) -> dict:
    with database.session_scope() as session:
        return {row.sourced_id: row for row in session.execute(select(model)).scalars()}


@pytest.fixture
def gradebook_api(client, database):
    """Calls to the gradebook service as an app of d1 sharing everything (made when first
    called, after the district is imported): ``get(path, **query)``, ``put(path, body)``."""
    token = []

    def bearer() -> dict[str, str]:
        if not token:
            scopes = list(ROSTERING_SCOPES + GRADEBOOK_SCOPES)
            with database.session_scope() as session:
                creds = service.register_app(session, name="Gradebook app",
                                             district_sourced_id="d1", scopes=scopes, now=utcnow())
                set_policy(session, app_id=creds.app_id,
                           district_id=app_district_id(session, creds.app_id, "d1"),
                           document=share_everything_document(), now=utcnow())
            basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
            response = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                         "scope": " ".join(scopes)},
                                   headers={"Authorization": "Basic " + basic})
            assert response.status_code == 200, response.get_json()
            token.append(response.get_json()["access_token"])
        return {"Authorization": f"Bearer {token[0]}"}

    class Calls:
        @staticmethod
        def get(path: str, **query):
            response = client.get(BASE_PATH + path, query_string=query, headers=bearer())
            assert response.status_code == 200, response.get_json()
            return response.get_json()

        @staticmethod
        def put(path: str, body):
            return client.put(BASE_PATH + path, json=body, headers=bearer())
    return Calls


def test_a_1p2_gradebook_is_imported_and_served_by_the_gradebook_service(database, tmp_path,
                                                                           gradebook_api):
    report = imported(database, tmp_path / "b", gradebook_district())
    assert report.outcome == "applied", report.to_dict()
    assert {name: (c.added, c.rejected) for name, c in report.files.items()
            if name in ("categories", "scoreScales", "lineItems", "results")} == {
        "categories": (2, 0), "scoreScales": (1, 0), "lineItems": (3, 0), "results": (3, 0)}

    items = {item["sourcedId"]: item for item in gradebook_api.get("/lineItems")["lineItems"]}
    fractions = items["li-m1"]
    assert {k: fractions[k] for k in ("title", "description", "assignDate", "dueDate",
                                      "resultValueMin", "resultValueMax", "status")} == {
        "title": "Fractions", "description": "Worksheet 1",
        "assignDate": "2026-09-01T00:00:00.000Z", "dueDate": "2026-09-08T15:00:00.000Z",
        "resultValueMin": 0.0, "resultValueMax": 10.0, "status": "active"}
    assert (fractions["class"]["sourcedId"], fractions["school"]["sourcedId"],
            fractions["category"]["sourcedId"], fractions["academicSession"]["sourcedId"]) == (
        "k1", "s1", "cat-hw", "t1")
    # A blank school is the class's; a blank score range is REST's default (0 to 100).
    assert items["li-b2"]["school"]["sourcedId"] == "s2"
    assert (items["li-b2"]["resultValueMin"], items["li-b2"]["resultValueMax"]) == (0.0, 100.0)
    assert fractions["dateLastModified"] == "2026-10-01T12:00:00.000Z"

    results = {r["sourcedId"]: r for r in gradebook_api.get("/classes/k2/results")["results"]}
    assert sorted(results) == ["res-2", "res-3"]
    quiz = results["res-2"]
    assert (quiz["lineItem"]["sourcedId"], quiz["student"]["sourcedId"], quiz["score"],
            quiz["scoreStatus"], quiz["late"], quiz["missing"]) == (
        "li-b1", "u2", 15.5, "fully graded", "true", "false")
    [lisa] = gradebook_api.get("/classes/k1/results")["results"]
    assert (lisa["sourcedId"], lisa["score"], lisa["comment"], lisa["textScore"],
            lisa["class"]["sourcedId"]) == ("res-1", 9.0, "Well done", "A", "k1")

    categories = {c["sourcedId"]: c for c in gradebook_api.get("/categories")["categories"]}
    assert (categories["cat-hw"]["title"], categories["cat-hw"]["weight"]) == ("Homework", 0.4)
    scale = gradebook_api.get("/scoreScales/sc-letter")["scoreScale"]
    assert (scale["title"], scale["type"], scale["class"]["sourcedId"],
            scale["course"]["sourcedId"]) == ("Letters", "letter", "k2", "c2")
    assert scale["scoreScaleValue"] == [{"itemValueLHS": "90", "itemValueRHS": "A"},
                                        {"itemValueLHS": "80", "itemValueRHS": "B"},
                                        {"itemValueLHS": "0", "itemValueRHS": "F"}]
    assert stored(database, ScoreScale)["sc-letter"].org_sourced_id == "s2"
    assert {row.origin for model in (Category, ScoreScale, LineItem, Result)
            for row in stored(database, model).values() if not getattr(row, "is_default", False)
            } == {"sis"}


def test_gradebook_columns_are_read_by_name_in_any_order(database, tmp_path):
    files = gradebook_district()
    path = write_bundle(tmp_path / "b", files)
    header = ["dueDate", "sourcedId", "title", "classSourcedId", "categorySourcedId",
              "assignDate", "status", "dateLastModified"]
    with open(path / "lineItems.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in files["lineItems"]:
            writer.writerow([row.get(column, "") for column in header])
    with database.session_scope() as session:
        report = import_bundle(session, path, ImportOptions(force=True, now=NOW))
    assert report.outcome == "applied", report.to_dict()
    items = stored(database, LineItem)
    assert (items["li-m1"].title, items["li-m1"].school_sourced_id,
            items["li-m1"].result_value_max) == ("Fractions", "s1", 100.0)


def test_oneroster_1p1_gradebook_files_are_imported(database, tmp_path):
    v1p1, _ = v1p1_district()
    v1p1["categories"] = [{"sourcedId": "cat-hw", "title": "Homework"}]
    v1p1["lineItems"] = [
        {"sourcedId": "li-m1", "title": "Fractions", "assignDate": "2026-09-01",
         "dueDate": "2026-09-08", "classSourcedId": "k1", "categorySourcedId": "cat-hw",
         "gradingPeriodSourcedId": "t1", "resultValueMin": "0", "resultValueMax": "10"}]
    v1p1["results"] = [
        {"sourcedId": "res-1", "lineItemSourcedId": "li-m1", "studentSourcedId": "u1",
         "scoreStatus": "fully graded", "score": "7", "scoreDate": "2026-09-09",
         "comment": "Good"}]
    headers = {"categories": ("sourcedId", "status", "dateLastModified", "title"),
               "lineItems": ("sourcedId", "status", "dateLastModified", "title", "description",
                             "assignDate", "dueDate", "classSourcedId", "categorySourcedId",
                             "gradingPeriodSourcedId", "resultValueMin", "resultValueMax"),
               "results": ("sourcedId", "status", "dateLastModified", "lineItemSourcedId",
                           "studentSourcedId", "scoreStatus", "score", "scoreDate", "comment")}
    path = write_v1p1_bundle(tmp_path / "b", v1p1)
    for name, header in headers.items():
        with open(path / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in v1p1[name]:
                writer.writerow([row.get(column, "") for column in header])
    with database.session_scope() as session:
        report = import_bundle(session, path, ImportOptions(force=True, now=NOW))
    assert report.outcome == "applied", report.to_dict()
    assert not [n for n in report.notices if "not imported" in n.what]
    item = stored(database, LineItem)["li-m1"]
    assert (item.grading_period_sourced_id, item.school_sourced_id, item.category_sourced_id,
            item.result_value_max, item.assign_date) == (
        "t1", "s1", "cat-hw", 10.0, dt.datetime(2026, 9, 1))
    result = stored(database, Result)["res-1"]
    assert (result.class_sourced_id, result.line_item_id, result.score, result.comment,
            result.score_date) == ("k1", item.id, 7.0, "Good", dt.datetime(2026, 9, 9))
    assert stored(database, Category)["cat-hw"].title == "Homework"


def test_a_bulk_import_replaces_the_sis_records_and_never_what_apps_wrote(database, tmp_path,
                                                                        gradebook_api):
    assert imported(database, tmp_path / "one", gradebook_district()).outcome == "applied"
    # An app adds a line item and a result on it, and a result on an imported line item.
    response = gradebook_api.put("/lineItems/app-li", {"lineItem": {
        "title": "App quiz", "class": {"sourcedId": "k2"}, "category": {"sourcedId": "cat-test"},
        "assignDate": "2026-09-20T08:00:00Z", "dueDate": "2026-09-27T08:00:00Z"}})
    assert response.status_code == 201, response.get_json()
    for sourced_id, item in (("app-res", "app-li"), ("app-res-2", "li-b2")):
        response = gradebook_api.put(f"/results/{sourced_id}", {"result": {
            "lineItem": {"sourcedId": item}, "student": {"sourcedId": "u2"},
            "scoreStatus": "fully graded", "score": 5, "scoreDate": "2026-09-28"}})
        assert response.status_code == 201, response.get_json()

    files = gradebook_district()
    files["lineItems"] = [li for li in files["lineItems"] if li["sourcedId"] != "li-b2"]
    files["results"] = [r for r in files["results"] if r["sourcedId"] != "res-3"]
    # A row naming an app's record does not overwrite it.
    files["lineItems"].append({"sourcedId": "app-li", "title": "SIS title", "assignDate": "2026-09-01",
                               "dueDate": "2026-09-02", "classSourcedId": "k2",
                               "categorySourcedId": "cat-test"})
    report = imported(database, tmp_path / "two", files, now=LATER)
    assert report.outcome == "applied", report.to_dict()
    assert (report.files["lineItems"].deleted, report.files["results"].deleted) == (1, 1)
    assert [n.read for n in report.notices if "an app wrote" in n.what] == ["app-li"]
    items = stored(database, LineItem)
    assert {k: (v.status, v.origin) for k, v in items.items()} == {
        "li-m1": ("active", "sis"), "li-b1": ("active", "sis"), "li-b2": ("tobedeleted", "sis"),
        "app-li": ("active", "app")}
    assert items["app-li"].title == "App quiz"
    assert items["li-b2"].date_last_modified == LATER
    results = stored(database, Result)
    assert {k: (v.status, v.origin) for k, v in results.items()} == {
        "res-1": ("active", "sis"), "res-2": ("active", "sis"), "res-3": ("tobedeleted", "sis"),
        "app-res": ("active", "app"), "app-res-2": ("active", "app")}
    # An imported result may refer to an app's line item.
    files["results"].append({"sourcedId": "res-9", "lineItemSourcedId": "app-li",
                             "studentSourcedId": "u3", "scoreStatus": "submitted",
                             "scoreDate": "2026-09-28"})
    report = imported(database, tmp_path / "three", files, now=LATER)
    assert report.outcome == "applied", report.to_dict()
    assert stored(database, Result)["res-9"].line_item_id == items["app-li"].id


def test_delta_rows_mark_records_tobedeleted(database, tmp_path):
    assert imported(database, tmp_path / "one", gradebook_district()).outcome == "applied"
    files = {"lineItems": [
        {"sourcedId": "li-b2", "status": "tobedeleted", "dateLastModified": "2026-10-01T09:00:00Z",
         "title": "Lab report", "assignDate": "2026-09-03", "dueDate": "2026-09-10",
         "classSourcedId": "k2", "categorySourcedId": "cat-hw"}],
        "results": [
        {"sourcedId": "res-3", "status": "tobedeleted", "dateLastModified": "2026-10-01T09:30:00Z",
         "lineItemSourcedId": "li-b1", "studentSourcedId": "u3", "scoreStatus": "exempt",
         "scoreDate": "2026-09-10"}]}
    report = imported(database, tmp_path / "two", files,
                      modes={"lineItems": "delta", "results": "delta"}, now=LATER, district="d1")
    assert report.outcome == "applied", report.to_dict()
    assert (report.files["lineItems"].deleted, report.files["results"].deleted) == (1, 1)
    items, results = stored(database, LineItem), stored(database, Result)
    assert {k: v.status for k, v in items.items()} == {
        "li-m1": "active", "li-b1": "active", "li-b2": "tobedeleted"}
    assert items["li-b2"].date_last_modified == dt.datetime(2026, 10, 1, 9, 0)
    assert {k: v.status for k, v in results.items()} == {
        "res-1": "active", "res-2": "active", "res-3": "tobedeleted"}


def test_bad_references_are_reported_row_by_row_and_nothing_is_imported(database, tmp_path):
    files = gradebook_district()
    files["lineItems"].append({"sourcedId": "li-x", "title": "Lost", "assignDate": "2026-09-01",
                               "dueDate": "2026-09-02", "classSourcedId": "k9",
                               "categorySourcedId": "cat-none", "scoreScaleSourcedId": "sc-none"})
    files["results"] += [
        {"sourcedId": "res-x", "lineItemSourcedId": "li-none", "studentSourcedId": "u1",
         "scoreStatus": "fully graded", "scoreDate": "2026-09-09"},
        {"sourcedId": "res-y", "lineItemSourcedId": "li-m1", "studentSourcedId": "nobody",
         "scoreStatus": "graded", "scoreDate": "2026-09-09"},
        {"sourcedId": "res-z", "lineItemSourcedId": "li-m1", "studentSourcedId": "u1",
         "scoreStatus": "submitted", "scoreDate": "2026-09-09", "classSourcedId": "k2"},
    ]
    files["scoreScales"][0]["classSourcedId"] = "k8"
    # The line items' score scale, a column the binding's list lacks, is read when present.
    path = write_bundle(tmp_path / "b", files, headers={
        "lineItems": LINE_ITEMS.header + ("scoreScaleSourcedId",)})
    with database.session_scope() as session:
        report = import_bundle(session, path, ImportOptions(force=True, now=NOW))
    assert report.outcome == "rejected"
    found = {(p.file, p.line, p.column, p.value) for p in report.problems}
    assert {("lineItems.csv", 5, "classSourcedId", "k9"),
            ("lineItems.csv", 5, "categorySourcedId", "cat-none"),
            ("lineItems.csv", 5, "scoreScaleSourcedId", "sc-none"),
            ("results.csv", 5, "lineItemSourcedId", "li-none"),
            ("results.csv", 6, "scoreStatus", "graded"),
            ("results.csv", 7, "classSourcedId", "k2"),
            ("results.csv", 7, "studentSourcedId", "u1"),
            ("scoreScales.csv", 2, "classSourcedId", "k8")} <= found, sorted(found)
    assert report.files["results"].rejected >= 2
    assert stored(database, LineItem) == {} and stored(database, Category) == {}


def test_an_unchanged_bundle_changes_nothing(database, tmp_path):
    files = gradebook_district()
    assert imported(database, tmp_path / "one", files).outcome == "applied"
    before = {model.__name__: {k: (v.date_last_modified, v.row_hash)
                               for k, v in stored(database, model).items()}
              for model in (Category, ScoreScale, LineItem, Result)}
    report = imported(database, tmp_path / "two", files, now=LATER)
    assert report.outcome == "applied", report.to_dict()
    for name in ("categories", "scoreScales", "lineItems", "results"):
        counts = report.files[name]
        assert (counts.added, counts.changed, counts.deleted, counts.unchanged) == (
            0, 0, 0, len(files[name])), name
    after = {model.__name__: {k: (v.date_last_modified, v.row_hash)
                              for k, v in stored(database, model).items()}
             for model in (Category, ScoreScale, LineItem, Result)}
    assert after == before
    # A changed row is rewritten, and only it.
    files["results"][0]["score"] = "10"
    report = imported(database, tmp_path / "three", files, now=LATER)
    assert (report.files["results"].changed, report.files["results"].unchanged) == (1, 2)
    results = stored(database, Result)
    assert (results["res-1"].score, results["res-1"].date_last_modified) == (10.0, LATER)
    assert results["res-2"].date_last_modified == NOW


def test_a_gradebook_header_without_a_required_column_or_with_an_unknown_one_is_refused(
        database, tmp_path):
    files = gradebook_district()
    header = tuple(name for name in LINE_ITEMS.header if name != "classSourcedId")
    path = write_bundle(tmp_path / "b", files, headers={
        "lineItems": header, "categories": ("sourcedId", "status", "dateLastModified", "title",
                                            "weight", "colour")})
    with database.session_scope() as session:
        report = import_bundle(session, path, ImportOptions(force=True, now=NOW))
    assert report.outcome == "rejected"
    found = {(p.file, p.line, p.column) for p in report.problems}
    assert {("lineItems.csv", 1, "classSourcedId"), ("categories.csv", 1, "colour")} <= found
    assert stored(database, Result) == {}


def gradebook_events(database) -> list[tuple[str, str, str]]:
    """The district-wide change feed's gradebook events, in cursor order."""
    with database.session_scope() as session:
        rows = session.execute(select(Event.entity, Event.sourced_id, Event.kind)
                               .where(Event.app_id.is_(None),
                                      Event.entity.in_(("category", "scoreScale", "lineItem",
                                                        "result")))
                               .order_by(Event.seq)).all()
    return [tuple(row) for row in rows]


def test_imported_gradebook_changes_are_events_and_unchanged_rows_are_not(database, tmp_path):
    files = gradebook_district()
    assert imported(database, tmp_path / "one", files).outcome == "applied"
    assert gradebook_events(database) == [
        ("category", "cat-hw", "created"), ("category", "cat-test", "created"),
        ("scoreScale", "sc-letter", "created"), ("lineItem", "li-m1", "created"),
        ("lineItem", "li-b1", "created"), ("lineItem", "li-b2", "created"),
        ("result", "res-1", "created"), ("result", "res-2", "created"),
        ("result", "res-3", "created")]
    # The same bundle again: nothing changed, no event.
    assert imported(database, tmp_path / "two", files, now=LATER).outcome == "applied"
    assert len(gradebook_events(database)) == 9
    # One score changed, one line item left out of a bulk file (retired, with no result of its
    # own), one result deleted by its row.
    files["results"][0]["score"] = "10"
    files["results"][2]["status"] = "tobedeleted"
    files["lineItems"] = [row for row in files["lineItems"] if row["sourcedId"] != "li-b2"]
    report = imported(database, tmp_path / "three", files, now=LATER)
    assert report.outcome == "applied", report.to_dict()
    assert gradebook_events(database)[9:] == [
        ("lineItem", "li-b2", "deleted"), ("result", "res-1", "updated"),
        ("result", "res-3", "deleted")]
