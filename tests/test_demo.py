"""The demo district generator: a valid, realistic, deterministic OneRoster 1.2.1 CSV bundle."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from gateway.cli import cli
from gateway.demo import ALL_GRADES, DemoBundle, generate_demo_bundle
from gateway.errors import UsageError
from gateway.oneroster import vocabulary
from gateway.oneroster.csv import binding

# The committed bundle in fixtures/demo is exactly what these arguments produce.
FIXTURE_ARGS = ["--schools", "3", "--students", "60", "--seed", "1"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_USER_IDS = re.compile(r"\{[^{}:,]+:[^{}:,]+\}(,\{[^{}:,]+:[^{}:,]+\})*")


def _read(directory: Path) -> tuple[list[tuple[str, str]], dict[str, list[dict[str, str]]]]:
    """The manifest rows and each rostering file's rows (as dicts), checking each header."""
    with open(directory / binding.MANIFEST, encoding="utf-8", newline="") as stream:
        manifest = [tuple(row) for row in csv.reader(stream)]
    assert manifest[0] == binding.MANIFEST_HEADER
    files: dict[str, list[dict[str, str]]] = {}
    for csv_file in binding.ROSTERING_FILES:
        with open(directory / csv_file.filename, encoding="utf-8", newline="") as stream:
            rows = list(csv.reader(stream))
        assert tuple(rows[0]) == csv_file.header, csv_file.filename
        assert all(len(row) == len(csv_file.header) for row in rows), csv_file.filename
        files[csv_file.name] = [dict(zip(csv_file.header, row)) for row in rows[1:]]
    return manifest[1:], files


def _check_bundle(directory: Path) -> dict[str, list[dict[str, str]]]:
    """Every rule a consumer relies on: binding types, enums, references, and the shape of a
    real district. Returns the rows for further checks."""
    manifest, files = _read(directory)
    ids = {name: {row["sourcedId"] for row in rows} for name, rows in files.items()}

    assert dict(manifest) == {
        "manifest.version": "1.0", "oneroster.version": "1.2",
        **{f"file.{name}": ("bulk" if name in files else "absent") for name in binding.ALL_FILE_NAMES},
        "source.systemName": "K-12 Gateway demo district generator",
        "source.systemCode": "gateway-demo",
    }
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [binding.MANIFEST] + [f.filename for f in binding.ROSTERING_FILES])

    for csv_file in binding.ROSTERING_FILES:
        rows = files[csv_file.name]
        assert rows, f"{csv_file.filename} has no rows (it would have to be listed absent)"
        assert len(ids[csv_file.name]) == len(rows), f"duplicate sourcedId in {csv_file.filename}"
        for row in rows:
            for column in csv_file.columns:
                value = row[column.name]
                where = f"{csv_file.filename} {row['sourcedId']} {column.name}={value!r}"
                assert "\n" not in value and "\r" not in value, where
                if column.required:
                    assert value, where
                if not value:
                    continue
                if column.kind in ("status", "datetime"):
                    pytest.fail(f"bulk rows leave {column.name} blank: {where}")
                elif column.kind == "enum":
                    assert value in column.enum, where
                elif column.kind == "bool":
                    assert value in ("true", "false"), where
                elif column.kind == "date":
                    assert _DATE.fullmatch(value) and dt.date.fromisoformat(value), where
                elif column.kind == "year":
                    assert re.fullmatch(r"\d{4}", value), where
                elif column.kind == "userids":
                    assert _USER_IDS.fullmatch(value), where
                elif column.kind == "ref":
                    assert value in ids[column.target], where
                elif column.kind == "reflist":
                    assert all(v in ids[column.target] for v in value.split(",")), where
                elif column.kind == "list":
                    assert all(v.strip() for v in value.split(",")), where
    # Demographics describe the user with the same sourcedId.
    assert ids["demographics"] <= ids["users"]

    orgs = {row["sourcedId"]: row for row in files["orgs"]}
    sessions = {row["sourcedId"]: row for row in files["academicSessions"]}
    courses = {row["sourcedId"]: row for row in files["courses"]}
    classes = {row["sourcedId"]: row for row in files["classes"]}
    users = {row["sourcedId"]: row for row in files["users"]}

    districts = [o for o in orgs.values() if o["type"] == "district"]
    assert len(districts) == 1
    district = districts[0]["sourcedId"]
    schools = {k for k, o in orgs.items() if o["type"] == "school"}
    assert schools and all(orgs[s]["parentSourcedId"] == district for s in schools)

    by_type = Counter(s["type"] for s in sessions.values())
    assert by_type == {"schoolYear": 1, "semester": 2, "gradingPeriod": 4}
    for session in sessions.values():
        assert session["startDate"] < session["endDate"]
        parent = sessions.get(session["parentSourcedId"])
        expected_parent = {"schoolYear": None, "semester": "schoolYear", "gradingPeriod": "semester"}
        assert (parent["type"] if parent else None) == expected_parent[session["type"]]
        if parent:
            assert parent["startDate"] <= session["startDate"] <= session["endDate"] <= parent["endDate"]
    year = next(s for s in sessions.values() if s["type"] == "schoolYear")

    for course in courses.values():
        assert course["orgSourcedId"] in schools
        assert course["schoolYearSourcedId"] == year["sourcedId"]
        assert course["grades"] in ALL_GRADES
    for cls in classes.values():
        course = courses[cls["courseSourcedId"]]
        assert cls["schoolSourcedId"] == course["orgSourcedId"]
        assert cls["grades"] == course["grades"]
        assert all(sessions[t]["type"] == "semester" for t in cls["termSourcedIds"].split(","))
        assert cls["periods"]
        if cls["classType"] == "homeroom":
            assert cls["grades"] in ("KG", "01", "02", "03", "04", "05")

    # One primary role per user, at the user's primary org.
    roles_by_user = defaultdict(list)
    for role in files["roles"]:
        roles_by_user[role["userSourcedId"]].append(role)
    assert set(roles_by_user) == set(users)
    role_of = {}
    for uid, roles in roles_by_user.items():
        assert [r["roleType"] for r in roles] == ["primary"], uid
        role_of[uid] = roles[0]["role"]
        assert roles[0]["orgSourcedId"] == users[uid]["primaryOrgSourcedId"]
        expected_org = (orgs[district]["sourcedId"] if roles[0]["role"] == "districtAdministrator"
                        else None)
        if expected_org:
            assert roles[0]["orgSourcedId"] == expected_org
        else:
            assert roles[0]["orgSourcedId"] in schools
    for role in files["roles"]:
        if role["userProfileSourcedId"]:
            profiles = {p["sourcedId"]: p for p in files["userProfiles"]}
            assert profiles[role["userProfileSourcedId"]]["userSourcedId"] == role["userSourcedId"]

    for user in users.values():
        assert user["enabledUser"] == "true"
        assert user["password"] == ""
        assert user["username"]
    usernames = Counter(u["username"] for u in users.values())
    assert usernames.most_common(1)[0][1] == 1, "usernames are unique"

    students = {k for k, r in role_of.items() if r == "student"}
    teachers = {k for k, r in role_of.items() if r == "teacher"}
    assert ids["demographics"] == students
    for uid in students:
        user = users[uid]
        assert user["grades"] in ALL_GRADES and user["email"] and user["identifier"]
        for agent in filter(None, user["agentSourcedIds"].split(",")):
            assert role_of[agent] in ("parent", "guardian")
            assert uid in users[agent]["agentSourcedIds"].split(",")
    for uid, role in role_of.items():
        if role in ("parent", "guardian"):
            children = users[uid]["agentSourcedIds"].split(",")
            assert children and all(c in students for c in children)

    # Enrollments: each class has one primary teacher; students sit in classes of their school
    # and grade, about six each.
    primaries = Counter()
    per_student = Counter()
    for enrollment in files["enrollments"]:
        cls = classes[enrollment["classSourcedId"]]
        assert enrollment["schoolSourcedId"] == cls["schoolSourcedId"]
        user = users[enrollment["userSourcedId"]]
        assert user["primaryOrgSourcedId"] == cls["schoolSourcedId"]
        if enrollment["role"] == "teacher":
            assert enrollment["userSourcedId"] in teachers
            if enrollment["primary"] == "true":
                primaries[cls["sourcedId"]] += 1
        else:
            assert enrollment["role"] == "student" and enrollment["userSourcedId"] in students
            assert enrollment["primary"] == ""
            assert user["grades"] == cls["grades"]
            per_student[enrollment["userSourcedId"]] += 1
    assert set(primaries) == set(classes) and set(primaries.values()) == {1}
    assert set(per_student) == students
    assert set(per_student.values()) <= {5, 6, 7}
    pairs = Counter((e["classSourcedId"], e["userSourcedId"]) for e in files["enrollments"])
    assert pairs.most_common(1)[0][1] == 1, "nobody is enrolled twice in a class"

    # Birth dates fit the grade: five on September 1 in kindergarten, six in grade 1, ...
    september = dt.date(int(year["startDate"][:4]), 9, 1)
    for row in files["demographics"]:
        born = dt.date.fromisoformat(row["birthDate"])
        grade = users[row["sourcedId"]]["grades"]
        age = september.year - born.year - ((september.month, september.day) < (born.month, born.day))
        assert age == 5 + (0 if grade == "KG" else int(grade)), (row["sourcedId"], grade, born)
    return files


Rows = dict[str, list[dict[str, str]]]


def _generate(tmp_path_factory, name: str, **kwargs) -> tuple[DemoBundle, Rows]:
    directory = tmp_path_factory.mktemp(name)
    bundle = generate_demo_bundle(directory / "bundle", **kwargs)
    return bundle, _check_bundle(bundle.path)


@pytest.fixture(scope="module")
def default_bundle(tmp_path_factory):
    """A bundle with the default number of schools and a thousand students."""
    return _generate(tmp_path_factory, "default", students=1000, seed=7)


def _files_bytes(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# --- the service -------------------------------------------------------------------------------

def test_every_file_has_the_binding_header_exactly(default_bundle):
    bundle, _ = default_bundle
    for csv_file in binding.ROSTERING_FILES:
        raw = (bundle.path / csv_file.filename).read_bytes()
        assert raw.startswith((",".join(csv_file.header) + "\r\n").encode())
        assert raw.endswith(b"\r\n")
    assert (bundle.path / "manifest.csv").read_bytes().startswith(b"propertyName,value\r\n")


def test_files_are_exactly_what_csv_writer_would_write(default_bundle):
    bundle, _ = default_bundle
    for path in bundle.path.iterdir():
        text = path.read_bytes().decode("utf-8")
        rewritten = io.StringIO()
        csv.writer(rewritten, lineterminator="\r\n").writerows(csv.reader(text.splitlines()))
        assert rewritten.getvalue() == text, path.name


def test_counts_match_the_arguments(default_bundle):
    bundle, files = default_bundle
    assert bundle.counts == {f.filename: len(files[f.name]) for f in binding.ROSTERING_FILES}
    roles = Counter(r["role"] for r in files["roles"])
    orgs = Counter(o["type"] for o in files["orgs"])
    assert orgs == {"district": 1, "school": 6}
    assert roles["student"] == len(files["demographics"]) == 1000
    assert roles["districtAdministrator"] == 2 and roles["principal"] == 6
    assert 40 <= roles["teacher"] <= 60  # about one per twenty students
    assert 200 <= roles["parent"] + roles["guardian"] <= 700
    enrolled = Counter(e["role"] for e in files["enrollments"])
    assert 5500 <= enrolled["student"] <= 7000  # about six classes each
    assert 1 <= len(files["userProfiles"]) <= roles["teacher"] // 4


def test_sections_are_filled_evenly(default_bundle):
    _, files = default_bundle
    seats = Counter(e["classSourcedId"] for e in files["enrollments"] if e["role"] == "student")
    assert set(seats) == {c["sourcedId"] for c in files["classes"]}  # no empty section
    assert max(seats.values()) <= 28
    by_course = defaultdict(list)
    for cls in files["classes"]:
        by_course[cls["courseSourcedId"]].append(seats[cls["sourcedId"]])
    assert all(max(sizes) - min(sizes) <= 1 for sizes in by_course.values())


def test_the_default_district_covers_kindergarten_to_grade_12(default_bundle):
    _, files = default_bundle
    kinds = sorted(o["name"].rsplit(" ", 2)[-2] for o in files["orgs"] if o["type"] == "school")
    assert kinds == ["Elementary"] * 3 + ["High"] + ["Middle"] * 2
    assert {c["grades"] for c in files["courses"]} == set(ALL_GRADES)
    assert {u["grades"] for u in files["users"] if u["grades"]} == set(ALL_GRADES)
    by_grade = Counter(u["grades"] for u in files["users"] if u["grades"])
    assert max(by_grade.values()) - min(by_grade.values()) <= 1  # evenly spread over grades
    homerooms = {c["grades"] for c in files["classes"] if c["classType"] == "homeroom"}
    assert homerooms == {"KG", "01", "02", "03", "04", "05"}


def test_values_are_varied_and_realistic(default_bundle):
    _, files = default_bundle
    users = files["users"]
    assert len({u["familyName"] for u in users}) > 150
    assert any(not u["givenName"].isascii() for u in users)
    assert any(u["preferredGivenName"] for u in users) and any(u["pronouns"] for u in users)
    assert any("," in u["userIds"] for u in users)  # several ids in one quoted field
    assert any("," in u["agentSourcedIds"] for u in users)
    assert any("," in c["termSourcedIds"] for c in files["classes"])
    assert {c["termSourcedIds"].count(",") for c in files["classes"]} == {0, 1}
    assert any("," in c["periods"] for c in files["classes"])
    demographics = files["demographics"]
    assert {d["sex"] for d in demographics} <= vocabulary.SEXES
    assert len({d["sex"] for d in demographics}) >= 3
    assert {d["hispanicOrLatinoEthnicity"] for d in demographics} == {"true", "false"}
    assert any(d["demographicRaceTwoOrMoreRaces"] == "true" for d in demographics)
    assert any(d["countryOfBirthCode"] != "US" for d in demographics)
    assert {e["primary"] for e in files["enrollments"] if e["role"] == "teacher"} == {"true", "false"}


@pytest.mark.parametrize(("schools", "students"), [(1, 1), (2, 25), (3, 13), (40, 300)])
def test_any_size_gives_a_valid_k12_bundle(tmp_path_factory, schools, students):
    bundle, files = _generate(tmp_path_factory, f"size-{schools}", schools=schools,
                              students=students, seed=3)
    assert Counter(o["type"] for o in files["orgs"]) == {"district": 1, "school": schools}
    assert sum(r["role"] == "student" for r in files["roles"]) == students
    assert {c["grades"] for c in files["courses"]} == set(ALL_GRADES)


def test_same_seed_gives_identical_files_and_another_seed_does_not(tmp_path):
    first = generate_demo_bundle(tmp_path / "a", schools=4, students=300, seed=11)
    second = generate_demo_bundle(tmp_path / "b", schools=4, students=300, seed=11)
    other = generate_demo_bundle(tmp_path / "c", schools=4, students=300, seed=12)
    assert _files_bytes(first.path) == _files_bytes(second.path)
    different = {name for name, data in _files_bytes(other.path).items()
                 if data != _files_bytes(first.path)[name]}
    assert {"users.csv", "demographics.csv", "orgs.csv"} <= different


def test_progress_reports_every_student_once(tmp_path):
    steps: list[int] = []
    generate_demo_bundle(tmp_path / "p", schools=2, students=2500, progress=steps.append)
    assert sum(steps) == 2500 and all(step > 0 for step in steps) and len(steps) > 1


def test_replaces_leftover_bundle_files_the_manifest_calls_absent(tmp_path):
    (tmp_path / "results.csv").write_text("stale", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    generate_demo_bundle(tmp_path, schools=1, students=5)
    assert not (tmp_path / "results.csv").exists()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"schools": 0}, "the number of schools must be at least 1, not 0"),
    ({"students": -5}, "the number of students must be at least 1, not -5"),
])
def test_rejects_impossible_sizes(tmp_path, kwargs, message):
    with pytest.raises(UsageError) as caught:
        generate_demo_bundle(tmp_path / "x", **kwargs)
    assert caught.value.description == message
    assert not (tmp_path / "x").exists()


# --- the command and the committed fixture ---------------------------------------------------

def test_command_writes_a_bundle_and_summarises_it(runner, tmp_path):
    out = tmp_path / "district"
    result = runner.invoke(cli, ["demo-data", "--out", str(out), "--schools", "2",
                                 "--students", "50", "--seed", "5"])
    assert result.exit_code == 0, result.output
    files = _check_bundle(out)
    for csv_file in binding.ROSTERING_FILES:
        assert re.search(rf"^  {re.escape(csv_file.filename)} +{len(files[csv_file.name]):,} rows$",
                         result.output, re.MULTILINE), csv_file.filename
    total = sum(len(rows) for rows in files.values())
    assert result.output.splitlines()[-1] == (
        f"wrote {total:,} rows (2 schools, 50 students, seed 5) to {out}")
    assert "Writing students" not in result.output  # no progress bar when not on a terminal


def test_command_refuses_a_non_empty_folder_unless_forced(runner, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    result = runner.invoke(cli, ["demo-data", "--out", str(out), "--students", "10"])
    assert result.exit_code == 1
    assert result.output == (f"Error: {out} is not empty; choose an empty folder, or pass --force "
                             "to replace the bundle files in it\n")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]

    result = runner.invoke(cli, ["demo-data", "--out", str(out), "--students", "10", "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "manifest.csv").exists() and (out / "keep.txt").exists()


def test_command_accepts_an_existing_empty_folder(runner, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = runner.invoke(cli, ["demo-data", "--out", str(out), "--students", "10"])
    assert result.exit_code == 0, result.output
    assert (out / "users.csv").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--schools", "0"], "Invalid value for '--schools': 0 is not in the range x>=1."),
    (["--students", "0"], "Invalid value for '--students': 0 is not in the range x>=1."),
    (["--students", "many"], "Invalid value for '--students': 'many' is not a valid integer range."),
])
def test_command_rejects_bad_arguments(runner, tmp_path, args, message):
    result = runner.invoke(cli, ["demo-data", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "x").exists()


def test_command_needs_an_output_folder(runner, tmp_path):
    result = runner.invoke(cli, ["demo-data"])
    assert result.exit_code == 2
    assert "Missing option '--out'" in result.output
    target = tmp_path / "file.csv"
    target.write_text("x", encoding="utf-8")
    result = runner.invoke(cli, ["demo-data", "--out", str(target)])
    assert result.exit_code == 2
    assert "is a file" in result.output


def test_committed_fixture_is_what_the_command_generates(runner, tmp_path, fixtures_dir):
    result = runner.invoke(cli, ["demo-data", "--out", str(tmp_path / "demo"), *FIXTURE_ARGS])
    assert result.exit_code == 0, result.output
    committed = fixtures_dir / "demo"
    assert _files_bytes(committed) == _files_bytes(tmp_path / "demo"), (
        "fixtures/demo is stale: regenerate it with "
        f"`gateway demo-data --out fixtures/demo --force {' '.join(FIXTURE_ARGS)}`")
    _check_bundle(committed)
