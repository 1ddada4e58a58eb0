"""Importing a Clever-format export (fixtures/clever, written from Clever's SFTP/CSV
specification) for a district moving off Clever: served over the rostering API, idempotent, dry
run, refusals."""
from __future__ import annotations

from formats_support import replace_in, rewrite
from gateway.formats import clever
from gateway.oneroster.csv.importer import ImportOptions, import_bundle

DISTRICT = ("--district", "riverbend", "--district-name", "Riverbend School District")
EMPTY = {"orgs": 0, "academic_sessions": 0, "courses": 0, "classes": 0, "users": 0, "roles": 0,
         "enrollments": 0, "demographics": 0, "districts": 0}
# 2 schools and the district; 3 terms and 4 courses from 5 sections; 7 students, 3 teachers (one at
# both schools: 4 rows), 1 staff; 9 student and 6 teacher enrollments.
IMPORTED = {"orgs": 3, "academic_sessions": 3, "courses": 4, "classes": 5, "users": 11, "roles": 12,
            "enrollments": 15, "demographics": 7, "districts": 1}


def test_the_clever_folder_is_recognized_imported_and_served(gateway_import, fixtures_dir, store_counts, rostering):
    result = gateway_import(fixtures_dir / "clever", *DISTRICT)
    assert result.exit_code == 0, result.output
    assert "read as Clever CSV" in result.output
    assert "district riverbend (Riverbend School District)" in result.output
    assert "import applied" in result.output
    assert store_counts() == IMPORTED

    api = rostering("riverbend")
    assert api.ids("/schools") == ["sch-cedar", "sch-oak"]
    assert api.get("/schools/sch-oak")["org"]["parent"]["sourcedId"] == "riverbend"
    assert api.get("/schools/sch-oak")["org"]["identifier"] == "101"
    assert api.ids("/students") == [f"st-100{n}" for n in range(1, 8)]
    assert api.ids("/teachers") == ["t-501", "t-502", "t-503"]
    assert api.ids("/classes") == ["sec-3-math", "sec-hr-8", "sec-k-read", "sec-sci-7a", "sec-sci-7b"]
    assert api.ids("/classes/sec-k-read/teachers") == ["t-501", "t-502"]
    assert api.ids("/classes/sec-sci-7b/students") == ["st-1005", "st-1006"]

    emma = api.get("/users/st-1001")["user"]
    assert (emma["givenName"], emma["familyName"], emma["username"], emma["identifier"]) == \
        ("Emma", "Johnson", "ejohnson", "1001")
    assert emma["grades"] == ["KG"]
    assert emma["userIds"] == [{"type": "StateID", "identifier": "OR-551001"}]
    assert emma["metadata"] == {"ext.homeroom": "K-1"}
    assert api.get("/users/st-1005")["user"]["grades"] == ["07"]

    # Listed at two schools: one user, a role at each, the first primary.
    osei = api.get("/users/t-503")["user"]
    assert [(r["role"], r["roleType"], r["org"]["sourcedId"]) for r in osei["roles"]] == [
        ("teacher", "primary", "sch-cedar"), ("teacher", "secondary", "sch-oak")]
    assert osei["metadata"] == {"Title": "Science Teacher"}
    reed = api.get("/users/st-900")["user"]
    assert [(r["role"], r["org"]["sourcedId"]) for r in reed["roles"]] == [("siteAdministrator", "sch-cedar")]

    # Sections' courses and terms, once each, with the same sourcedIds on every import.
    seven_a = api.get("/classes/sec-sci-7a")["class"]
    seven_b = api.get("/classes/sec-sci-7b")["class"]
    assert seven_a["course"]["sourcedId"] == seven_b["course"]["sourcedId"] == "course:sch-cedar:SCI-7"
    assert [t["sourcedId"] for t in seven_a["terms"]] == ["term:Fall 2025:2025-08-25:2026-01-16"]
    assert (seven_a["title"], seven_a["classCode"], seven_a["grades"], seven_a["periods"], seven_a["subjects"]) == \
        ("Life Science A", "SCI7-A", ["07"], ["3"], ["Science"])
    assert api.get("/classes/sec-hr-8")["class"]["classType"] == "homeroom"
    course = api.get("/courses/course:sch-cedar:SCI-7")["course"]
    assert (course["title"], course["courseCode"], course["metadata"]) == \
        ("Life Science", "SCI-7", {"Course_description": "Cells and ecosystems"})
    year = api.get("/terms/term:2025-2026:2025-08-25:2026-06-12")["academicSession"]
    assert (year["title"], year["startDate"], year["endDate"], year["schoolYear"], year["type"]) == \
        ("2025-2026", "2025-08-25", "2026-06-12", "2026", "term")
    assert sorted(api.ids("/terms")) == ["term:2025-2026:2025-08-25:2026-06-12",
                                         "term:Fall 2025:2025-08-25:2026-01-16",
                                         "term:Spring 2026:2026-01-20:2026-06-12"]

    primary = {e["user"]["sourcedId"]: e.get("primary") for e in api.get("/enrollments", limit="100")["enrollments"]
               if e["class"]["sourcedId"] == "sec-k-read" and e["role"] == "teacher"}
    assert primary == {"t-501": "true", "t-502": "false"}

    mateo = api.get("/demographics/st-1002")["demographics"]
    assert (mateo["sex"], mateo["birthDate"], mateo["white"], mateo["hispanicOrLatinoEthnicity"]) == \
        ("male", "2019-09-30", "true", "true")
    assert mateo["metadata"] == {"Ell_status": "Y", "Frl_status": "Free", "IEP_status": "N",
                                 "Home_language": "Spanish"}
    assert api.get("/demographics/st-1004")["demographics"]["sex"] == "other"
    assert api.get("/demographics/st-1007")["demographics"]["nativeHawaiianOrOtherPacificIslander"] == "true"


def test_a_reimport_of_the_same_folder_changes_nothing(gateway_import, fixtures_dir, store_counts):
    assert gateway_import(fixtures_dir / "clever", *DISTRICT).exit_code == 0
    again = gateway_import(fixtures_dir / "clever", "--district", "riverbend")
    assert again.exit_code == 0, again.output
    for line in ("orgs.csv              bulk           0        0          3", 
                 "academicSessions.csv  bulk           0        0          3",
                 "courses.csv           bulk           0        0          4",
                 "users.csv             bulk           0        0         11",
                 "roles.csv             bulk           0        0         12",
                 "enrollments.csv       bulk           0        0         15"):
        assert line in again.output
    assert store_counts() == IMPORTED


def test_a_dry_run_prints_the_counts_per_entity_and_writes_nothing(gateway_import, fixtures_dir, store_counts):
    result = gateway_import(fixtures_dir / "clever", "--dry-run", *DISTRICT)
    assert result.exit_code == 0, result.output
    for line in ("orgs.csv              bulk           3", "academicSessions.csv  bulk           3",
                 "courses.csv           bulk           4", "classes.csv           bulk           5",
                 "users.csv             bulk          11", "roles.csv             bulk          12",
                 "enrollments.csv       bulk          15", "demographics.csv      bulk           7"):
        assert line in result.output
    assert "dry run: the bundle is valid; nothing was written" in result.output
    assert store_counts() == EMPTY


def test_without_a_district_the_export_is_refused(gateway_import, fixtures_dir, store_counts):
    result = gateway_import(fixtures_dir / "clever")
    assert result.exit_code == 1
    assert ("schools.csv: expected an org of type district in orgs.csv, or --district SOURCEDID (with "
            "--district-name NAME when the district is new) for a bundle without one") in result.output
    assert store_counts() == EMPTY


def test_a_broken_export_is_refused_with_every_problem_and_nothing_written(gateway_import, copy_fixture,
                                                                          store_counts):
    folder = copy_fixture("clever")
    replace_in(folder / "students.csv", "Johnson,,Emma,Kindergarten,F", "Johnson,,Emma,Kindergarden,F")
    replace_in(folder / "students.csv", "Kim,,Hana,3,F,02/07/2017,A", "Kim,,Hana,3,Q,02/07/2017,Z")
    replace_in(folder / "teachers.csv", "sch-oak,t-503,503,ORT-88503,aosei@riverbend.example,Ama,",
               "sch-oak,t-503,503,ORT-88503,aosei@riverbend.example,Amy,")
    replace_in(folder / "sections.csv", "Spring 2026,01/20/2026,06/12/2026", "Spring 2026,01/20/2026,06/31/2026")
    replace_in(folder / "sections.csv", "sch-oak,sec-3-math,t-502,,Grade 3 Math,M3-1,3,Math 3,MTH-3,,2,Math,"
               "2025-2026,08/25/2025,06/12/2026", "sch-oak,sec-3-math,t-502,,Grade 3 Math,M3-1,3,Math 3,MTH-3,,2,"
               "Math,,,")
    replace_in(folder / "enrollments.csv", "sch-cedar,sec-hr-8,st-1007", "sch-cedar,sec-hr-9,st-1007")
    result = gateway_import(folder, *DISTRICT)
    assert result.exit_code == 1
    problems = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert problems == [
        "sections.csv:5: column Term_end: value '06/31/2026', expected a date, MM/DD/YYYY or YYYY-MM-DD (a "
        "OneRoster 1.2 term has start and end dates)",
        "sections.csv:3: column Term_name: value '', expected a term: Term_name, Term_start and Term_end "
        "(OneRoster 1.2 classes belong to terms)",
        f"students.csv:2: column Grade: value 'Kindergarden', expected {clever.GRADES.expected}",
        "teachers.csv:5: column Teacher_id: value 't-503', expected the same person as line 4 (a person listed for "
        "several schools or in several files repeats the same names, email, username and grade; another "
        "person needs another id)",
        f"students.csv:4: column Gender: value 'Q', expected {clever.GENDERS.expected}",
        f"students.csv:4: column Race: value 'Z', expected {clever.RACES.expected}",
        "enrollments.csv:10: column Section_id: value 'sec-hr-9', expected the sourcedId of a record in sections.csv",
    ]
    assert "classes.csv           bulk           0        0          0        0         2" in result.output
    assert store_counts() == EMPTY


def test_a_missing_required_column_is_a_header_problem_naming_it(gateway_import, copy_fixture, store_counts):
    folder = copy_fixture("clever")
    rewrite(folder / "enrollments.csv", "school_id,Section_id,Student\nsch-oak,sec-k-read,st-1001\n")
    result = gateway_import(folder, *DISTRICT)
    assert result.exit_code == 1
    assert ("enrollments.csv:1: column School_id, Student_id: expected the required column(s) of Clever "
            "enrollments.csv in the header: School_id, Section_id, Student_id ('school_id' differs from "
            "'School_id' in case: Clever headers are case-sensitive)") in result.output
    assert store_counts() == EMPTY


def test_format_sds_on_a_clever_folder_says_what_is_missing(gateway_import, fixtures_dir, store_counts):
    result = gateway_import(fixtures_dir / "clever", "--format", "sds", *DISTRICT)
    assert result.exit_code == 1
    for name in ("orgs.csv", "users.csv", "roles.csv"):
        assert (f"{name}: expected {name} in the bundle (SDS v2.1 exports always hold orgs.csv, users.csv and "
                "roles.csv)") in result.output
    assert "note: schools.csv: not a file of SDS v2.1; it was not read" in result.output
    assert store_counts() == EMPTY


def test_a_folder_of_no_known_format_names_them_all(gateway_import, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "people.csv").write_text("id,name\n1,A\n", encoding="utf-8")
    result = gateway_import(folder)
    assert result.exit_code == 1
    assert clever.TITLE in result.output and "Microsoft School Data Sync v2.1" in result.output


def test_the_progress_bar_covers_every_file_read_and_merged(database, fixtures_dir):
    seen: list[tuple[int, int]] = []
    with database.session_scope() as session:
        report = import_bundle(session, fixtures_dir / "clever",
                               ImportOptions(district="riverbend", district_name="Riverbend School District"),
                               progress=lambda done, total: seen.append((done, total)))
        assert report.outcome == "applied"
    # students.csv, teachers.csv... are read once per 1.2 file they feed, and all of it is merged.
    total = seen[-1][1]
    assert seen[-1] == (total, total) and total > 0
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_file_names_in_another_case_are_read_with_a_notice(gateway_import, copy_fixture, store_counts):
    folder = copy_fixture("clever")
    (folder / "students.csv").rename(folder / "Students.csv")
    result = gateway_import(folder, *DISTRICT)
    assert result.exit_code == 0, result.output
    assert "note: Students.csv: file name differs from the binding's students.csv only in case; read as " \
           "students.csv" in result.output
    assert store_counts() == IMPORTED
