"""Tables of the LTI 1.3 tool role: the LMS platforms that launch the gateway, what their launches
were matched to, and the short-lived values of a launch in progress.

- ``lms_platforms``: an LMS registered in one district (LTI 1.3 Core §3.1 "platform"): its issuer,
  the client_id it gave the gateway (a hosted Canvas uses one issuer for every institution, so
  one issuer may have several client_ids, each a row), its OIDC authorization, token and JWKS
  URLs, and how its people are matched when ``lis.person_sourcedid`` is absent.
  A platform that registered itself (LTI Dynamic Registration) stays ``pending``, its launches
  refused, until an admin approves it.
- ``lms_deployments``: the deployment ids (Core §3.1.3) an LMS may launch with; any other is
  refused.
- ``lms_people`` / ``lms_contexts``: each LMS user and LMS context seen, with the OneRoster user
  or class it was matched to (None: unmatched, listed by ``gateway lms unmatched``); a match is
  remembered, so later launches do not depend on the LMS sending the same claims.
- ``lms_links``: each LMS resource link seen, the gateway app it launches, and the gateway's own
  resource link in the OneRoster class it brokers to.
- ``lms_grade_forwards``: each score an app posted on a brokered link, to be sent on to the LMS's
  line item (AGS), with its attempts, its next try and the last error, until sent or given up.
- ``lms_launch_values``: state, nonces and launch data of launches in progress (pylti1p3's launch
  data storage when no Redis is configured), each with its expiry, so that the login and the
  launch may reach different workers or hosts.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base, utcnow


class LmsPlatform(Base):
    """An LMS that launches the gateway, registered in one district."""

    __tablename__ = "lms_platforms"
    __table_args__ = (
        UniqueConstraint("issuer", "client_id", name="uq_lms_platforms_issuer_client"),
        Index("ix_lms_platforms_district", "district_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    issuer: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(255))
    auth_url: Mapped[str] = mapped_column(Text)
    token_url: Mapped[str] = mapped_column(Text)
    jwks_url: Mapped[str] = mapped_column(Text)
    # Rules matching an LMS user to a OneRoster user when lis.person_sourcedid is absent or
    # unknown, tried in order: [{"field": "sourcedId"|"email"|"username", "claim": "email" |
    # "custom.<name>" | "<claim URI>"}].
    match_rules: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    # A custom parameter carrying the OneRoster class sourcedId, when the LMS sends no
    # lis.course_section_sourcedid.
    class_claim: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # approved | pending (registered dynamically from the LMS, until an admin approves it)
    status: Mapped[str] = mapped_column(String(16), default="approved")
    # What LTI Dynamic Registration exchanged (the LMS's configuration, its answer), for review.
    registration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


PLATFORM_APPROVED = "approved"
PLATFORM_PENDING = "pending"


class LmsDeployment(Base):
    """A deployment id an LMS launches the gateway with (Core §3.1.3)."""

    __tablename__ = "lms_deployments"
    __table_args__ = (
        UniqueConstraint("platform_id", "deployment_id", name="uq_lms_deployments_platform"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lms_platforms.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(255))


class LmsPerson(Base):
    """An LMS user seen in a launch, and the OneRoster user it is (None: not matched)."""

    __tablename__ = "lms_people"

    platform_id: Mapped[int] = mapped_column(ForeignKey("lms_platforms.id", ondelete="CASCADE"),
                                             primary_key=True)
    # The id_token's sub.
    lms_user_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # person_sourcedid | sourcedId | email | username (the rule that matched) | admin
    matched_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # What the LMS said of the person, for the admin matching by hand (name, email).
    label: Mapped[str] = mapped_column(Text, default="")
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class LmsContext(Base):
    """An LMS context (course) seen in a launch, and the OneRoster class it is."""

    __tablename__ = "lms_contexts"

    platform_id: Mapped[int] = mapped_column(ForeignKey("lms_platforms.id", ondelete="CASCADE"),
                                             primary_key=True)
    context_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    class_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # course_section_sourcedid | claim | admin
    matched_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    label: Mapped[str] = mapped_column(Text, default="")
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class LmsLink(Base):
    """An LMS resource link, the app it launches and the gateway's link it brokers to."""

    __tablename__ = "lms_links"

    platform_id: Mapped[int] = mapped_column(ForeignKey("lms_platforms.id", ondelete="CASCADE"),
                                             primary_key=True)
    lms_link_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    context_id: Mapped[str] = mapped_column(String(255))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("apps.id", ondelete="SET NULL"),
                                               nullable=True)
    # The gateway's ResourceLink.link_id in the matched class.
    gateway_link_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The LMS's AGS endpoint claim for the link, as last launched (where grades go back).
    lms_ags: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class LmsLaunchValue(Base):
    """A value of a launch in progress (state, nonce, launch data), until it expires."""

    __tablename__ = "lms_launch_values"
    __table_args__ = (Index("ix_lms_launch_values_expires", "expires_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


FORWARD_PENDING = "pending"
FORWARD_SENT = "sent"
FORWARD_FAILED = "failed"


class LmsGradeForward(Base):
    """A score on its way back to the LMS (AGS 2.0 §3.4), retried with backoff until sent."""

    __tablename__ = "lms_grade_forwards"
    __table_args__ = (Index("ix_lms_grade_forwards_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform_id: Mapped[int] = mapped_column(ForeignKey("lms_platforms.id", ondelete="CASCADE"))
    lms_link_id: Mapped[str] = mapped_column(String(255))
    # The app whose tool posted the score (the ledger entry names it).
    app_id: Mapped[int] = mapped_column(Integer)
    student_sourced_id: Mapped[str] = mapped_column(String(255))
    # The AGS score as the LMS will receive it (userId is the LMS's id of the student).
    score: Mapped[dict[str, Any]] = mapped_column(JSON)
    # pending | sent | failed (given up after the last attempt)
    status: Mapped[str] = mapped_column(String(16), default=FORWARD_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
