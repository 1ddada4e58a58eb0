"""The OneRoster 1.2.1 CSV binding: which files a bundle may hold and each rostering file's exact
columns, with how each column is checked and where it is stored.

One definition serves the importer, the demo generator and the exporter.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gateway.oneroster import vocabulary as v

MANIFEST = "manifest.csv"
MANIFEST_HEADER = ("propertyName", "value")
MANIFEST_VERSION = "1.0"
ONEROSTER_VERSION = "1.2"
FILE_MODES = ("absent", "bulk", "delta")

# Every data file the 1.2 CSV binding names, in the manifest's ``file.<name>`` rows.
GRADEBOOK_FILES = ("categories", "lineItems", "results", "scoreScales", "lineItemScoreScales",
                   "resultScoreScales", "lineItemLearningObjectiveIds", "resultLearningObjectiveIds")
# Of those, the ones the importer does not read yet.
GRADEBOOK_FILES_NOT_IMPORTED = ("lineItemScoreScales", "resultScoreScales",
                                "lineItemLearningObjectiveIds", "resultLearningObjectiveIds")
RESOURCES_FILES = ("resources", "classResources", "courseResources", "userResources")


@dataclass(frozen=True)
class Column:
    """One CSV column: its header, the store attribute it fills, and how it is checked.

    kinds: ``id`` (sourcedId), ``status``, ``datetime`` (dateLastModified), ``text``, ``enum``,
    ``bool``, ``date``, ``year``, ``float``, ``moment`` (a date or a date-time, kept as a date-time),
    ``scalevalues`` (``{lhs:rhs},...``, a score scale's values), ``list`` (comma-separated values), ``ref`` (one sourcedId of
    ``target``), ``reflist`` (comma-separated sourcedIds of ``target``), ``userids``
    (``{type:identifier},...``), ``password`` (checked against the portal's password rule,
    hashed on import, never kept in clear), ``discarded`` (read and checked as CSV, never kept:
    a value the gateway has no use for and must not hold, such as a vendor credential's password).
    """

    name: str
    attribute: str
    kind: str = "text"
    required: bool = False
    enum: frozenset[str] | None = None
    target: str | None = None
    # False for a column read when a file has it but not part of the binding's column list as
    # the gateway could confirm it (see GRADEBOOK_CSV_FILES): never required in a header.
    listed: bool = True


def _base() -> tuple[Column, ...]:
    return (Column("sourcedId", "sourced_id", "id", required=True),
            Column("status", "status", "status"),
            Column("dateLastModified", "date_last_modified", "datetime"))


@dataclass(frozen=True)
class CsvFile:
    """A rostering file of the binding: its name, its columns in order, and its store table."""

    name: str
    table: str
    columns: tuple[Column, ...]
    # The entity a REST client sees this file's rows as part of (roles and profiles are parts of users).
    owner: str | None = None
    metadata_allowed: bool = True

    @property
    def filename(self) -> str:
        """The file's name inside a bundle."""
        return f"{self.name}.csv"

    @property
    def header(self) -> tuple[str, ...]:
        """The exact header the binding requires, in order."""
        return tuple(column.name for column in self.columns if column.listed)

    def column(self, name: str) -> Column:
        """The column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


ORGS = CsvFile("orgs", "orgs", _base() + (
    Column("name", "name", required=True),
    Column("type", "type", "enum", required=True, enum=v.ORG_TYPES),
    Column("identifier", "identifier"),
    Column("parentSourcedId", "parent_sourced_id", "ref", target="orgs"),
))

ACADEMIC_SESSIONS = CsvFile("academicSessions", "academic_sessions", _base() + (
    Column("title", "title", required=True),
    Column("type", "type", "enum", required=True, enum=v.SESSION_TYPES),
    Column("startDate", "start_date", "date", required=True),
    Column("endDate", "end_date", "date", required=True),
    Column("parentSourcedId", "parent_sourced_id", "ref", target="academicSessions"),
    Column("schoolYear", "school_year", "year", required=True),
))

COURSES = CsvFile("courses", "courses", _base() + (
    Column("schoolYearSourcedId", "school_year_sourced_id", "ref", target="academicSessions"),
    Column("title", "title", required=True),
    Column("courseCode", "course_code"),
    Column("grades", "grades", "list"),
    Column("orgSourcedId", "org_sourced_id", "ref", required=True, target="orgs"),
    Column("subjects", "subjects", "list"),
    Column("subjectCodes", "subject_codes", "list"),
))

CLASSES = CsvFile("classes", "classes", _base() + (
    Column("title", "title", required=True),
    Column("grades", "grades", "list"),
    Column("courseSourcedId", "course_sourced_id", "ref", required=True, target="courses"),
    Column("classCode", "class_code"),
    Column("classType", "class_type", "enum", required=True, enum=v.CLASS_TYPES),
    Column("location", "location"),
    Column("schoolSourcedId", "school_sourced_id", "ref", required=True, target="orgs"),
    Column("termSourcedIds", "term_sourced_ids", "reflist", required=True, target="academicSessions"),
    Column("subjects", "subjects", "list"),
    Column("subjectCodes", "subject_codes", "list"),
    Column("periods", "periods", "list"),
))

USERS = CsvFile("users", "users", _base() + (
    Column("enabledUser", "enabled_user", "bool", required=True),
    Column("username", "username", required=True),
    Column("userIds", "user_ids", "userids"),
    Column("givenName", "given_name", required=True),
    Column("familyName", "family_name", required=True),
    Column("middleName", "middle_name"),
    Column("identifier", "identifier"),
    Column("email", "email"),
    Column("sms", "sms"),
    Column("phone", "phone"),
    Column("agentSourcedIds", "agent_sourced_ids", "reflist", target="users"),
    Column("grades", "grades", "list"),
    Column("password", "password_hash", "password"),
    Column("userMasterIdentifier", "user_master_identifier"),
    Column("preferredGivenName", "preferred_given_name"),
    Column("preferredMiddleName", "preferred_middle_name"),
    Column("preferredFamilyName", "preferred_family_name"),
    Column("primaryOrgSourcedId", "primary_org_sourced_id", "ref", target="orgs"),
    Column("pronouns", "pronouns"),
))

USER_PROFILES = CsvFile("userProfiles", "user_profiles", _base() + (
    Column("userSourcedId", "user_sourced_id", "ref", required=True, target="users"),
    Column("profileType", "profile_type", required=True),
    Column("vendorId", "vendor_id", required=True),
    Column("applicationId", "application_id"),
    Column("description", "description"),
    Column("credentialType", "credential_type", required=True),
    Column("username", "username", required=True),
    # A credential for the vendor's application: the gateway neither serves nor verifies it, so
    # it keeps none (a hash would serve nobody, the clear value would be a liability).
    Column("password", "password", "discarded"),
), owner="users")

ROLES = CsvFile("roles", "roles", _base() + (
    Column("userSourcedId", "user_sourced_id", "ref", required=True, target="users"),
    Column("roleType", "role_type", "enum", required=True, enum=v.ROLE_TYPES),
    Column("role", "role", "enum", required=True, enum=v.ROLES),
    Column("beginDate", "begin_date", "date"),
    Column("endDate", "end_date", "date"),
    Column("orgSourcedId", "org_sourced_id", "ref", required=True, target="orgs"),
    Column("userProfileSourcedId", "user_profile_sourced_id", "ref", target="userProfiles"),
), owner="users")

ENROLLMENTS = CsvFile("enrollments", "enrollments", _base() + (
    Column("classSourcedId", "class_sourced_id", "ref", required=True, target="classes"),
    Column("schoolSourcedId", "school_sourced_id", "ref", required=True, target="orgs"),
    Column("userSourcedId", "user_sourced_id", "ref", required=True, target="users"),
    Column("role", "role", "enum", required=True, enum=v.ENROLLMENT_ROLES),
    Column("primary", "primary", "bool"),
    Column("beginDate", "begin_date", "date"),
    Column("endDate", "end_date", "date"),
))

DEMOGRAPHICS = CsvFile("demographics", "demographics", _base() + (
    Column("birthDate", "birth_date", "date"),
    Column("sex", "sex", "enum", enum=v.SEXES),
    Column("americanIndianOrAlaskaNative", "american_indian_or_alaska_native", "bool"),
    Column("asian", "asian", "bool"),
    Column("blackOrAfricanAmerican", "black_or_african_american", "bool"),
    Column("nativeHawaiianOrOtherPacificIslander", "native_hawaiian_or_other_pacific_islander", "bool"),
    Column("white", "white", "bool"),
    Column("demographicRaceTwoOrMoreRaces", "demographic_race_two_or_more_races", "bool"),
    Column("hispanicOrLatinoEthnicity", "hispanic_or_latino_ethnicity", "bool"),
    Column("countryOfBirthCode", "country_of_birth_code"),
    Column("stateOfBirthAbbreviation", "state_of_birth_abbreviation"),
    Column("cityOfBirth", "city_of_birth"),
    Column("publicSchoolResidenceStatus", "public_school_residence_status"),
))

# Import order: every file comes after the files its references point to (userProfiles before
# roles, because a role may name the profile it uses).
ROSTERING_FILES: tuple[CsvFile, ...] = (ORGS, ACADEMIC_SESSIONS, COURSES, CLASSES, USERS,
                                        USER_PROFILES, ROLES, ENROLLMENTS, DEMOGRAPHICS)

# The Resources service's files (1.2 CSV binding): the resources, and the links that give a class,
# a course or a person the use of one. Imported after the rostering files they point into.
RESOURCES = CsvFile("resources", "resources", _base() + (
    Column("vendorResourceId", "vendor_resource_id", required=True),
    Column("title", "title"),
    Column("roles", "roles", "list"),
    Column("importance", "importance", "enum", enum=v.RESOURCE_IMPORTANCES),
    Column("vendorId", "vendor_id"),
    Column("applicationId", "application_id"),
))

CLASS_RESOURCES = CsvFile("classResources", "class_resources", _base() + (
    Column("title", "title"),
    Column("classSourcedId", "class_sourced_id", "ref", required=True, target="classes"),
    Column("resourceSourcedId", "resource_sourced_id", "ref", required=True, target="resources"),
))

COURSE_RESOURCES = CsvFile("courseResources", "course_resources", _base() + (
    Column("title", "title"),
    Column("courseSourcedId", "course_sourced_id", "ref", required=True, target="courses"),
    Column("resourceSourcedId", "resource_sourced_id", "ref", required=True, target="resources"),
))

USER_RESOURCES = CsvFile("userResources", "user_resources", _base() + (
    Column("userSourcedId", "user_sourced_id", "ref", required=True, target="users"),
    Column("orgSourcedId", "org_sourced_id", "ref", target="orgs"),
    Column("classSourcedId", "class_sourced_id", "ref", target="classes"),
    Column("resourceSourcedId", "resource_sourced_id", "ref", required=True, target="resources"),
))

RESOURCES_CSV_FILES: tuple[CsvFile, ...] = (RESOURCES, CLASS_RESOURCES, COURSE_RESOURCES,
                                            USER_RESOURCES)

# The Gradebook service's files (1.2 CSV binding). The official binding document could not be
# read here beyond its opening, so these column lists follow public implementations of the 1.2.1
# binding, and gradebook files are read by header name (any order; a missing optional column is
# read as empty; see gateway.oneroster.csv.feeds.by_header_name). Columns marked ``listed=False``
# are read when a file has them (gradingPeriodSourcedId as OneRoster 1.1 names it, the score
# scale of a line item or result as the REST model has it). Imported after the rostering files.
_FLAG = frozenset({"true", "false"})

CATEGORIES = CsvFile("categories", "gradebook_categories", _base() + (
    Column("title", "title", required=True),
    Column("weight", "weight", "float"),
))

SCORE_SCALES = CsvFile("scoreScales", "score_scales", _base() + (
    Column("title", "title", required=True),
    Column("type", "type", required=True),
    Column("orgSourcedId", "org_sourced_id", "ref", target="orgs"),
    Column("courseSourcedId", "course_sourced_id", "ref", target="courses"),
    # Optional in the CSV binding, required by the REST model (scoreScale.class): kept required.
    Column("classSourcedId", "class_sourced_id", "ref", required=True, target="classes"),
    Column("scoreScaleValue", "score_scale_value", "scalevalues", required=True),
))

LINE_ITEMS = CsvFile("lineItems", "line_items", _base() + (
    Column("title", "title", required=True),
    Column("description", "description"),
    Column("assignDate", "assign_date", "moment", required=True),
    Column("dueDate", "due_date", "moment", required=True),
    Column("classSourcedId", "class_sourced_id", "ref", required=True, target="classes"),
    Column("categorySourcedId", "category_sourced_id", "ref", required=True, target="categories"),
    Column("academicSessionSourcedId", "academic_session_sourced_id", "ref",
           target="academicSessions"),
    Column("resultValueMin", "result_value_min", "float"),
    Column("resultValueMax", "result_value_max", "float"),
    # Blank: the class's school.
    Column("schoolSourcedId", "school_sourced_id", "ref", target="orgs"),
    Column("gradingPeriodSourcedId", "grading_period_sourced_id", "ref",
           target="academicSessions", listed=False),
    Column("scoreScaleSourcedId", "score_scale_sourced_id", "ref", target="scoreScales",
           listed=False),
))

RESULTS = CsvFile("results", "results", _base() + (
    Column("lineItemSourcedId", "line_item_sourced_id", "ref", required=True, target="lineItems"),
    Column("studentSourcedId", "student_sourced_id", "ref", required=True, target="users"),
    Column("scoreStatus", "score_status", "enum", required=True, enum=v.SCORE_STATUSES),
    Column("score", "score", "float"),
    Column("scoreDate", "score_date", "moment", required=True),
    Column("comment", "comment"),
    Column("textScore", "text_score"),
    # Blank: the line item's class.
    Column("classSourcedId", "class_sourced_id", "ref", target="classes"),
    Column("inProgress", "in_progress", "enum", enum=_FLAG),
    Column("incomplete", "incomplete", "enum", enum=_FLAG),
    Column("late", "late", "enum", enum=_FLAG),
    Column("missing", "missing", "enum", enum=_FLAG),
    Column("scoreScaleSourcedId", "score_scale_sourced_id", "ref", target="scoreScales",
           listed=False),
))

GRADEBOOK_CSV_FILES: tuple[CsvFile, ...] = (CATEGORIES, SCORE_SCALES, LINE_ITEMS, RESULTS)
GRADEBOOK_BY_NAME = {f.name: f for f in GRADEBOOK_CSV_FILES}

# OneRoster 1.1's gradebook files (1.1 CSV Tables §3): their headers, read by name into the 1.2
# files above (1.1 has no score scales, no category weight, no school or result flags).
V1P1_GRADEBOOK_HEADERS = {
    "categories": ("sourcedId", "status", "dateLastModified", "title"),
    "lineItems": ("sourcedId", "status", "dateLastModified", "title", "description", "assignDate",
                  "dueDate", "classSourcedId", "categorySourcedId", "gradingPeriodSourcedId",
                  "resultValueMin", "resultValueMax"),
    "results": ("sourcedId", "status", "dateLastModified", "lineItemSourcedId",
                "studentSourcedId", "scoreStatus", "score", "scoreDate", "comment"),
}

IMPORTED_FILES: tuple[CsvFile, ...] = ROSTERING_FILES + RESOURCES_CSV_FILES + GRADEBOOK_CSV_FILES
"""Every file the importer reads, in import order."""
# Every imported file by name: what the importer looks a staged file's definition up in (the
# rostering, resources and gradebook files alike).
ROSTERING_BY_NAME = {f.name: f for f in IMPORTED_FILES}
ALL_FILE_NAMES = tuple(f.name for f in ROSTERING_FILES) + GRADEBOOK_FILES + RESOURCES_FILES

# Demographics records share the sourcedId of the user they describe (1.2 Rostering §4.6).
DEMOGRAPHICS_USER_REFERENCE = Column("sourcedId", "sourced_id", "ref", target="users")
