"""Clever's CSV format (the files a district uploads to Clever by SFTP or CSV upload), converted
to OneRoster 1.2 feeds, for districts moving off Clever.

Clever has no district row (the district is named with ``--district`` / ``--district-name``),
no course or term files (sections carry their course and term, which become 1.2 courses and
academicSessions, one per distinct course and term, with sourcedIds made from what identifies
them so that a re-import finds them unchanged), and one file per kind of person (students,
teachers, staff, and the deprecated admins) where 1.2 has users with roles. A person taught or
employed at several schools is listed once per school (the same id, the same person fields):
one 1.2 user with a role per school. Student demographics (Gender, DOB, Race, Hispanic_Latino)
become 1.2 demographics; the student's other sensitive fields (program statuses, address,
contact) are kept as metadata of the demographics record, which apps see only with the
demographics scope. The README's "Other export formats" section has the full field mapping;
files, columns and values follow Clever's "SFTP Instructions" (CSV specification) and the
Clever API data schema (grade, gender and race values).

Files are full exports, so every feed is bulk. The people seen so far are remembered during the
import (one small entry per person) to merge a person's rows and keep one primary role.
"""
from __future__ import annotations

import hashlib

from gateway.oneroster.csv import binding
from gateway.oneroster.csv.bundle import Bundle
from gateway.oneroster.csv.feeds import FeedContext, FileFeed
from gateway.oneroster.csv.problems import Notice, Problem
from gateway.formats.sourcefiles import (GRADE_NUMBERS, ExportFiles, Mapped, Row, SourceFile, Vocabulary,
                                         derived_id, is_date, iso_date, opener)

NAME = "Clever"
TITLE = "Clever CSV (schools.csv, students.csv, teachers.csv, sections.csv, enrollments.csv)"

_PERSON = ("First_name", "Middle_name", "Last_name")
SCHOOLS = SourceFile(NAME, "schools.csv", ("School_id", "School_name"),
                     ("School_number", "State_id", "NCES_ID", "Low_grade", "High_grade", "Principal",
                      "Principal_email", "School_address", "School_city", "School_state", "School_zip",
                      "School_phone"), extension="ext.")
# Demographic and other sensitive student fields: kept with the demographics record.
STUDENT_PRIVATE = ("Home_language", "Ell_status", "Frl_status", "IEP_status", "Section_504_status",
                   "Gifted_status", "Student_street", "Student_city", "Student_state", "Student_zip",
                   "Contact_relationship", "Contact_type", "Contact_name", "Contact_phone", "Contact_phone_type",
                   "Contact_email", "Contact_sis_id", "Unweighted_gpa", "Weighted_gpa")
STUDENTS = SourceFile(NAME, "students.csv", ("School_id", "Student_id", "First_name", "Last_name"),
                      ("Student_number", "State_id", "Middle_name", "Grade", "Gender", "DOB", "Race",
                       "Hispanic_Latino", "Student_email", "Username", "Password", "Graduation_year")
                      + STUDENT_PRIVATE, extension="ext.")
TEACHERS = SourceFile(NAME, "teachers.csv", ("School_id", "Teacher_id", "First_name", "Last_name"),
                      ("Teacher_number", "State_teacher_id", "Teacher_email", "Middle_name", "Title", "Username",
                       "Password"), extension="ext.")
STAFF = SourceFile(NAME, "staff.csv", ("School_id", "Staff_id", "First_name", "Last_name"),
                   ("Staff_email", "Title", "Department", "Username", "Password", "Role"), extension="ext.")
ADMINS = SourceFile(NAME, "admins.csv", ("School_id", "Staff_id", "First_name", "Last_name"),
                    ("Admin_email", "Admin_title"))
_MORE_TEACHERS = tuple(f"Teacher_{n}_id" for n in range(2, 11))
SECTIONS = SourceFile(NAME, "sections.csv", ("School_id", "Section_id", "Teacher_id"),
                      _MORE_TEACHERS + ("Name", "Section_number", "Grade", "Course_name", "Course_number",
                                        "Course_description", "Period", "Subject", "Term_name", "Term_start",
                                        "Term_end"), extension="ext.")
ENROLLMENTS = SourceFile(NAME, "enrollments.csv", ("School_id", "Section_id", "Student_id"))
FILES = (SCHOOLS, STUDENTS, TEACHERS, STAFF, ADMINS, SECTIONS, ENROLLMENTS)

_CEDS = "a CEDS grade code rather than Clever's value"
GRADES = Vocabulary(NAME, {
    "InfantToddler": Mapped("IT"), "Preschool": Mapped("PR"), "PreKindergarten": Mapped("PK"),
    "TransitionalKindergarten": Mapped("TK"), "Kindergarten": Mapped("KG"), **GRADE_NUMBERS,
    "PostGraduate": Mapped("PS"), "Ungraded": Mapped("UG"), "Other": Mapped("Other"),
    **{code: Mapped(code, _CEDS) for code in ("IT", "PR", "PK", "TK", "KG", "PS", "UG")},
    **{f"{n:02d}": Mapped(f"{n:02d}", _CEDS) for n in range(1, 10)},
    "K": Mapped("KG", "Clever's Kindergarten written K"),
}, documented=("InfantToddler", "Preschool", "PreKindergarten", "TransitionalKindergarten", "Kindergarten",
               "1...13", "PostGraduate", "Ungraded", "Other"))
GENDERS = Vocabulary(NAME, {"M": Mapped("male"), "F": Mapped("female"), "X": Mapped("other"),
                            "Male": Mapped("male", "Clever's M written out"),
                            "Female": Mapped("female", "Clever's F written out")},
                     documented=("M", "F", "X"))
RACES = Vocabulary(NAME, {
    "W": Mapped("white"), "B": Mapped("blackOrAfricanAmerican"), "A": Mapped("asian"),
    "I": Mapped("americanIndianOrAlaskaNative"), "P": Mapped("nativeHawaiianOrOtherPacificIslander"),
    "M": Mapped("demographicRaceTwoOrMoreRaces"),
    "Caucasian": Mapped("white"), "White": Mapped("white"), "Asian": Mapped("asian"),
    "Black or African American": Mapped("blackOrAfricanAmerican"),
    "American Indian": Mapped("americanIndianOrAlaskaNative"),
    "American Indian or Alaska Native": Mapped("americanIndianOrAlaskaNative"),
    "Hawaiian or Other Pacific Islander": Mapped("nativeHawaiianOrOtherPacificIslander"),
    "Native Hawaiian or Other Pacific Islander": Mapped("nativeHawaiianOrOtherPacificIslander"),
    "Two or More Races": Mapped("demographicRaceTwoOrMoreRaces"),
    "Multiracial": Mapped("demographicRaceTwoOrMoreRaces"),
    "Unknown": Mapped(""),
}, documented=("W", "B", "A", "I", "P", "M", "Caucasian", "Asian", "Black or African American",
               "American Indian", "Hawaiian or Other Pacific Islander", "Two or More Races", "Unknown"))
YES_NO = Vocabulary(NAME, {"Y": Mapped("true"), "N": Mapped("false")})
# Sections of this subject are homerooms in 1.2 (classType homeroom), the others scheduled.
HOMEROOM_SUBJECTS = frozenset({"homeroom/advisory"})


def recognizes(names: set[str]) -> bool:
    """Whether the bundle looks like a Clever export: schools.csv with students.csv or
    teachers.csv (in any case), and neither a OneRoster manifest nor SDS's orgs.csv."""
    lowered = {name.lower() for name in names}
    return ("schools.csv" in lowered and bool({"students.csv", "teachers.csv"} & lowered)
            and binding.MANIFEST not in lowered and "orgs.csv" not in lowered)


class _People:
    """What the feeds of one import share: where each person was first listed (that row's role
    is their primary one, and a student's demographics come from it) with a fingerprint of
    their fields, and the courses and terms already made."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, int, bytes]] = {}
        self.courses: dict[str, tuple[int, str]] = {}
        self.terms: set[str] = set()

    def is_first(self, person: str, row: Row) -> bool | None:
        """Whether ``row`` is where ``person`` was first listed (None: the person was refused)."""
        first = self.first.get(person)
        if first is None:
            return None
        return first[0] == row.file and first[1] == row.line


def plan(bundle: Bundle, context: FeedContext) -> tuple[str, list[FileFeed]]:
    """The feeds of a Clever export, in import order (all bulk)."""
    found = ExportFiles(bundle.names(), FILES, (SCHOOLS, SECTIONS, ENROLLMENTS),
                        f"a {NAME} export holds schools.csv, students.csv, teachers.csv, sections.csv and "
                        "enrollments.csv", context)
    if found["students.csv"] is None and found["teachers.csv"] is None:
        context.problem(Problem("students.csv", None, None, None,
                                "students.csv or teachers.csv in the bundle (the people of the export)"))
    if found["admins.csv"] is not None:
        context.notice(Notice(found["admins.csv"], None, None, None, None,
                              "admins.csv is deprecated by Clever (staff.csv replaces it); read all the same"))
    people = _People()
    add = found.add

    add(binding.ORGS, SCHOOLS, _schools())
    add(binding.ACADEMIC_SESSIONS, SECTIONS, _terms(people), derived=True)
    add(binding.COURSES, SECTIONS, _courses(people), derived=True)
    add(binding.CLASSES, SECTIONS, _classes())
    for source, kind in _PEOPLE_FILES:
        add(binding.USERS, source, _users(source, kind, people))
    for source, kind in _PEOPLE_FILES:
        add(binding.ROLES, source, _roles(source, kind, people), derived=True)
    add(binding.ENROLLMENTS, SECTIONS, _teacher_enrollments(), derived=True)
    add(binding.ENROLLMENTS, ENROLLMENTS, _student_enrollments())
    add(binding.DEMOGRAPHICS, STUDENTS, _demographics(people), derived=True)
    return f"{NAME} CSV", found.feeds


def _schools():
    def convert(row: Row) -> dict[str, str] | None:
        return {"sourcedId": row["School_id"], "name": row["School_name"], "type": "school",
                "identifier": row["School_number"]}
    return opener(SCHOOLS, binding.ORGS, convert,
                  {"sourcedId": "School_id", "name": "School_name", "identifier": "School_number"},
                  metadata=SCHOOLS.optional[1:])


def term_id(name: str, start: str, end: str) -> str:
    """The sourcedId of the 1.2 term of sections with this Term_name, Term_start and Term_end."""
    return derived_id("term", name, start, end)


def course_id(school: str, key: str) -> str:
    """The sourcedId of the 1.2 course of a school's sections with this course (number, or name)."""
    return derived_id("course", school, key)


def _term(row: Row, notes: bool) -> tuple[str, str, str] | None:
    """A section's Term_name, Term_start, Term_end (dates as YYYY-MM-DD), or None when it
    names no term at all. ``notes``: whether this reading notes converted dates (the terms
    feed does; the classes feed reads the same cells again)."""
    name = row["Term_name"]
    start = iso_date(row, "Term_start", month_first=True, quiet=not notes)
    end = iso_date(row, "Term_end", month_first=True, quiet=not notes)
    if not (name or start or end):
        return None
    return name, start, end


def _terms(people: _People):
    """One 1.2 term per distinct (Term_name, Term_start, Term_end) of the sections."""
    def convert(row: Row) -> dict[str, str] | None:
        term = _term(row, notes=True)
        if term is None:
            return None
        name, start, end = term
        sourced_id = term_id(name, start, end)
        if sourced_id in people.terms:
            return None
        people.terms.add(sourced_id)
        for column, value in (("Term_start", start), ("Term_end", end)):
            if not is_date(value):
                # Reported once per term, for the first section of it; the classes of a refused
                # term are not reported again.
                row.problem(column, row[column], "a date, MM/DD/YYYY or YYYY-MM-DD (a OneRoster 1.2 term "
                            "has start and end dates)")
                row.context.reject(sourced_id)
                return None
        # OneRoster's schoolYear is the year the school year ends.
        return {"sourcedId": sourced_id, "title": name or f"{start} to {end}", "type": "term",
                "startDate": start, "endDate": end, "schoolYear": end[:4]}
    return opener(SECTIONS, binding.ACADEMIC_SESSIONS, convert,
                  {"sourcedId": "Term_name", "title": "Term_name", "startDate": "Term_start",
                   "endDate": "Term_end", "schoolYear": "Term_end"}, derived=True, keep_undocumented=False)


def _course_key(row: Row) -> tuple[str, str]:
    """What identifies a section's course within its school, and the course's title."""
    number, name = row["Course_number"], row["Course_name"]
    if number or name:
        return number or name, name or number
    return f"section {row['Section_id']}", row["Name"] or row["Section_id"]


def _courses(people: _People):
    """One 1.2 course per school and Course_number (or Course_name) of the sections."""
    def convert(row: Row) -> dict[str, str] | None:
        key, title = _course_key(row)
        sourced_id = course_id(row["School_id"], key)
        first = people.courses.get(sourced_id)
        if first is not None:
            if first[1] != title:
                row.notice("Course_name", row["Course_name"], first[1],
                           f"the course {key!r} has another name on line {first[0]}; the first was kept")
            return None
        people.courses[sourced_id] = (row.line, title)
        if not (row["Course_number"] or row["Course_name"]):
            row.notice("Course_name", "", title, "a section without Course_name or Course_number: a course of "
                       "its own was made for it (OneRoster 1.2 classes belong to courses)")
        return {"sourcedId": sourced_id, "title": title, "courseCode": row["Course_number"],
                "orgSourcedId": row["School_id"], "subjects": row["Subject"],
                "metadata.Course_description": row["Course_description"]}
    return opener(SECTIONS, binding.COURSES, convert,
                  {"sourcedId": "Course_number", "title": "Course_name", "courseCode": "Course_number",
                   "orgSourcedId": "School_id", "subjects": "Subject"},
                  computed=("Course_description",), derived=True, keep_undocumented=False)


def _classes():
    def convert(row: Row) -> dict[str, str] | None:
        grade = GRADES.map(row, "Grade")
        term = _term(row, notes=False)
        if term is None:
            row.problem("Term_name", "", "a term: Term_name, Term_start and Term_end (OneRoster 1.2 classes "
                        "belong to terms)")
        if grade is None or row.refused:
            return None
        key, title = _course_key(row)
        name = row["Name"]
        if not name:
            name = " ".join(part for part in (title, row["Period"] and f"period {row['Period']}") if part)
            row.notice("Name", "", name, "a section without a Name: titled after its course (and period)")
        return {"sourcedId": row["Section_id"], "title": name, "grades": grade,
                "courseSourcedId": course_id(row["School_id"], key), "classCode": row["Section_number"],
                "classType": "homeroom" if row["Subject"].lower() in HOMEROOM_SUBJECTS else "scheduled",
                "schoolSourcedId": row["School_id"], "termSourcedIds": term_id(*term),
                "subjects": row["Subject"], "periods": row["Period"]}
    return opener(SECTIONS, binding.CLASSES, convert,
                  {"sourcedId": "Section_id", "title": "Name", "grades": "Grade", "courseSourcedId": "Course_number",
                   "classCode": "Section_number", "schoolSourcedId": "School_id", "termSourcedIds": "Term_name",
                   "subjects": "Subject", "periods": "Period"}, id_column="Section_id")


# The people files: (file, the Clever kind), in the order their roles are ranked.
_PEOPLE_FILES = ((STUDENTS, "student"), (TEACHERS, "teacher"), (STAFF, "staff"), (ADMINS, "admin"))
_ID = {"student": "Student_id", "teacher": "Teacher_id", "staff": "Staff_id", "admin": "Staff_id"}
_EMAIL = {"student": "Student_email", "teacher": "Teacher_email", "staff": "Staff_email", "admin": "Admin_email"}
# Clever's staff (API v3 "staff", the former school admins) and admins are school administrators.
_ROLE = {"student": "student", "teacher": "teacher", "staff": "siteAdministrator", "admin": "siteAdministrator"}
_USER_IDS = {"student": "State_id", "teacher": "State_teacher_id"}
_IDENTIFIER = {"student": "Student_number", "teacher": "Teacher_number"}
_USER_METADATA = {"student": ("Graduation_year",), "teacher": ("Title",),
                  "staff": ("Title", "Department", "Role"), "admin": ("Admin_title",)}


def _fingerprint(row: Row, kind: str) -> bytes:
    fields = [row[name] for name in _PERSON] + [row[_EMAIL[kind]], row["Username"], row["Grade"]]
    return hashlib.blake2b("\x1f".join(fields).encode(), digest_size=8).digest()


def _users(source: SourceFile, kind: str, people: _People):
    id_column, email_column = _ID[kind], _EMAIL[kind]

    def convert(row: Row) -> dict[str, str] | None:
        user = row[id_column]
        grade = GRADES.map(row, "Grade") if kind == "student" else ""
        if grade is None:
            return None
        fingerprint = _fingerprint(row, kind)
        first = people.first.get(user)
        if first is not None:
            # A person listed again: for another school (another role), or in another file.
            if first[2] != fingerprint:
                where = f"line {first[1]}" + ("" if first[0] == source.filename else f" of {first[0]}")
                row.problem(id_column, user, f"the same person as {where} (a person listed for several schools "
                            "or in several files repeats the same names, email, username and grade; "
                            "another person needs another id)")
            return None
        people.first[user] = (source.filename, row.line, fingerprint)
        username = row["Username"]
        if not username:
            username = row[email_column] or user
            row.notice("Username", "", username, "no Username: the email (or else the id) is the username")
        state_id = row[_USER_IDS[kind]] if kind in _USER_IDS else ""
        return {"sourcedId": user, "enabledUser": "true", "username": username,
                "userIds": f"{{StateID:{state_id}}}" if state_id else "",
                "givenName": row["First_name"], "familyName": row["Last_name"], "middleName": row["Middle_name"],
                "identifier": row[_IDENTIFIER[kind]] if kind in _IDENTIFIER else "", "email": row[email_column],
                "grades": grade, "password": row["Password"]}
    columns = {"sourcedId": id_column, "username": "Username", "givenName": "First_name",
               "familyName": "Last_name", "middleName": "Middle_name", "email": email_column, "grades": "Grade",
               "password": "Password"}
    if kind in _USER_IDS:
        columns.update(userIds=_USER_IDS[kind], identifier=_IDENTIFIER[kind])
    # Students' other fields go with their demographics, not here.
    return opener(source, binding.USERS, convert, columns, metadata=_USER_METADATA[kind], id_column=id_column)


def _roles(source: SourceFile, kind: str, people: _People):
    id_column = _ID[kind]
    role = _ROLE[kind]

    def convert(row: Row) -> dict[str, str] | None:
        user, school = row[id_column], row["School_id"]
        primary = people.is_first(user, row)
        if primary is None:
            return None  # the users feed refused the person, and said why
        return {"sourcedId": derived_id(user, school, role), "userSourcedId": user,
                "roleType": "primary" if primary else "secondary", "role": role, "orgSourcedId": school}
    return opener(source, binding.ROLES, convert,
                  {"sourcedId": id_column, "userSourcedId": id_column, "orgSourcedId": "School_id"},
                  derived=True, keep_undocumented=False)


def _teacher_enrollments():
    """Each section's teachers: Teacher_id the primary one, Teacher_2_id... the others."""
    def convert(row: Row) -> list[dict[str, str]]:
        section, school = row["Section_id"], row["School_id"]
        teachers = [(row["Teacher_id"], "true")] + [(row[c], "false") for c in _MORE_TEACHERS if row[c]]
        return [{"sourcedId": derived_id(section, teacher, "teacher"), "classSourcedId": section,
                 "schoolSourcedId": school, "userSourcedId": teacher, "role": "teacher", "primary": primary}
                for teacher, primary in teachers]
    return opener(SECTIONS, binding.ENROLLMENTS, convert,
                  {"sourcedId": "Teacher_id", "classSourcedId": "Section_id", "schoolSourcedId": "School_id",
                   "userSourcedId": "Teacher_id"}, derived=True, keep_undocumented=False)


def _student_enrollments():
    def convert(row: Row) -> dict[str, str] | None:
        section, student = row["Section_id"], row["Student_id"]
        return {"sourcedId": derived_id(section, student, "student"), "classSourcedId": section,
                "schoolSourcedId": row["School_id"], "userSourcedId": student, "role": "student"}
    return opener(ENROLLMENTS, binding.ENROLLMENTS, convert,
                  {"sourcedId": "Student_id", "classSourcedId": "Section_id", "schoolSourcedId": "School_id",
                   "userSourcedId": "Student_id"})


def _demographics(people: _People):
    """A student's Gender, DOB, Race and Hispanic_Latino as 1.2 demographics, with the other
    sensitive fields as its metadata."""
    def convert(row: Row) -> dict[str, str] | None:
        user = row["Student_id"]
        if not people.is_first(user, row):
            return None  # a student's other rows (other schools) repeat the first's fields
        sex, race, hispanic = GENDERS.map(row, "Gender"), RACES.map(row, "Race"), YES_NO.map(row, "Hispanic_Latino")
        if sex is None or race is None or hispanic is None:
            return None
        values = {"sourcedId": user, "birthDate": iso_date(row, "DOB", month_first=True), "sex": sex,
                  "hispanicOrLatinoEthnicity": hispanic}
        if race:
            values[race] = "true"
        if not any(values[key] for key in ("birthDate", "sex", "hispanicOrLatinoEthnicity")) and not race \
                and not any(row[name] for name in STUDENT_PRIVATE):
            return None
        return values
    return opener(STUDENTS, binding.DEMOGRAPHICS, convert,
                  {"sourcedId": "Student_id", "birthDate": "DOB", "sex": "Gender",
                   "hispanicOrLatinoEthnicity": "Hispanic_Latino", "americanIndianOrAlaskaNative": "Race",
                   "asian": "Race", "blackOrAfricanAmerican": "Race", "nativeHawaiianOrOtherPacificIslander": "Race",
                   "white": "Race", "demographicRaceTwoOrMoreRaces": "Race"},
                  metadata=STUDENT_PRIVATE, derived=True, keep_undocumented=False, id_column="Student_id")
