"""Building OneRoster CSV bundles in tests: a small hand-written district, and a writer."""
from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Mapping, Sequence

from gateway.oneroster.csv import binding


def small_district() -> dict[str, list[dict[str, str]]]:
    """A tiny but complete district: 2 schools, a year with 2 terms, 3 classes, 7 users."""
    rows = {
        "orgs": [
            {"sourcedId": "d1", "name": "Springfield District", "type": "district", "identifier": "SD1"},
            {"sourcedId": "s1", "name": "Springfield Elementary", "type": "school", "identifier": "SE",
             "parentSourcedId": "d1"},
            {"sourcedId": "s2", "name": "Springfield High", "type": "school", "identifier": "SH",
             "parentSourcedId": "d1"},
        ],
        "academicSessions": [
            {"sourcedId": "y1", "title": "2026-2027", "type": "schoolYear", "startDate": "2026-08-15",
             "endDate": "2027-06-15", "schoolYear": "2027"},
            {"sourcedId": "t1", "title": "Fall", "type": "semester", "startDate": "2026-08-15",
             "endDate": "2026-12-20", "parentSourcedId": "y1", "schoolYear": "2027"},
            {"sourcedId": "t2", "title": "Spring", "type": "semester", "startDate": "2027-01-05",
             "endDate": "2027-06-15", "parentSourcedId": "y1", "schoolYear": "2027"},
        ],
        "courses": [
            {"sourcedId": "c1", "schoolYearSourcedId": "y1", "title": "Grade 3 Math", "courseCode": "M3",
             "grades": "03", "orgSourcedId": "s1", "subjects": "Mathematics"},
            {"sourcedId": "c2", "schoolYearSourcedId": "y1", "title": "Biology", "courseCode": "BIO",
             "grades": "09,10", "orgSourcedId": "s2", "subjects": "Science"},
        ],
        "classes": [
            {"sourcedId": "k1", "title": "Math 3A", "grades": "03", "courseSourcedId": "c1",
             "classCode": "M3A", "classType": "scheduled", "schoolSourcedId": "s1",
             "termSourcedIds": "t1,t2", "periods": "1"},
            {"sourcedId": "k2", "title": "Biology 1", "grades": "09", "courseSourcedId": "c2",
             "classCode": "BIO1", "classType": "scheduled", "schoolSourcedId": "s2",
             "termSourcedIds": "t1", "periods": "2,3"},
            {"sourcedId": "k3", "title": "Biology 2", "grades": "10", "courseSourcedId": "c2",
             "classCode": "BIO2", "classType": "scheduled", "schoolSourcedId": "s2",
             "termSourcedIds": "t2"},
        ],
        "users": [
            {"sourcedId": "u1", "enabledUser": "true", "username": "lisa", "userIds": "{SIS:1001}",
             "givenName": "Lisa", "familyName": "Simpson", "email": "lisa@example.edu", "grades": "03",
             "primaryOrgSourcedId": "s1", "agentSourcedIds": "p1", "pronouns": "she/her"},
            {"sourcedId": "u2", "enabledUser": "true", "username": "bart", "userIds": "{SIS:1002}",
             "givenName": "Bart", "familyName": "Simpson", "grades": "09", "primaryOrgSourcedId": "s2",
             "agentSourcedIds": "p1"},
            {"sourcedId": "u3", "enabledUser": "true", "username": "milhouse", "givenName": "Milhouse",
             "familyName": "Van Houten", "grades": "09", "primaryOrgSourcedId": "s2"},
            {"sourcedId": "u4", "enabledUser": "true", "username": "martin", "givenName": "Martin",
             "familyName": "Prince", "grades": "10", "primaryOrgSourcedId": "s2",
             "preferredGivenName": "Marty"},
            {"sourcedId": "t-hoover", "enabledUser": "true", "username": "hoover", "givenName": "Elizabeth",
             "familyName": "Hoover", "email": "hoover@example.edu", "primaryOrgSourcedId": "s1"},
            {"sourcedId": "t-krab", "enabledUser": "true", "username": "krabappel", "givenName": "Edna",
             "familyName": "Krabappel", "email": "edna@example.edu", "primaryOrgSourcedId": "s2"},
            {"sourcedId": "p1", "enabledUser": "true", "username": "marge", "givenName": "Marge",
             "familyName": "Simpson", "email": "marge@example.com", "phone": "555-0100"},
        ],
        "roles": [
            {"sourcedId": "r-u1", "userSourcedId": "u1", "roleType": "primary", "role": "student", "orgSourcedId": "s1"},
            {"sourcedId": "r-u2", "userSourcedId": "u2", "roleType": "primary", "role": "student", "orgSourcedId": "s2"},
            {"sourcedId": "r-u3", "userSourcedId": "u3", "roleType": "primary", "role": "student", "orgSourcedId": "s2"},
            {"sourcedId": "r-u4", "userSourcedId": "u4", "roleType": "primary", "role": "student", "orgSourcedId": "s2"},
            {"sourcedId": "r-th", "userSourcedId": "t-hoover", "roleType": "primary", "role": "teacher", "orgSourcedId": "s1"},
            {"sourcedId": "r-tk", "userSourcedId": "t-krab", "roleType": "primary", "role": "teacher", "orgSourcedId": "s2"},
            {"sourcedId": "r-p1", "userSourcedId": "p1", "roleType": "primary", "role": "parent", "orgSourcedId": "d1"},
        ],
        "enrollments": [
            {"sourcedId": "e1", "classSourcedId": "k1", "schoolSourcedId": "s1", "userSourcedId": "u1", "role": "student"},
            {"sourcedId": "e2", "classSourcedId": "k1", "schoolSourcedId": "s1", "userSourcedId": "t-hoover",
             "role": "teacher", "primary": "true"},
            {"sourcedId": "e3", "classSourcedId": "k2", "schoolSourcedId": "s2", "userSourcedId": "u2", "role": "student"},
            {"sourcedId": "e4", "classSourcedId": "k2", "schoolSourcedId": "s2", "userSourcedId": "u3", "role": "student"},
            {"sourcedId": "e5", "classSourcedId": "k2", "schoolSourcedId": "s2", "userSourcedId": "t-krab",
             "role": "teacher", "primary": "true"},
            {"sourcedId": "e6", "classSourcedId": "k3", "schoolSourcedId": "s2", "userSourcedId": "u4", "role": "student"},
            {"sourcedId": "e7", "classSourcedId": "k3", "schoolSourcedId": "s2", "userSourcedId": "t-krab",
             "role": "teacher", "primary": "true"},
        ],
        "demographics": [
            {"sourcedId": "u1", "birthDate": "2018-05-09", "sex": "female", "white": "true"},
            {"sourcedId": "u2", "birthDate": "2011-04-01", "sex": "male", "white": "true"},
        ],
        "userProfiles": [
            {"sourcedId": "up1", "userSourcedId": "t-hoover", "profileType": "lms", "vendorId": "acme",
             "credentialType": "password", "username": "ehoover"},
        ],
    }
    return copy.deepcopy(rows)


def write_bundle(directory: Path, files: Mapping[str, Sequence[Mapping[str, str]]],
                 modes: Mapping[str, str] | None = None, metadata: Mapping[str, Sequence[str]] | None = None,
                 headers: Mapping[str, Sequence[str]] | None = None, bom: bool = False) -> Path:
    """Write ``files`` (file name -> rows as dicts) as a bundle with a manifest into ``directory``.

    ``modes`` defaults to bulk for every file given; ``metadata`` adds metadata.* columns;
    ``headers`` replaces a file's header verbatim (to write broken bundles).
    """
    directory.mkdir(parents=True, exist_ok=True)
    modes = dict(modes or {})
    for name in files:
        modes.setdefault(name, "bulk")
    with open(directory / binding.MANIFEST, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(binding.MANIFEST_HEADER)
        writer.writerow(["manifest.version", "1.0"])
        writer.writerow(["oneroster.version", "1.2"])
        for name in binding.ALL_FILE_NAMES:
            writer.writerow([f"file.{name}", modes.get(name, "absent")])
        writer.writerow(["source.systemName", "Test SIS"])
    for name, rows in files.items():
        header = list(headers[name]) if headers and name in headers else (
            list(binding.ROSTERING_BY_NAME[name].header) + [f"metadata.{m}" for m in (metadata or {}).get(name, ())])
        with open(directory / f"{name}.csv", "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for row in rows:
                writer.writerow([row.get(column, "") for column in header])
    return directory


V1P1_MANIFEST_FILES = ("academicSessions", "categories", "classes", "classResources", "courses",
                       "courseResources", "demographics", "enrollments", "lineItems", "orgs", "resources",
                       "results", "users")
V1P1_USERS_HEADER = ("sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
                     "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email",
                     "sms", "phone", "agentSourcedIds", "grades", "password")
# The 1.2-only user columns a 1.1 export cannot carry.
V1P2_ONLY_USER_COLUMNS = ("userMasterIdentifier", "preferredGivenName", "preferredMiddleName",
                          "preferredFamilyName", "primaryOrgSourcedId", "pronouns")


def v1p1_district() -> tuple[dict[str, list[dict[str, str]]], dict[str, list[dict[str, str]]]]:
    """The small district as a OneRoster 1.1 export, and its 1.2 twin converted by hand from the
    1.1 specification (not by the gateway's code): (1.1 files, 1.2 files).

    The 1.1 users carry their orgs and one role; the twin has one roles.csv row per org (the first
    primary), 1.1's ``administrator`` as siteAdministrator at a school and districtAdministrator at
    the district, and none of the 1.2-only user fields.
    """
    base = small_district()
    base["users"] += [
        {"sourcedId": "a-skinner", "enabledUser": "true", "username": "skinner", "givenName": "Seymour",
         "familyName": "Skinner", "email": "skinner@example.edu"},
        {"sourcedId": "a-chalmers", "enabledUser": "true", "username": "chalmers", "givenName": "Gary",
         "familyName": "Chalmers", "email": "chalmers@example.edu"},
    ]
    # 1.1 role and orgs per user; Krabappel teaches at both schools (a secondary role).
    v1p1_roles = {"u1": ("student", ["s1"]), "u2": ("student", ["s2"]), "u3": ("student", ["s2"]),
                  "u4": ("student", ["s2"]), "t-hoover": ("teacher", ["s1"]),
                  "t-krab": ("teacher", ["s2", "s1"]), "p1": ("parent", ["d1"]),
                  "a-skinner": ("administrator", ["s2"]), "a-chalmers": ("administrator", ["d1"])}
    v1p2_role = {("administrator", "s2"): "siteAdministrator", ("administrator", "s1"): "siteAdministrator",
                 ("administrator", "d1"): "districtAdministrator"}
    v1p1 = {name: rows for name, rows in copy.deepcopy(base).items() if name not in ("roles", "userProfiles")}
    twin = {name: rows for name, rows in copy.deepcopy(base).items() if name != "userProfiles"}
    for user in v1p1["users"]:
        role, orgs = v1p1_roles[user["sourcedId"]]
        user["role"], user["orgSourcedIds"] = role, ",".join(orgs)
        for column in V1P2_ONLY_USER_COLUMNS:
            user.pop(column, None)
    for user in twin["users"]:
        for column in V1P2_ONLY_USER_COLUMNS:
            user.pop(column, None)
    twin["roles"] = [
        {"sourcedId": f"{sid}@{org}", "userSourcedId": sid, "roleType": "primary" if i == 0 else "secondary",
         "role": v1p2_role.get((role, org), role), "orgSourcedId": org}
        for sid, (role, orgs) in v1p1_roles.items() for i, org in enumerate(orgs)]
    return v1p1, twin


def write_v1p1_bundle(directory: Path, files: Mapping[str, Sequence[Mapping[str, str]]],
                      modes: Mapping[str, str] | None = None,
                      manifest_rows: Sequence[tuple[str, str]] | None = None) -> Path:
    """Write ``files`` as a OneRoster 1.1 bundle: the 1.1 manifest (``manifest_rows`` replaces
    its property rows verbatim) and the 1.1 headers (users.csv's differs from 1.2's)."""
    directory.mkdir(parents=True, exist_ok=True)
    modes = dict(modes or {})
    for name in files:
        modes.setdefault(name, "bulk")
    rows = manifest_rows or ([("manifest.version", "1.0"), ("oneroster.version", "1.1")]
                             + [(f"file.{name}", modes.get(name, "absent")) for name in V1P1_MANIFEST_FILES]
                             + [("source.systemName", "Old SIS")])
    with open(directory / binding.MANIFEST, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(binding.MANIFEST_HEADER)
        writer.writerows(rows)
    for name, records in files.items():
        header = V1P1_USERS_HEADER if name == "users" else binding.ROSTERING_BY_NAME[name].header
        with open(directory / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for record in records:
                writer.writerow([record.get(column, "") for column in header])
    return directory


def import_small_district(session, folder: Path) -> dict:
    """Import :func:`small_district` (written to ``folder``) in ``session``; returns its rows."""
    from gateway.oneroster.csv.importer import ImportOptions, import_bundle

    rows = small_district()
    report = import_bundle(session, write_bundle(folder, rows), ImportOptions(force=True))
    assert report.outcome == "applied"
    return rows


def zipped(folder: Path) -> bytes:
    """The files of a bundle folder as the bytes of a .zip (what a person uploads)."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return out.getvalue()


def gradebook_district() -> dict[str, list[dict[str, str]]]:
    """The small district with a gradebook: two categories, a score scale of k2, three line
    items (one without a school: k1's, s1), and results of u1 (k1) and u2, u3 (k2)."""
    files = small_district()
    files["categories"] = [
        {"sourcedId": "cat-hw", "title": "Homework", "weight": "0.4"},
        {"sourcedId": "cat-test", "title": "Tests", "weight": "0.6"},
    ]
    files["scoreScales"] = [
        {"sourcedId": "sc-letter", "title": "Letters", "type": "letter", "orgSourcedId": "s2",
         "courseSourcedId": "c2", "classSourcedId": "k2",
         "scoreScaleValue": "{90:A},{80:B},{0:F}"},
    ]
    files["lineItems"] = [
        {"sourcedId": "li-m1", "title": "Fractions", "description": "Worksheet 1",
         "assignDate": "2026-09-01", "dueDate": "2026-09-08T15:00:00Z", "classSourcedId": "k1",
         "categorySourcedId": "cat-hw", "academicSessionSourcedId": "t1",
         "resultValueMin": "0", "resultValueMax": "10"},
        {"sourcedId": "li-b1", "title": "Cells quiz", "assignDate": "2026-09-02",
         "dueDate": "2026-09-09", "classSourcedId": "k2", "categorySourcedId": "cat-test",
         "schoolSourcedId": "s2", "resultValueMax": "20"},
        {"sourcedId": "li-b2", "title": "Lab report", "assignDate": "2026-09-03",
         "dueDate": "2026-09-10", "classSourcedId": "k2", "categorySourcedId": "cat-hw"},
    ]
    files["results"] = [
        {"sourcedId": "res-1", "lineItemSourcedId": "li-m1", "studentSourcedId": "u1",
         "scoreStatus": "fully graded", "score": "9", "scoreDate": "2026-09-09",
         "comment": "Well done", "textScore": "A"},
        {"sourcedId": "res-2", "lineItemSourcedId": "li-b1", "studentSourcedId": "u2",
         "scoreStatus": "fully graded", "score": "15.5", "scoreDate": "2026-09-10",
         "classSourcedId": "k2", "late": "true", "missing": "false"},
        {"sourcedId": "res-3", "lineItemSourcedId": "li-b1", "studentSourcedId": "u3",
         "scoreStatus": "exempt", "scoreDate": "2026-09-10"},
    ]
    return files
