"""The OneRoster 1.2 Resources service's tables: ``resources`` (learning content described by a
vendor's ids) and the three link files of the CSV binding that tie a resource to a class, a course
or a user (``class_resources``, ``course_resources``, ``user_resources``). Each is a base record of
its own (sourcedId, status, dateLastModified, metadata) so the importer merges it like any
rostering file; the read path (:mod:`gateway.store.rostering`) serves ``resources`` and follows the
links for ``/classes/{id}/resources``, ``/courses/{id}/resources`` and ``/users/{id}/resources``.
"""
from __future__ import annotations

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import _BY_ID, Base, RosterRecord, _roster_indexes


class Resource(RosterRecord, Base):
    """A resource: learning content used in a class or course (1.2 Resources, ResourceDType)."""

    __tablename__ = "resources"
    __table_args__ = _roster_indexes("resources", _BY_ID)

    vendor_resource_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(255), nullable=True)
    roles: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    importance: Mapped[str | None] = mapped_column(String(64), nullable=True)
    vendor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    application_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class ClassResource(RosterRecord, Base):
    """A class's use of a resource (classResources.csv)."""

    __tablename__ = "class_resources"
    # Read from the class's side (its resources), and checked from the resource's (its classes).
    __table_args__ = _roster_indexes("class_resources", ("district_id", "class_sourced_id"),
                                     ("district_id", "resource_sourced_id"))

    title: Mapped[str | None] = mapped_column(String(255), nullable=True)
    class_sourced_id: Mapped[str] = mapped_column(String(255))
    resource_sourced_id: Mapped[str] = mapped_column(String(255))


class CourseResource(RosterRecord, Base):
    """A course's use of a resource (courseResources.csv)."""

    __tablename__ = "course_resources"
    __table_args__ = _roster_indexes("course_resources", ("district_id", "course_sourced_id"),
                                     ("district_id", "resource_sourced_id"))

    title: Mapped[str | None] = mapped_column(String(255), nullable=True)
    course_sourced_id: Mapped[str] = mapped_column(String(255))
    resource_sourced_id: Mapped[str] = mapped_column(String(255))


class UserResource(RosterRecord, Base):
    """A person's use of a resource (userResources.csv), optionally within an org or a class."""

    __tablename__ = "user_resources"
    __table_args__ = _roster_indexes("user_resources", ("district_id", "user_sourced_id"),
                                     ("district_id", "resource_sourced_id"))

    user_sourced_id: Mapped[str] = mapped_column(String(255))
    org_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    class_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_sourced_id: Mapped[str] = mapped_column(String(255))


resources = Resource.__table__
class_resources = ClassResource.__table__
course_resources = CourseResource.__table__
user_resources = UserResource.__table__
