"""Helpers for the CSV export tests: connecting an app with a policy, reading a bundle, the
ledger's entries, and what REST serves expressed as the CSV binding's columns (written out here,
independently of the exporter, so a wrong mapping there cannot agree with itself)."""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import select

from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.sharing.ledger import entry_people
from gateway.sharing.policy import share_everything_document
from gateway.store.sharing import LedgerEntry

from rostering_api import Api


@dataclass
class Connected:
    """An app on a district: its ids, a bearer token and a REST client with it."""

    app_id: int
    client_id: str
    token: str
    api: Api


def connected(connect_app, client, policy: dict[str, Any] | None, scopes: Iterable[str],
              name: str = "Export App", on=None) -> Connected:
    """A new app on district d1 with ``policy`` (None: none) and ``scopes`` (``connect_app``:
    the fixture of tests/http/conftest.py), with a REST client on ``client``."""
    creds, token = connect_app("d1", scopes, policy, name, on=on)
    return Connected(creds.app_id, creds.client_id, token, Api(client, token))


def imported_elsewhere(connect_app, other, bundle: Path, scopes: Iterable[str]) -> Connected:
    """Import ``bundle`` into gateway ``other`` (the ``empty_store`` fixture) and connect an app
    sharing everything there: a REST client on the copy."""
    with other.extensions["gateway.db"].session_scope() as session:
        report = import_bundle(session, bundle, ImportOptions())
        assert report.outcome == "applied", [str(p) for p in report.problems]
    return connected(connect_app, other.test_client(), share_everything_document(), scopes,
                     on=other)


def downloaded(app: Connected) -> tuple[dict[str, str], dict[str, list[dict[str, str]]],
                                         dict[str, list[str]]]:
    """The app's bundle as ``GET /exports/oneroster-1.2.zip`` sends it, read back."""
    with app.api.client.get("/exports/oneroster-1.2.zip",
                            headers={"Authorization": f"Bearer {app.token}"}) as response:
        assert response.status_code == 200
        return read_bundle(response.get_data())


def read_bundle(data: bytes | Path) -> tuple[dict[str, str], dict[str, list[dict[str, str]]],
                                             dict[str, list[str]]]:
    """A bundle zip's manifest properties, each data file's rows (by header) and headers."""
    raw = data.read_bytes() if isinstance(data, Path) else data
    with zipfile.ZipFile(io.BytesIO(raw)) as bundle:
        texts = {name: bundle.read(name).decode("utf-8") for name in bundle.namelist()}
    manifest_rows = list(csv.reader(io.StringIO(texts.pop("manifest.csv"))))
    assert manifest_rows[0] == ["propertyName", "value"]
    manifest = {key: value for key, value in manifest_rows[1:]}
    files, headers = {}, {}
    for name, text in texts.items():
        reader = csv.DictReader(io.StringIO(text))
        files[name[:-len(".csv")]] = list(reader)
        headers[name[:-len(".csv")]] = list(reader.fieldnames or ())
    return manifest, files, headers


def ledger_entries(database) -> list[dict[str, Any]]:
    """Every ledger entry, in order, with the people it names."""
    with database.session_scope() as session:
        return [{"channel": e.channel, "endpoint": e.endpoint, "entity": e.entity,
                 "fields": list(e.fields), "records": e.record_count, "app": e.app_id,
                 "people": entry_people(session, e.district_id, e.seq)}
                for e in session.execute(select(LedgerEntry).order_by(LedgerEntry.seq)).scalars()]


def _ref(value: Any) -> str:
    return value["sourcedId"] if value else ""


def _refs(value: Any) -> str:
    return ",".join(item["sourcedId"] for item in value or ())


def _list(value: Any) -> str:
    return ",".join(value or ())


# For each file: CSV column -> how to get its value from the REST record (a field name, or a
# function of the record). Columns REST has no value for (passwords) are absent: always blank.
REST_TO_CSV: dict[str, dict[str, Any]] = {
    "orgs": {"name": "name", "type": "type", "identifier": "identifier",
             "parentSourcedId": lambda r: _ref(r.get("parent"))},
    "academicSessions": {"title": "title", "type": "type", "startDate": "startDate",
                         "endDate": "endDate", "schoolYear": "schoolYear",
                         "parentSourcedId": lambda r: _ref(r.get("parent"))},
    "courses": {"schoolYearSourcedId": lambda r: _ref(r.get("schoolYear")), "title": "title",
                "courseCode": "courseCode", "grades": lambda r: _list(r.get("grades")),
                "orgSourcedId": lambda r: _ref(r.get("org")),
                "subjects": lambda r: _list(r.get("subjects")),
                "subjectCodes": lambda r: _list(r.get("subjectCodes"))},
    "classes": {"title": "title", "grades": lambda r: _list(r.get("grades")),
                "courseSourcedId": lambda r: _ref(r.get("course")), "classCode": "classCode",
                "classType": "classType", "location": "location",
                "schoolSourcedId": lambda r: _ref(r.get("school")),
                "termSourcedIds": lambda r: _refs(r.get("terms")),
                "subjects": lambda r: _list(r.get("subjects")),
                "subjectCodes": lambda r: _list(r.get("subjectCodes")),
                "periods": lambda r: _list(r.get("periods"))},
    "users": {"enabledUser": "enabledUser", "username": "username",
              "userIds": lambda r: ",".join(f"{{{i['type']}:{i['identifier']}}}"
                                            for i in r.get("userIds") or ()),
              "givenName": "givenName", "familyName": "familyName", "middleName": "middleName",
              "identifier": "identifier", "email": "email", "sms": "sms", "phone": "phone",
              "agentSourcedIds": lambda r: _refs(r.get("agents")),
              "grades": lambda r: _list(r.get("grades")),
              "userMasterIdentifier": "userMasterIdentifier",
              "preferredGivenName": "preferredFirstName",
              "preferredMiddleName": "preferredMiddleName",
              "preferredFamilyName": "preferredLastName",
              "primaryOrgSourcedId": lambda r: _ref(r.get("primaryOrg")), "pronouns": "pronouns"},
    "enrollments": {"classSourcedId": lambda r: _ref(r.get("class")),
                    "schoolSourcedId": lambda r: _ref(r.get("school")),
                    "userSourcedId": lambda r: _ref(r.get("user")), "role": "role",
                    "primary": "primary", "beginDate": "beginDate", "endDate": "endDate"},
    "resources": {"vendorResourceId": "vendorResourceId", "title": "title",
                  "roles": lambda r: _list(r.get("roles")), "importance": "importance",
                  "vendorId": "vendorId", "applicationId": "applicationId"},
    "demographics": {name: name for name in (
        "birthDate", "sex", "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation",
        "cityOfBirth", "publicSchoolResidenceStatus")},
}


def as_csv(file_name: str, record: dict[str, Any], *, delta: bool) -> dict[str, str]:
    """The row a REST record should be in its CSV file (sourcedId, status and dateLastModified
    blank in a bulk file, the record's own in a delta)."""
    row = {"sourcedId": record["sourcedId"],
           "status": record["status"] if delta else "",
           "dateLastModified": record["dateLastModified"] if delta else ""}
    for column, source in REST_TO_CSV[file_name].items():
        value = source(record) if callable(source) else record.get(source)
        row[column] = "" if value is None else value
    return row
