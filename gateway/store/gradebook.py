"""Tables of the gradebook, shaped as the OneRoster 1.2 Gradebook information model (and served by
the gradebook REST service, :mod:`gateway.gradebook`):

- ``gradebook_categories``: categories of line items (§4.3). A class's *default category*
  (``is_default``, ``class_sourced_id`` set) is made by the gateway so that the first category of
  a class always exists, even when the SIS sends none (Google Classroom takes a class's first).
- ``line_items`` and ``results``: a class's gradebook columns and the students' results on them
  (§4.5, §4.7), which are also LTI Assignment and Grade Services line items and scores (the AGS
  fields, resourceLinkId, tag, the last score's timestamp, are kept beside).
- ``score_scales`` (§4.9), ``assessment_line_items`` and ``assessment_results`` (§4.1, §4.2).

References between records are the referenced sourcedIds within the district, as in the roster
tables (:mod:`gateway.store.models`). ``meta`` attributes hold the records' ``metadata`` objects.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, Float, ForeignKey, Index,
                        Integer, String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base, utcnow


class GradebookRecord:
    """Columns common to every gradebook record (the model's base: sourcedId, status,
    dateLastModified, metadata), unique by district and sourcedId."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(Integer)
    sourced_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="active")
    date_last_modified: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, nullable=True)


ORIGIN_SIS = "sis"
ORIGIN_APP = "app"


class Imported:
    """Columns of the gradebook records a SIS bundle may carry (categories, score scales, line
    items, results): who wrote the record, and the fingerprint of the CSV row it was imported
    from (see :mod:`gateway.oneroster.csv.gradebook`)."""

    # ``sis``: imported from a bundle; ``app``: written through the REST service or LTI AGS. A
    # bulk gradebook file replaces the SIS's records only, never what apps wrote.
    origin: Mapped[str] = mapped_column(String(8), default=ORIGIN_APP, server_default=ORIGIN_APP)
    # The imported row's fingerprint; None once an app rewrote the record.
    row_hash: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


def written_by_app(record: Any) -> None:
    """Mark a record an app has just written (REST or AGS): the SIS no longer owns it, so a bulk
    import does not retire it and a row the SIS sends for it does not overwrite it."""
    if isinstance(record, Imported):
        record.origin = ORIGIN_APP
        record.row_hash = None


class Category(Imported, GradebookRecord, Base):
    """A category of line items: a OneRoster 1.2 Gradebook ``category`` (§4.3)."""

    __tablename__ = "gradebook_categories"
    __table_args__ = (
        UniqueConstraint("district_id", "sourced_id", name="uq_gradebook_categories_district_sourced_id"),
        Index("ix_gradebook_categories_class", "district_id", "class_sourced_id"),
    )

    title: Mapped[str] = mapped_column(String(255))
    weight: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The class a category belongs to when it is made for one (the default category); the model
    # gives categories no class, so None for the district's own categories.
    class_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class LineItem(Imported, GradebookRecord, Base):
    """A gradebook column of a class: a OneRoster 1.2 Gradebook ``lineItem`` (§4.5 of the
    Gradebook information model) that is also an AGS 2.0 line item (§3.2)."""

    __tablename__ = "line_items"
    __table_args__ = (
        UniqueConstraint("district_id", "sourced_id", name="uq_line_items_district_sourced_id"),
        Index("ix_line_items_class", "district_id", "class_sourced_id"),
        Index("ix_line_items_tool_class", "tool_id", "district_id", "class_sourced_id"),
        Index("ix_line_items_category", "district_id", "category_sourced_id"),
    )

    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    class_sourced_id: Mapped[str] = mapped_column(String(255))
    school_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    category_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    grading_period_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    academic_session_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    score_scale_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    assign_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    due_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    result_value_min: Mapped[float] = mapped_column(Float, default=0.0)
    # AGS scoreMaximum.
    result_value_max: Mapped[float] = mapped_column(Float)
    learning_objective_set: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # The tool that owns the column (None: made in the gradebook, not by a tool).
    tool_id: Mapped[int | None] = mapped_column(ForeignKey("lti_tools.id", ondelete="SET NULL"),
                                                nullable=True)
    resource_link_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resource_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    grades_released: Mapped[bool | None] = mapped_column(Boolean, nullable=True)


class Result(Imported, GradebookRecord, Base):
    """A student's result on a line item: a OneRoster 1.2 Gradebook ``result`` (§4.7), holding
    the last AGS score (§3.4) posted for it."""

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("district_id", "sourced_id", name="uq_results_district_sourced_id"),
        UniqueConstraint("line_item_id", "student_sourced_id", name="uq_results_line_item_student"),
        Index("ix_results_student", "district_id", "student_sourced_id"),
        Index("ix_results_class", "district_id", "class_sourced_id"),
    )

    line_item_id: Mapped[int] = mapped_column(ForeignKey("line_items.id", ondelete="CASCADE"))
    line_item_sourced_id: Mapped[str] = mapped_column(String(255))
    class_sourced_id: Mapped[str] = mapped_column(String(255))
    student_sourced_id: Mapped[str] = mapped_column(String(255))
    score_scale_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # OneRoster scoreStatus: exempt | fully graded | not submitted | partially graded | submitted
    score_status: Mapped[str] = mapped_column(String(32))
    # On the line item's scale (0..result_value_max); None when the tool cleared the score.
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    text_score: Mapped[str | None] = mapped_column(Text, nullable=True)
    score_date: Mapped[dt.datetime] = mapped_column(DateTime)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    learning_objective_set: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # The model's "true"/"false" flags, kept as sent; None when not sent.
    in_progress: Mapped[str | None] = mapped_column(String(5), nullable=True)
    incomplete: Mapped[str | None] = mapped_column(String(5), nullable=True)
    late: Mapped[str | None] = mapped_column(String(5), nullable=True)
    missing: Mapped[str | None] = mapped_column(String(5), nullable=True)
    # The AGS score as posted, so the result can be explained and later scores ordered.
    score_given: Mapped[float | None] = mapped_column(Float, nullable=True)
    score_maximum: Mapped[float | None] = mapped_column(Float, nullable=True)
    activity_progress: Mapped[str | None] = mapped_column(String(32), nullable=True)
    grading_progress: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The score's own timestamp, with its offset applied (UTC, microseconds).
    score_timestamp: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class ScoreScale(Imported, GradebookRecord, Base):
    """A score scale of a class: a OneRoster 1.2 Gradebook ``scoreScale`` (§4.9)."""

    __tablename__ = "score_scales"
    __table_args__ = (
        UniqueConstraint("district_id", "sourced_id", name="uq_score_scales_district_sourced_id"),
        Index("ix_score_scales_class", "district_id", "class_sourced_id"),
    )

    title: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(255))
    # The org a scale is defined for (scoreScales.csv orgSourcedId; the REST model has none).
    org_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    course_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    class_sourced_id: Mapped[str] = mapped_column(String(255))
    # [{"itemValueLHS": ..., "itemValueRHS": ...}, ...]
    score_scale_value: Mapped[list[dict[str, str]]] = mapped_column(JSON)


class AssessmentLineItem(GradebookRecord, Base):
    """An assessment column, in or outside a class: a OneRoster 1.2 ``assessmentLineItem``."""

    __tablename__ = "assessment_line_items"
    __table_args__ = (
        UniqueConstraint("district_id", "sourced_id",
                         name="uq_assessment_line_items_district_sourced_id"),
        Index("ix_assessment_line_items_class", "district_id", "class_sourced_id"),
    )

    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    class_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    parent_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    score_scale_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    result_value_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    result_value_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    learning_objective_set: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class AssessmentResult(GradebookRecord, Base):
    """A student's result on an assessment line item: a OneRoster 1.2 ``assessmentResult``."""

    __tablename__ = "assessment_results"
    __table_args__ = (
        UniqueConstraint("district_id", "sourced_id",
                         name="uq_assessment_results_district_sourced_id"),
        Index("ix_assessment_results_student", "district_id", "student_sourced_id"),
        Index("ix_assessment_results_line_item", "district_id", "assessment_line_item_sourced_id"),
    )

    assessment_line_item_sourced_id: Mapped[str] = mapped_column(String(255))
    student_sourced_id: Mapped[str] = mapped_column(String(255))
    score_status: Mapped[str] = mapped_column(String(32))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    text_score: Mapped[str | None] = mapped_column(Text, nullable=True)
    score_date: Mapped[dt.date] = mapped_column(Date)
    score_scale_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    score_percentile: Mapped[float | None] = mapped_column(Float, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    learning_objective_set: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    in_progress: Mapped[str | None] = mapped_column(String(5), nullable=True)
    incomplete: Mapped[str | None] = mapped_column(String(5), nullable=True)
    late: Mapped[str | None] = mapped_column(String(5), nullable=True)
    missing: Mapped[str | None] = mapped_column(String(5), nullable=True)
