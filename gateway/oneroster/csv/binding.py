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
RESOURCES_FILES = ("resources", "classResources", "courseResources", "userResources")


@dataclass(frozen=True)
class Column:
    """One CSV column: its header, the store attribute it fills, and how it is checked.

    kinds: ``id`` (sourcedId), ``status``, ``datetime`` (dateLastModified), ``text``, ``enum``,
    ``bool``, ``date``, ``year``, ``list`` (comma-separated values), ``ref`` (one sourcedId of
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
        return tuple(column.name for column in self.columns)

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
IMPORTED_FILES: tuple[CsvFile, ...] = ROSTERING_FILES + RESOURCES_CSV_FILES
"""Every file the importer reads, in import order."""
# Every imported file by name: what the importer looks a staged file's definition up in (the
# rostering files and the resources files alike).
ROSTERING_BY_NAME = {f.name: f for f in IMPORTED_FILES}
ALL_FILE_NAMES = tuple(f.name for f in ROSTERING_FILES) + GRADEBOOK_FILES + RESOURCES_FILES

# Demographics records share the sourcedId of the user they describe (1.2 Rostering §4.6).
DEMOGRAPHICS_USER_REFERENCE = Column("sourcedId", "sourced_id", "ref", target="users")
