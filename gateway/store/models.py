"""The gateway's tables: one per OneRoster 1.2 rostering entity, plus districts and import runs.

Every roster table carries ``district_id``; sourcedIds are unique per district, never globally, so
two districts' data cannot collide or mix. References between roster records are stored as the
referenced sourcedId within the same district, exactly as the SIS sent them: an import never has
to resolve surrogate keys, and a reference to a record that was later marked ``tobedeleted`` still
resolves. Multi-valued fields (grades, subjects, userIds...) are JSON arrays; the multi-valued
references that the REST service navigates (a class's terms, a user's agents) also get link tables
so that nested paths are indexed joins.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer,
                        LargeBinary, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base shared by all gateway tables."""


def utcnow() -> dt.datetime:
    """Current UTC time, naive, to the millisecond: the store keeps UTC everywhere, and the REST
    service prints milliseconds, so a client that filters on a dateLastModified it was served
    never receives the same record again."""
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class District(Base):
    """A school district: the org of type ``district`` that owns a set of roster records."""

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sourced_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Bumped by every import that changed something: caches keyed on it (counts, page anchors)
    # are invalidated without any bookkeeping of their own.
    data_version: Mapped[int] = mapped_column(Integer, default=0)


class ImportRun(Base):
    """One run of ``gateway import``: what it read, what it did, how it ended."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("districts.id"), nullable=True)
    source: Mapped[str] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # running (recorded when the run starts) | applied | rejected | dry-run | dry-run-rejected
    # | failed
    outcome: Mapped[str] = mapped_column(String(20))
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The process that runs it, to tell a run still going from one whose process died.
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)


# Roster rows carry their district's id without a FOREIGN KEY constraint: only the importer
# writes them, always with the id of a district it has just resolved, and on PostgreSQL the
# constraint's per-row trigger was a fifth of a bulk import's merge time.
def _district_column() -> Mapped[int]:
    return mapped_column(Integer)


class RosterRecord:
    """Columns common to every OneRoster base record (1.2 Rostering §4.1 "Base")."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = _district_column()
    sourced_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="active")
    date_last_modified: Mapped[dt.datetime] = mapped_column(DateTime)
    # OneRoster metadata extension (CSV ``metadata.*`` columns), kept whole.
    extension_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)
    # Fingerprint of the record's content as imported, so an import can tell changed from unchanged
    # rows in SQL without comparing every column.
    row_hash: Mapped[int] = mapped_column(BigInteger)


class Rendered:
    """The record's OneRoster 1.2 JSON as the REST service serves it to an app that may see
    everything, rendered by the import that last changed it (:mod:`gateway.store.renderings`):
    a page is then a read of ready bytes instead of a Python object per field. NULL until
    rendered (a changed row, a migrated store), when the reader renders it as before."""

    rendered: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # Which top-level fields the rendering holds (bit i: the entity's i-th served field), so
    # the ledger can name the fields that left without parsing the bytes.
    rendered_fields: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


def _roster_indexes(table: str, *extra: tuple[str, ...]) -> tuple:
    """The indexes every roster table needs, plus the extra access paths of that entity."""
    indexes = [
        UniqueConstraint("district_id", "sourced_id", name=f"uq_{table}_district_sourced_id"),
        Index(f"ix_{table}_district_modified", "district_id", "date_last_modified"),
        Index(f"ix_{table}_district_status", "district_id", "status"),
    ]
    for columns in extra:
        indexes.append(Index(f"ix_{table}_" + "_".join(columns), *columns))
    return tuple(indexes)


# The REST service's default order, a district's records by primary key: page one is an index range
# that stops after one page, deep pages keyset seeks (gateway.store.rostering). Tables the service
# lists get it as an extra access path.
_BY_ID = ("district_id", "id")


class Org(RosterRecord, Rendered, Base):
    """An organisation: district, school, department, state... (1.2 Rostering §4.9)."""

    __tablename__ = "orgs"
    __table_args__ = _roster_indexes("orgs", ("district_id", "type"), ("district_id", "parent_sourced_id"),
                                     _BY_ID)

    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    parent_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class AcademicSession(RosterRecord, Rendered, Base):
    """A school year, semester, term or grading period (1.2 Rostering §4.2)."""

    __tablename__ = "academic_sessions"
    __table_args__ = _roster_indexes("academic_sessions", ("district_id", "type"),
                                     ("district_id", "parent_sourced_id"), _BY_ID)

    title: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(64))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date] = mapped_column(Date)
    parent_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    school_year: Mapped[str] = mapped_column(String(4))


class Course(RosterRecord, Rendered, Base):
    """A course: the template that classes are sections of (1.2 Rostering §4.5)."""

    __tablename__ = "courses"
    __table_args__ = _roster_indexes("courses", ("district_id", "org_sourced_id"),
                                     ("district_id", "school_year_sourced_id"), _BY_ID)

    school_year_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    title: Mapped[str] = mapped_column(String(255))
    course_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    grades: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    org_sourced_id: Mapped[str] = mapped_column(String(255))
    subjects: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    subject_codes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class Class(RosterRecord, Rendered, Base):
    """A class (section): a course taught at a school in one or more terms (1.2 Rostering §4.4)."""

    __tablename__ = "classes"
    __table_args__ = _roster_indexes("classes", ("district_id", "school_sourced_id"),
                                     ("district_id", "course_sourced_id"), _BY_ID)

    title: Mapped[str] = mapped_column(String(255))
    grades: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    course_sourced_id: Mapped[str] = mapped_column(String(255))
    class_code: Mapped[str | None] = mapped_column(String(255), nullable=True)
    class_type: Mapped[str] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(255), nullable=True)
    school_sourced_id: Mapped[str] = mapped_column(String(255))
    term_sourced_ids: Mapped[list[str]] = mapped_column(JSON)
    subjects: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    subject_codes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    periods: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class ClassTerm(Base):
    """Link from a class to one of its terms, so ``/terms/{id}/classes`` is an indexed join."""

    __tablename__ = "class_terms"
    __table_args__ = (
        UniqueConstraint("district_id", "class_sourced_id", "term_sourced_id", name="uq_class_terms"),
        Index("ix_class_terms_term", "district_id", "term_sourced_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = _district_column()
    class_sourced_id: Mapped[str] = mapped_column(String(255))
    term_sourced_id: Mapped[str] = mapped_column(String(255))


class User(RosterRecord, Rendered, Base):
    """A person: student, teacher, parent, administrator... (1.2 Rostering §4.13)."""

    __tablename__ = "users"
    __table_args__ = _roster_indexes("users", ("district_id", "username"), ("district_id", "email"),
                                     ("district_id", "primary_org_sourced_id"),
                                     ("district_id", "identifier"), _BY_ID)

    enabled_user: Mapped[bool] = mapped_column(Boolean)
    username: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # [{"type": ..., "identifier": ...}]
    user_ids: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    given_name: Mapped[str] = mapped_column(String(255))
    family_name: Mapped[str] = mapped_column(String(255))
    middle_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sms: Mapped[str | None] = mapped_column(String(64), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_sourced_ids: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    grades: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # A salted hash, never the clear password; not part of any representation served to apps.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_master_identifier: Mapped[str | None] = mapped_column(String(255), nullable=True)
    preferred_given_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    preferred_middle_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    preferred_family_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    primary_org_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pronouns: Mapped[str | None] = mapped_column(String(255), nullable=True)


class UserAgent(Base):
    """Link from a user to one of their agents (parent, guardian...), for indexed navigation."""

    __tablename__ = "user_agents"
    __table_args__ = (
        UniqueConstraint("district_id", "user_sourced_id", "agent_sourced_id", name="uq_user_agents"),
        Index("ix_user_agents_agent", "district_id", "agent_sourced_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = _district_column()
    user_sourced_id: Mapped[str] = mapped_column(String(255))
    agent_sourced_id: Mapped[str] = mapped_column(String(255))


class Role(RosterRecord, Base):
    """A user's role in an org (roles.csv; the ``roles[]`` of the 1.2 user, §4.13.1)."""

    __tablename__ = "roles"
    __table_args__ = _roster_indexes("roles", ("district_id", "user_sourced_id"),
                                     ("district_id", "role", "user_sourced_id"),
                                     ("district_id", "org_sourced_id", "role"))

    user_sourced_id: Mapped[str] = mapped_column(String(255))
    role_type: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(64))
    begin_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    end_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    org_sourced_id: Mapped[str] = mapped_column(String(255))
    user_profile_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class UserProfile(RosterRecord, Base):
    """A user's account with a vendor's application (userProfiles.csv; §4.13.3)."""

    __tablename__ = "user_profiles"
    __table_args__ = _roster_indexes("user_profiles", ("district_id", "user_sourced_id"))

    user_sourced_id: Mapped[str] = mapped_column(String(255))
    profile_type: Mapped[str] = mapped_column(String(255))
    vendor_id: Mapped[str] = mapped_column(String(255))
    application_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    credential_type: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(255))
    # Never filled: the credential's password is not kept (see the userProfiles.csv binding).
    password: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Enrollment(RosterRecord, Rendered, Base):
    """A user's membership of a class in a role (1.2 Rostering §4.8)."""

    __tablename__ = "enrollments"
    __table_args__ = _roster_indexes("enrollments", ("district_id", "class_sourced_id", "role"),
                                     ("district_id", "user_sourced_id"),
                                     ("district_id", "school_sourced_id", "class_sourced_id"), _BY_ID)

    class_sourced_id: Mapped[str] = mapped_column(String(255))
    school_sourced_id: Mapped[str] = mapped_column(String(255))
    user_sourced_id: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(64))
    primary: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    begin_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    end_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class Demographics(RosterRecord, Rendered, Base):
    """A user's demographic data; its sourcedId is the user's (1.2 Rostering §4.6)."""

    __tablename__ = "demographics"
    __table_args__ = _roster_indexes("demographics", _BY_ID)

    birth_date: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    sex: Mapped[str | None] = mapped_column(String(64), nullable=True)
    american_indian_or_alaska_native: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    asian: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    black_or_african_american: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    native_hawaiian_or_other_pacific_islander: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    white: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    demographic_race_two_or_more_races: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    hispanic_or_latino_ethnicity: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    country_of_birth_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state_of_birth_abbreviation: Mapped[str | None] = mapped_column(String(64), nullable=True)
    city_of_birth: Mapped[str | None] = mapped_column(String(255), nullable=True)
    public_school_residence_status: Mapped[str | None] = mapped_column(String(255), nullable=True)


ROSTER_MODELS = (Org, AcademicSession, Course, Class, User, Role, UserProfile, Enrollment, Demographics)
