"""Importing a Microsoft School Data Sync v2.1 export (fixtures/sds-v2.1, written from Microsoft's
SDS v2.1 CSV documentation): served over the rostering API, idempotent, dry run, refusals."""
from __future__ import annotations

import zipfile

from formats_support import replace_in, rewrite
from gateway.formats import sds

EMPTY = {"orgs": 0, "academic_sessions": 0, "courses": 0, "classes": 0, "users": 0, "roles": 0,
         "enrollments": 0, "demographics": 0, "districts": 0}
IMPORTED = {"orgs": 3, "academic_sessions": 3, "courses": 4, "classes": 4, "users": 13, "roles": 13,
            "enrollments": 13, "demographics": 6, "districts": 1}


def test_the_sds_folder_is_recognized_imported_and_served(gateway_import, fixtures_dir, store_counts, rostering):
    result = gateway_import(fixtures_dir / "sds-v2.1")
    assert result.exit_code == 0, result.output
    assert "read as SDS v2.1 CSV" in result.output
    assert "district mg-district (Maple Grove School District)" in result.output
    assert "users.csv             bulk          13        0          0        0         0" in result.output
    assert "import applied" in result.output
    assert store_counts() == IMPORTED

    api = rostering("mg-district")
    assert api.ids("/schools") == ["mg-elem", "mg-high"]
    assert api.ids("/students") == ["s-1001", "s-1002", "s-1003", "s-1004", "s-1005", "s-1006"]
    assert api.ids("/teachers") == ["u-t1", "u-t2", "u-t3"]
    assert api.ids("/classes") == ["cl-advisory", "cl-bio-1", "cl-math-3a", "cl-read-k1"]
    assert api.ids("/classes/cl-bio-1/students") == ["s-1005", "s-1006"]
    assert len(api.ids("/enrollments")) == 13

    ava = api.get("/users/s-1001")["user"]
    assert (ava["givenName"], ava["familyName"], ava["username"]) == ("Ava", "Martinez",
                                                                     "s1001@students.maplegrove.example")
    assert ava["grades"] == ["KG"]  # roles.csv grade "kg", a CEDS code in 1.2
    assert ava["userIds"] == [{"type": "activeDirectoryMatchId", "identifier": "s1001@students.maplegrove.example"}]
    assert [agent["sourcedId"] for agent in ava["agents"]] == ["g-2001"]
    assert ava["metadata"] == {"relationshipRoles": "g-2001:guardian"}
    assert api.get("/users/s-1005")["user"]["grades"] == ["10"]
    assert api.get("/users/s-1003")["user"]["grades"] == ["03"]

    roles = {uid: [(r["role"], r["roleType"], r["org"]["sourcedId"]) for r in api.get(f"/users/{uid}")["user"]["roles"]]
             for uid in ("u-supt", "u-prin", "u-aide", "u-t3")}
    assert roles == {"u-supt": [("districtAdministrator", "primary", "mg-district")],
                     "u-prin": [("principal", "primary", "mg-elem")],
                     "u-aide": [("aide", "primary", "mg-elem")],
                     "u-t3": [("teacher", "primary", "mg-high"), ("teacher", "secondary", "mg-elem")]}

    bio = api.get("/classes/cl-bio-1")["class"]
    assert sorted(term["sourcedId"] for term in bio["terms"]) == ["fall2025", "spring2026"]
    assert bio["course"]["sourcedId"] == "c-bio-10" and bio["classCode"] == "BIO-10-1"
    advisory = api.get("/classes/cl-advisory")["class"]
    assert advisory["course"]["sourcedId"] == "cl-advisory:course"
    assert api.get("/courses/cl-advisory:course")["course"]["title"] == "Advisory 10B"
    assert api.get("/courses/c-read-k")["course"]["grades"] == ["KG"]
    assert api.get("/academicSessions/fall2025")["academicSession"]["type"] == "semester"

    zoe = api.get("/demographics/s-1003")["demographics"]
    assert (zoe["sex"], zoe["birthDate"], zoe["blackOrAfricanAmerican"], zoe["white"]) == \
        ("female", "2017-01-23", "true", "true")
    assert zoe["metadata"] == {"flags": "iep"}
    assert api.get("/demographics/s-1005")["demographics"]["sex"] == "unspecified"
    assert api.get("/demographics/s-1001")["demographics"]["hispanicOrLatinoEthnicity"] == "true"


def test_a_reimport_of_the_same_folder_changes_nothing(gateway_import, fixtures_dir, store_counts):
    assert gateway_import(fixtures_dir / "sds-v2.1").exit_code == 0
    again = gateway_import(fixtures_dir / "sds-v2.1")
    assert again.exit_code == 0, again.output
    assert "users.csv             bulk           0        0         13        0         0" in again.output
    assert "enrollments.csv       bulk           0        0         13        0         0" in again.output
    assert store_counts() == IMPORTED


def test_a_dry_run_prints_the_counts_per_entity_and_writes_nothing(gateway_import, fixtures_dir, store_counts):
    result = gateway_import(fixtures_dir / "sds-v2.1", "--dry-run")
    assert result.exit_code == 0, result.output
    for line in ("orgs.csv              bulk           3", "academicSessions.csv  bulk           3",
                 "courses.csv           bulk           4", "classes.csv           bulk           4",
                 "roles.csv             bulk          13", "demographics.csv      bulk           6"):
        assert line in result.output
    assert "note: roles.csv:8: column role: read 'teacherAssistant', stored 'aide'" in result.output
    assert "dry run: the bundle is valid; nothing was written" in result.output
    assert store_counts() == EMPTY


def test_named_with_format_it_imports_the_same(gateway_import, fixtures_dir):
    result = gateway_import(fixtures_dir / "sds-v2.1", "--format", "sds", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "read as SDS v2.1 CSV" in result.output


def test_a_broken_export_is_refused_with_every_problem_and_nothing_written(gateway_import, copy_fixture,
                                                                          store_counts):
    folder = copy_fixture("sds-v2.1")
    replace_in(folder / "orgs.csv", "mg-high,Maple Grove High School,school", "mg-high,Maple Grove High School,academy")
    replace_in(folder / "roles.csv", "s-1002,mg-elem,student,sy2026,kg", "s-1002,mg-elem,student,sy2026,k5")
    replace_in(folder / "roles.csv", "u-prin,mg-elem,principal", "u-prin,mg-elem,headmaster")
    replace_in(folder / "enrollments.csv", "cl-math-3a,s-1003,student", "cl-math-9z,s-1003,student")
    replace_in(folder / "demographics.csv", "s-1002,male", "s-1002,boy")
    replace_in(folder / "academicSessions.csv", "2025-08-25,2026-01-16", "2025-08-25,2026-02-30")
    replace_in(folder / "users.csv", "s-1004,s1004@students.maplegrove.example,Noah,",
               "s-1004,s1004@students.maplegrove.example,,")
    result = gateway_import(folder)
    assert result.exit_code == 1
    problems = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert problems == [
        f"roles.csv:10: column grade: value 'k5', expected {sds.GRADES.expected}",
        f"orgs.csv:4: column type: value 'academy', expected {sds.ORG_TYPES.expected}",
        "academicSessions.csv:3: column endDate: value '2026-02-30', expected a real calendar date YYYY-MM-DD",
        "users.csv:11: column givenName: value '', expected a non-empty value",
        "roles.csv:3: column role: value 'headmaster', expected " + sds.ROLES_VOCABULARY.expected,
        "enrollments.csv:7: column classSourcedId: value 'cl-math-9z', expected the sourcedId of a class in "
        "classes.csv (an enrollment's school is its class's orgSourcedId)",
        "demographics.csv:3: column sex: value 'boy', expected one of the SDS v2.1 values male, female, notSelected",
    ]
    assert "7 problem(s); the bundle was rejected and nothing was written" in result.output
    assert store_counts() == EMPTY


def test_a_missing_required_column_is_a_header_problem_naming_it(gateway_import, copy_fixture, store_counts):
    folder = copy_fixture("sds-v2.1")
    rewrite(folder / "classes.csv", "sourcedId,OrgSourcedId,title\ncl-1,mg-elem,Art\n")
    replace_in(folder / "users.csv", "sourcedId,username,givenName,familyName,",
               "sourcedId,username,givenName,surname,")
    result = gateway_import(folder)
    assert result.exit_code == 1
    assert ("classes.csv:1: column orgSourcedId: expected the required column(s) of SDS v2.1 classes.csv in the "
            "header: sourcedId, orgSourcedId, title ('OrgSourcedId' differs from 'orgSourcedId' in case: SDS v2.1 "
            "headers are case-sensitive)") in result.output
    assert ("users.csv:1: column familyName: expected the required column(s) of SDS v2.1 users.csv in the header: "
            "sourcedId, username, givenName, familyName") in result.output
    assert store_counts() == EMPTY


def test_an_optional_column_may_be_absent_and_an_unknown_one_is_kept_as_metadata(gateway_import, copy_fixture,
                                                                                 rostering):
    folder = copy_fixture("sds-v2.1")
    rewrite(folder / "orgs.csv", "name,type,sourcedId,region_code\n"
            "Maple Grove School District,district,mg-district,R7\n"
            "Maple Grove Elementary,school,mg-elem,R7\nMaple Grove High School,school,mg-high,R7\n")
    result = gateway_import(folder)
    assert result.exit_code == 0, result.output
    assert ("note: orgs.csv:1: column region_code: not a column of SDS v2.1 orgs.csv; kept as "
            "metadata.region_code") in result.output
    # Without parentSourcedId the schools are still the district's: it is the bundle's district org.
    assert rostering("mg-district").get("/schools/mg-elem")["org"]["metadata"] == {"region_code": "R7"}


def test_format_clever_on_an_sds_folder_says_what_is_missing(gateway_import, fixtures_dir, store_counts):
    result = gateway_import(fixtures_dir / "sds-v2.1", "--format", "clever", "--district", "x",
                            "--district-name", "X")
    assert result.exit_code == 1
    assert ("schools.csv: expected schools.csv in the bundle (a Clever export holds schools.csv, students.csv, "
            "teachers.csv, sections.csv and enrollments.csv)") in result.output
    assert "enrollments.csv:1: column School_id, Section_id, Student_id: expected the required column(s) of " \
           "Clever enrollments.csv in the header" in result.output
    assert store_counts() == EMPTY


def test_a_zip_of_the_export_folder_imports_too(gateway_import, fixtures_dir, tmp_path, store_counts):
    archive = tmp_path / "sds-export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted((fixtures_dir / "sds-v2.1").iterdir()):
            bundle.write(path, f"sds-export/{path.name}")  # "compress this folder" keeps the folder
    result = gateway_import(archive)
    assert result.exit_code == 0, result.output
    assert "read as SDS v2.1 CSV" in result.output
    assert store_counts() == IMPORTED


def test_strict_refuses_what_would_be_noted(gateway_import, fixtures_dir, store_counts):
    result = gateway_import(fixtures_dir / "sds-v2.1", "--strict")
    assert result.exit_code == 1
    assert ("roles.csv:8: column role: value 'teacherAssistant', expected the binding's exact form (no OneRoster "
            "1.2 value of its own; read as the closest one; without --strict it would be read as 'aide')"
            ) in result.output
    assert store_counts() == EMPTY


def test_sds_values_without_a_12_equivalent_are_kept_as_ext_values_or_the_closest_one(gateway_import, copy_fixture,
                                                                                      rostering):
    folder = copy_fixture("sds-v2.1")
    replace_in(folder / "orgs.csv", "mg-high,Maple Grove High School,school", "mg-high,Maple Grove High School,campus")
    replace_in(folder / "academicSessions.csv", "fall2025,Fall Semester 2025,semester", "fall2025,Fall Semester 2025,quarter")
    replace_in(folder / "roles.csv", "u-t2,mg-elem,teacher,sy2026,,TRUE", "u-t2,mg-elem,nurse,sy2026,,TRUE")
    replace_in(folder / "roles.csv", "s-1005,mg-high,student,sy2026,10", "s-1005,mg-high,Student,sy2026,ps2")
    result = gateway_import(folder)
    assert result.exit_code == 0, result.output
    for note in ("note: orgs.csv:4: column type: read 'campus', stored 'ext:campus'; no OneRoster 1.2 value; kept "
                 "as an ext: value",
                 "note: academicSessions.csv:3: column type: read 'quarter', stored 'term'; no OneRoster 1.2 type of "
                 "its own; read as term",
                 "note: roles.csv:5: column role: read 'nurse', stored 'ext:nurse'; no OneRoster 1.2 value; kept as an "
                 "ext: value",
                 "note: roles.csv:13: column role: read 'Student', stored 'student'; differs from the value 'student' "
                 "only in case or spaces",
                 "note: roles.csv:13: column grade: read 'ps2', stored 'ps2'; no CEDS grade code in OneRoster 1.2; "
                 "kept as given"):
        assert note in result.output
    api = rostering("mg-district")
    assert api.get("/orgs/mg-high")["org"]["type"] == "ext:campus"
    assert api.get("/terms/fall2025")["academicSession"]["type"] == "term"
    meera = api.get("/users/u-t2")["user"]
    assert [(r["role"], r["roleType"], r["org"]["sourcedId"], r["beginDate"], r["endDate"]) for r in meera["roles"]] \
        == [("ext:nurse", "primary", "mg-elem", "2025-08-25", "2026-06-12")]
    assert api.get("/users/s-1005")["user"]["grades"] == ["ps2"]
