"""Microsoft School Data Sync (SDS) v2.1 CSV, converted to OneRoster 1.2 feeds.

SDS v2.1 is OneRoster-shaped but not OneRoster: no manifest, no status columns, headers by name
(case-sensitive, optional columns may be absent), its own vocabularies (org types, roles,
grades), a role's grade where 1.2 keeps a user's grades, and people's relationships and program
flags in files of their own. The README's "Other export formats" section has the full field
mapping; the files and columns follow Microsoft's "SDS V2.1 CSV File Format" and "Default List
of Values" pages and the SDS GitHub repository's v2.1 sample files.

Every file is a full export (SDS uploads always carry the whole set), so every feed is bulk.
Some 1.2 values come from another SDS file than the row's own: a user's grades from roles.csv,
a user's agents from relationships.csv, an enrollment's school from its class in classes.csv,
and program flags from userFlags.csv. Those files are read once before the import stages
anything, holding one small entry per row (bounded by the files' sizes).
"""
from __future__ import annotations

from typing import Iterable

from gateway.oneroster import vocabulary
from gateway.oneroster.csv import binding
from gateway.oneroster.csv.bundle import Bundle
from gateway.oneroster.csv.feeds import FeedContext, FileFeed
from gateway.oneroster.csv.problems import Problem
from gateway.formats.sourcefiles import (GRADE_NUMBERS, ExportFiles, Mapped, Row, SourceFile, Vocabulary,
                                         derived_id, iso_date, opener, read_side_file, same)

NAME = "SDS v2.1"
TITLE = "Microsoft School Data Sync v2.1 CSV (orgs.csv, users.csv, roles.csv)"

ORGS = SourceFile(NAME, "orgs.csv", ("sourcedId", "name", "type"), ("parentSourcedId",))
# SDS requires names only to create a user; a 1.2 user always has them.
USERS = SourceFile(NAME, "users.csv", ("sourcedId", "username", "givenName", "familyName"),
                   ("password", "activeDirectoryMatchId", "email", "phone", "sms"))
ROLES = SourceFile(NAME, "roles.csv", ("userSourcedId", "orgSourcedId", "role"),
                   ("sessionSourcedId", "grade", "isPrimary", "roleStartDate", "roleEndDate"))
CLASSES = SourceFile(NAME, "classes.csv", ("sourcedId", "orgSourcedId", "title"),
                     ("sessionSourcedIds", "courseSourcedId", "code"))
ENROLLMENTS = SourceFile(NAME, "enrollments.csv", ("classSourcedId", "userSourcedId", "role"))
SESSIONS = SourceFile(NAME, "academicSessions.csv",
                      ("sourcedId", "title", "type", "schoolYear", "startDate", "endDate"))
COURSES = SourceFile(NAME, "courses.csv", ("sourcedId", "orgSourcedId", "title"),
                     ("code", "schoolYearSourcedId", "subject", "grade"))
DEMOGRAPHICS = SourceFile(NAME, "demographics.csv", ("userSourcedId",),
                          ("sex", "birthDate", "birthCity", "birthState", "birthCountry", "ethnicityCodes",
                           "raceCodes"))
USER_FLAGS = SourceFile(NAME, "userFlags.csv", ("userSourcedId", "flag"))
RELATIONSHIPS = SourceFile(NAME, "relationships.csv",
                           ("userSourcedId", "relationshipUserSourcedId", "relationshipRole"))
FILES = (ORGS, USERS, ROLES, CLASSES, ENROLLMENTS, SESSIONS, COURSES, DEMOGRAPHICS, USER_FLAGS,
         RELATIONSHIPS)

_EXT = "no OneRoster 1.2 value; kept as an ext: value"
_CLOSEST = "no OneRoster 1.2 value of its own; read as the closest one"

# Organization types (Default List of Values). 1.2 has six; the others are kept as ext: values.
ORG_TYPES = Vocabulary(NAME, {
    **same(vocabulary.ORG_TYPES),
    **{value: Mapped(f"ext:{value}", _EXT) for value in (
        "ministryOfEducation", "localAuthority", "university", "region", "college", "division", "campus",
        "province", "adultEducation", "researchCenter", "municipality", "program", "departmentOfEducation",
        "academicTrust")},
})

# Organization user roles (Default List of Values). ``administrator`` depends on the org (below).
_TEACHING = ("professor", "lecturer", "instructor", "adjunct", "faculty", "substitute")
_AIDES = ("teacherAssistant", "assistant", "paraprofessional")
_STAFF_EXT = ("chair", "researcher", "affiliate", "occupationalTherapist", "physicalTherapist",
              "speechTherapist", "visionTherapist", "specialServices", "nurse", "officeStaff", "staff",
              "coach", "alumni", "other")
ROLES_VOCABULARY = Vocabulary(NAME, {
    "student": Mapped("student"), "teacher": Mapped("teacher"), "principal": Mapped("principal"),
    "proctor": Mapped("proctor"), "administrator": Mapped("administrator"),
    "advisor": Mapped("counselor", _CLOSEST), "itAdmin": Mapped("systemAdministrator", _CLOSEST),
    **{value: Mapped("teacher", _CLOSEST) for value in _TEACHING},
    **{value: Mapped("aide", _CLOSEST) for value in _AIDES},
    **{value: Mapped(f"ext:{value}", _EXT) for value in _STAFF_EXT},
})
# A role at an org of these types is a district administrator's, elsewhere a site administrator's.
DISTRICT_LEVEL_ORG_TYPES = frozenset({"district", "local", "state", "national"})

# Enrollment roles: 1.2 has administrator, proctor, student, teacher.
ENROLLMENT_ROLES = Vocabulary(NAME, {
    "student": Mapped("student"), "teacher": Mapped("teacher"), "proctor": Mapped("proctor"),
    "administrator": Mapped("administrator"),
    **{value: Mapped("teacher", _CLOSEST) for value in _TEACHING + _AIDES + ("aid", "coach")},
    **{value: Mapped("administrator", _CLOSEST) for value in ("principal", "chair", "itAdmin", "officeStaff")},
    **{value: Mapped(f"ext:{value}", _EXT) for value in (
        "staff", "advisor", "specialServices", "occupationalTherapist", "physicalTherapist", "speechTherapist",
        "visionTherapist", "affiliate", "alumni", "researcher", "nurse", "other")},
})

# Grade levels (Default List of Values) onto CEDS codes; SDS's postsecondary levels have none
# in 1.2's list and are kept as given.
_NO_CEDS = "no CEDS grade code in OneRoster 1.2; kept as given"
GRADES = Vocabulary(NAME, {
    "it": Mapped("IT"), "pr": Mapped("PR"), "pk": Mapped("PK"), "tk": Mapped("TK"), "kg": Mapped("KG"),
    **GRADE_NUMBERS, **{f"{n:02d}": Mapped(f"{n:02d}") for n in range(1, 14)},
    "ps": Mapped("PS"), "ug": Mapped("UG"), "other": Mapped("Other"),
    **{value: Mapped(value, _NO_CEDS) for value in (
        "14", "ps1", "ps2", "ps3", "ps4", "undergraduate", "graduate", "postgraduate", "alumni", "adultEducation")},
})

SESSION_TYPES = Vocabulary(NAME, {
    **same(vocabulary.SESSION_TYPES),
    "quarter": Mapped("term", "no OneRoster 1.2 type of its own; read as term"),
})

SEXES = Vocabulary(NAME, {"male": Mapped("male"), "female": Mapped("female"),
                          "notSelected": Mapped("unspecified")})
RACES = {"americanIndianOrAlaskaNative": "americanIndianOrAlaskaNative", "asian": "asian",
         "blackOrAfricanAmerican": "blackOrAfricanAmerican",
         "nativeHawaiianOrOtherPacificIslander": "nativeHawaiianOrOtherPacificIslander",
         "white": "white", "demographicRaceTwoOrMoreRaces": "demographicRaceTwoOrMoreRaces"}
ETHNICITIES = {"hispanicOrLatinoEthnicity": "hispanicOrLatinoEthnicity"}
BOOLEANS = {"true": "primary", "false": "secondary"}


def recognizes(names: set[str]) -> bool:
    """Whether the bundle looks like an SDS v2.1 export: orgs.csv, users.csv and roles.csv
    (in any case), and no OneRoster manifest."""
    lowered = {name.lower() for name in names}
    return {"orgs.csv", "users.csv", "roles.csv"} <= lowered and binding.MANIFEST not in lowered


class _Plan:
    """What the feeds of one SDS import share: the values read ahead from other files."""

    def __init__(self) -> None:
        self.grades: dict[str, list[str]] = {}
        self.class_schools: dict[str, str] = {}
        self.agents: dict[str, list[tuple[str, str, int]]] = {}
        self.flags: dict[str, list[str]] = {}
        self.first_role_seen: set[str] = set()
        self.demographics_seen: set[str] = set()


def plan(bundle: Bundle, context: FeedContext) -> tuple[str, list[FileFeed]]:
    """The feeds of an SDS v2.1 export, in import order (all bulk)."""
    found = ExportFiles(bundle.names(), FILES, (ORGS, USERS, ROLES),
                        f"{NAME} exports always hold orgs.csv, users.csv and roles.csv", context)
    state = _Plan()
    _read_ahead(bundle, found, state, context)
    add = found.add
    add(binding.ORGS, ORGS, _orgs())
    add(binding.ACADEMIC_SESSIONS, SESSIONS, _sessions())
    add(binding.COURSES, COURSES, _courses())
    add(binding.COURSES, CLASSES, _class_courses(), derived=True)
    add(binding.CLASSES, CLASSES, _classes())
    add(binding.USERS, USERS, _users(state))
    add(binding.ROLES, ROLES, _roles(state))
    add(binding.ENROLLMENTS, ENROLLMENTS, _enrollments(state))
    add(binding.DEMOGRAPHICS, DEMOGRAPHICS, _demographics(state))
    add(binding.DEMOGRAPHICS, USER_FLAGS, _flagged_only(state), derived=True)
    return f"{NAME} CSV", found.feeds


def _read_ahead(bundle: Bundle, found: ExportFiles, state: _Plan, context: FeedContext) -> None:
    """Read the values that 1.2 keeps in another file than SDS: users' grades (roles.csv), the
    school of each class (classes.csv), agents (relationships.csv) and flags (userFlags.csv)."""
    if found["roles.csv"] is not None:
        # The roles feed reports the file; the grade column is checked here only.
        for row in read_side_file(bundle, found["roles.csv"], ROLES, context, report=False):
            grade = GRADES.map(row, "grade")
            if grade:
                grades = state.grades.setdefault(row["userSourcedId"], [])
                if grade not in grades:
                    grades.append(grade)
    if found["classes.csv"] is not None and found["enrollments.csv"] is not None:
        for row in read_side_file(bundle, found["classes.csv"], CLASSES, context, report=False):
            state.class_schools.setdefault(row["sourcedId"], row["orgSourcedId"])
    if found["relationships.csv"] is not None:
        for row in read_side_file(bundle, found["relationships.csv"], RELATIONSHIPS, context, report=True):
            if not row["userSourcedId"] or not row["relationshipUserSourcedId"]:
                column = "userSourcedId" if not row["userSourcedId"] else "relationshipUserSourcedId"
                row.problem(column, "", "a non-empty value")
                continue
            state.agents.setdefault(row["userSourcedId"], []).append(
                (row["relationshipUserSourcedId"], row["relationshipRole"], row.line))
    if found["userFlags.csv"] is not None:
        for row in read_side_file(bundle, found["userFlags.csv"], USER_FLAGS, context, report=True):
            if not row["userSourcedId"]:
                row.problem("userSourcedId", "", "a non-empty value")
                continue
            if row["flag"]:
                state.flags.setdefault(row["userSourcedId"], []).append(row["flag"])


def _orgs():
    def convert(row: Row) -> dict[str, str] | None:
        kind = ORG_TYPES.map(row, "type")
        if kind is None:
            return None
        return {"sourcedId": row["sourcedId"], "name": row["name"], "type": kind,
                "parentSourcedId": row["parentSourcedId"]}
    return opener(ORGS, binding.ORGS, convert, {}, id_column="sourcedId")


def _sessions():
    def convert(row: Row) -> dict[str, str] | None:
        kind = SESSION_TYPES.map(row, "type")
        if kind is None:
            return None
        return {"sourcedId": row["sourcedId"], "title": row["title"], "type": kind,
                "startDate": iso_date(row, "startDate"), "endDate": iso_date(row, "endDate"),
                "schoolYear": row["schoolYear"]}
    return opener(SESSIONS, binding.ACADEMIC_SESSIONS, convert, {}, id_column="sourcedId")


def _courses():
    def convert(row: Row) -> dict[str, str] | None:
        grade = GRADES.map(row, "grade")
        if grade is None:
            return None
        return {"sourcedId": row["sourcedId"], "schoolYearSourcedId": row["schoolYearSourcedId"],
                "title": row["title"], "courseCode": row["code"], "grades": grade,
                "orgSourcedId": row["orgSourcedId"], "subjects": row["subject"]}
    return opener(COURSES, binding.COURSES, convert,
                  {"courseCode": "code", "grades": "grade", "subjects": "subject"}, id_column="sourcedId")


def class_course_id(class_sourced_id: str) -> str:
    """The sourcedId of the course made for an SDS class that names none (1.2 classes belong to
    courses)."""
    return derived_id(class_sourced_id, "course")


def _class_courses():
    """A course for each class without courseSourcedId: the class's title, code and org."""
    def convert(row: Row) -> dict[str, str] | None:
        if row["courseSourcedId"] or not row["sourcedId"]:
            return None
        return {"sourcedId": class_course_id(row["sourcedId"]), "title": row["title"],
                "courseCode": row["code"], "orgSourcedId": row["orgSourcedId"]}
    return opener(CLASSES, binding.COURSES, convert,
                  {"sourcedId": "sourcedId", "courseCode": "code"}, derived=True, keep_undocumented=False)


def _classes():
    def convert(row: Row) -> dict[str, str] | None:
        course = row["courseSourcedId"]
        if not course and row["sourcedId"]:
            course = class_course_id(row["sourcedId"])
            row.notice("courseSourcedId", "", course, "a class without a course: a course of the class's "
                       "title was made for it (OneRoster 1.2 classes belong to courses)")
        return {"sourcedId": row["sourcedId"], "title": row["title"], "courseSourcedId": course,
                "classCode": row["code"], "classType": "scheduled", "schoolSourcedId": row["orgSourcedId"],
                "termSourcedIds": row["sessionSourcedIds"]}
    return opener(CLASSES, binding.CLASSES, convert,
                  {"classCode": "code", "schoolSourcedId": "orgSourcedId", "termSourcedIds": "sessionSourcedIds"})


def _users(state: _Plan):
    def convert(row: Row) -> dict[str, str] | None:
        user = row["sourcedId"]
        agents = state.agents.pop(user, [])
        match_id = row["activeDirectoryMatchId"]
        return {"sourcedId": user, "enabledUser": "true", "username": row["username"],
                "userIds": f"{{activeDirectoryMatchId:{match_id}}}" if match_id else "",
                "givenName": row["givenName"], "familyName": row["familyName"], "email": row["email"],
                "sms": row["sms"], "phone": row["phone"],
                "agentSourcedIds": ",".join(dict.fromkeys(agent for agent, _, _ in agents)),
                "grades": ",".join(state.grades.get(user, ())), "password": row["password"],
                "metadata.relationshipRoles": ",".join(f"{agent}:{role}" for agent, role, _ in agents if role)}

    def finish(context: FeedContext) -> None:
        # Relationships of users that users.csv does not hold would otherwise vanish.
        for user, agents in state.agents.items():
            for _, _, line in agents:
                context.problem(Problem("relationships.csv", line, "userSourcedId", user,
                                        "the sourcedId of a user in users.csv"))
        state.agents.clear()
    return opener(USERS, binding.USERS, convert,
                  {"userIds": "activeDirectoryMatchId", "agentSourcedIds": "relationshipUserSourcedId "
                   "(relationships.csv)", "grades": "grade (roles.csv)"},
                  computed=("relationshipRoles",), finish=finish)


def _roles(state: _Plan):
    def convert(row: Row) -> dict[str, str] | None:
        role = ROLES_VOCABULARY.map(row, "role")
        user, org = row["userSourcedId"], row["orgSourcedId"]
        primary = row["isPrimary"].strip().lower()
        if primary and primary not in BOOLEANS:
            row.problem("isPrimary", row["isPrimary"], "TRUE or FALSE")
        if role is None or row.refused:
            return None
        if role == "administrator":
            role = ("districtAdministrator" if row.context.org_type(org) in DISTRICT_LEVEL_ORG_TYPES
                    else "siteAdministrator")
        if primary:
            role_type = BOOLEANS[primary]
        else:
            # Without isPrimary a user's first role is the primary one, as in a OneRoster 1.1 export.
            role_type = "secondary" if user in state.first_role_seen else "primary"
        state.first_role_seen.add(user)
        return {"sourcedId": derived_id(user, org, row["role"]), "userSourcedId": user, "roleType": role_type,
                "role": role, "beginDate": iso_date(row, "roleStartDate"),
                "endDate": iso_date(row, "roleEndDate"), "orgSourcedId": org,
                "metadata.sdsRole": row["role"] if row["role"] != role else ""}
    return opener(ROLES, binding.ROLES, convert,
                  {"sourcedId": "userSourcedId", "roleType": "isPrimary", "beginDate": "roleStartDate",
                   "endDate": "roleEndDate"},
                  metadata=("sessionSourcedId",), computed=("sdsRole",))


def _enrollments(state: _Plan):
    def convert(row: Row) -> dict[str, str] | None:
        role = ENROLLMENT_ROLES.map(row, "role")
        klass = row["classSourcedId"]
        school = state.class_schools.get(klass)
        if not klass:
            row.problem("classSourcedId", "", "a non-empty value")
        elif school is None:
            row.problem("classSourcedId", klass, "the sourcedId of a class in classes.csv (an enrollment's "
                        "school is its class's orgSourcedId)")
        if role is None or row.refused:
            return None
        return {"sourcedId": derived_id(klass, row["userSourcedId"], row["role"]), "classSourcedId": klass,
                "schoolSourcedId": school or "", "userSourcedId": row["userSourcedId"], "role": role}
    return opener(ENROLLMENTS, binding.ENROLLMENTS, convert,
                  {"sourcedId": "classSourcedId", "schoolSourcedId": "classSourcedId"})


def _codes(row: Row, column: str, known: dict[str, str], values: dict[str, str]) -> bool:
    """Set ``values[field] = "true"`` for each comma-separated code of ``column`` (``known``:
    code -> 1.2 field); False when a code is not one of the format's (reported)."""
    by_lower = {code.lower(): code for code in known}
    for code in (item.strip() for item in row[column].split(",")):
        if not code:
            continue
        match = code if code in known else by_lower.get(code.lower())
        if match is None:
            row.problem(column, code, f"{NAME} codes: " + ", ".join(known))
            return False
        if match != code:
            row.notice(column, code, match, "differs from the code only in case")
        values[known[match]] = "true"
    return True


def _demographic_row(user: str, flags: Iterable[str]) -> dict[str, str]:
    return {"sourcedId": user, "metadata.flags": ",".join(flags)}


def _demographics(state: _Plan):
    def convert(row: Row) -> dict[str, str] | None:
        user = row["userSourcedId"]
        values = _demographic_row(user, state.flags.get(user, ()))
        sex = SEXES.map(row, "sex")
        if sex is None or not _codes(row, "raceCodes", RACES, values) \
                or not _codes(row, "ethnicityCodes", ETHNICITIES, values):
            return None
        state.demographics_seen.add(user)
        values.update({"birthDate": iso_date(row, "birthDate"), "sex": sex,
                       "countryOfBirthCode": row["birthCountry"], "stateOfBirthAbbreviation": row["birthState"],
                       "cityOfBirth": row["birthCity"]})
        return values
    return opener(DEMOGRAPHICS, binding.DEMOGRAPHICS, convert,
                  {"sourcedId": "userSourcedId", "birthDate": "birthDate", "countryOfBirthCode": "birthCountry",
                   "stateOfBirthAbbreviation": "birthState", "cityOfBirth": "birthCity"},
                  computed=("flags",), id_column="userSourcedId")


def _flagged_only(state: _Plan):
    """The flags of users without a demographics.csv row, as demographics records of their own
    (program flags are kept with the demographics: apps see them only with that scope)."""
    def convert(row: Row) -> dict[str, str] | None:
        user = row["userSourcedId"]
        if not user or user in state.demographics_seen or user not in state.flags:
            return None
        state.demographics_seen.add(user)
        return _demographic_row(user, state.flags[user])
    return opener(USER_FLAGS, binding.DEMOGRAPHICS, convert, {"sourcedId": "userSourcedId"},
                  computed=("flags",), derived=True, keep_undocumented=False)
