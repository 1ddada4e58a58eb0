"""Tables of the LTI 1.3 platform: its signing keys, the tools apps register, where tools are
placed, the single-use values it has seen. The service tokens issued to tools are access tokens like any other (:class:`gateway.store.apps.AccessToken`).

- ``lti_platform_keys``: RSA keys the platform signs with. The private key is stored only
  encrypted (AES-GCM under a key derived from ``GATEWAY_SECRET_KEY``, see
  :mod:`gateway.lti.keys`); a key retired by rotation stays published until every token
  it signed has expired.
- ``lti_tools``: an app's LTI tool (LTI 1.3 Core §3.1 "tool"): its OAuth client_id, where its
  login initiation and redirect URIs are, how to get its public keys, and whether an admin has
  approved it (dynamic registrations start ``pending``).
- ``lti_tool_icons``: the icon on a tool's launchpad tiles (a URL, or an uploaded image).
- ``lti_deployments``: the tool deployed in a district (Core §3.1.3 ``deployment_id``); a launch
  or a service call names one, and it fixes the district.
- ``lti_resource_links``: a tool placed (Core §3.2.1 resource link) in a class, by an admin or
  by deep linking, or by an admin at a school or district-wide, for everyone there or for staff
  only; what the portal lists and a launch names.
- ``lti_used_values``: every single-use value seen (message hints, nonces, client assertion
  ``jti``s), kept until it could no longer be accepted anyway.
- ``lti_registration_tokens``: one-time tokens for LTI Dynamic Registration.
- ``lti_deep_link_requests``: the ``data`` of each deep linking request, which the tool's
  response must echo (Deep Linking 2.0 §4.4.1); single use.

The gradebook tools write to (``line_items``, ``results``) is in :mod:`gateway.store.gradebook`;
:class:`LineItem` and :class:`Result` stay importable from here.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import Base, utcnow

TOOL_PENDING = "pending"
TOOL_APPROVED = "approved"

# Where a resource link is placed: in a class (launched with its context), or at a school or
# district-wide (launched without a context, Core §5.4.1).
PLACED_IN_CLASS = "class"
PLACED_AT_SCHOOL = "school"
PLACED_DISTRICT_WIDE = "district"
PLACEMENTS = (PLACED_IN_CLASS, PLACED_AT_SCHOOL, PLACED_DISTRICT_WIDE)
# Who a school or district-wide placement is for.
FOR_EVERYONE = "everyone"
FOR_STAFF = "staff"
AUDIENCES = (FOR_EVERYONE, FOR_STAFF)


class PlatformKey(Base):
    """An RSA key pair the platform signs JWTs with (LTI Security Framework §6.1)."""

    __tablename__ = "lti_platform_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    # 12-byte AES-GCM nonce followed by the ciphertext of the PKCS#8 DER private key.
    encrypted_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The public half as a JWK (RFC 7517), exactly as published.
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # When a newer key took over signing; None for the key that signs now.
    retired_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Tool(Base):
    """An LTI tool of an app: an OAuth client of the platform (Security Framework §4)."""

    __tablename__ = "lti_tools"
    __table_args__ = (Index("ix_lti_tools_app", "app_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    # OIDC third-party login initiation URL (Security Framework §5.1.1.1).
    login_url: Mapped[str] = mapped_column(Text)
    # Exact redirect URIs an authentication request may name (§5.1.1.2).
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    target_link_uri: Mapped[str] = mapped_column(Text)
    # Where LtiDeepLinkingRequest launches go; None: the tool does not do deep linking.
    deep_linking_uri: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The tool's keys: fetched from jwks_url, or given once as a JWK Set.
    jwks_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    public_jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Custom parameters sent with every launch (Core §5.4.6).
    custom: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # LTI service scopes the tool may be issued, space-separated (RFC 6749 §3.3).
    scope: Mapped[str] = mapped_column(Text, default="")
    on_portal: Mapped[bool] = mapped_column(Boolean, default=True)
    # pending | approved
    status: Mapped[str] = mapped_column(String(16), default=TOOL_PENDING)
    # The client metadata a dynamic registration sent, kept whole for the admin to review.
    registration: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class ToolIcon(Base):
    """The icon on a tool's launchpad tiles: an https URL, or an image uploaded and kept here.
    A table of its own so that reading a tool never reads its image."""

    __tablename__ = "lti_tool_icons"

    tool_id: Mapped[int] = mapped_column(ForeignKey("lti_tools.id", ondelete="CASCADE"),
                                         primary_key=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    image: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # The image's media type, from its first bytes (gateway.lti.platform.icons).
    media_type: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Deployment(Base):
    """A tool deployed in one district (LTI 1.3 Core §3.1.3)."""

    __tablename__ = "lti_deployments"
    __table_args__ = (
        UniqueConstraint("tool_id", "deployment_id", name="uq_lti_deployments_tool_deployment"),
        Index("ix_lti_deployments_district", "district_id", "tool_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("lti_tools.id", ondelete="CASCADE"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    deployment_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ResourceLink(Base):
    """A tool placed in a class, at a school or district-wide (LTI 1.3 Core §3.2.1 resource
    link)."""

    __tablename__ = "lti_resource_links"
    __table_args__ = (
        Index("ix_lti_resource_links_class", "district_id", "class_sourced_id"),
        Index("ix_lti_resource_links_placement", "district_id", "placement"),
        Index("ix_lti_resource_links_deployment", "deployment_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The resource_link.id the tool receives: random, so it says nothing about the class.
    link_id: Mapped[str] = mapped_column(String(64), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("lti_deployments.id", ondelete="CASCADE"))
    district_id: Mapped[int] = mapped_column(Integer)
    # None for a link placed at a school or district-wide.
    class_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # class | school | district (PLACEMENTS)
    placement: Mapped[str] = mapped_column(String(16), default=PLACED_IN_CLASS,
                                           server_default=PLACED_IN_CLASS)
    school_sourced_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # everyone | staff (AUDIENCES): a class placement is for the class's members.
    audience: Mapped[str] = mapped_column(String(16), default=FOR_EVERYONE,
                                          server_default=FOR_EVERYONE)
    title: Mapped[str] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A deep-linked item's own launch URL (None: the tool's target_link_uri).
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    custom: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # placement (an admin placed it) | deep_link (an instructor chose it in the tool)
    source: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class UsedValue(Base):
    """A single-use value that has been used: a message hint, a nonce or a ``jti``."""

    __tablename__ = "lti_used_values"
    __table_args__ = (Index("ix_lti_used_values_expires", "expires_at"),)

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    # After this the value would be refused as expired anyway, so the row can go.
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)


class RegistrationToken(Base):
    """A one-time token that lets a tool register itself for an app (LTI Dynamic Registration)."""

    __tablename__ = "lti_registration_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    tool_id: Mapped[int | None] = mapped_column(ForeignKey("lti_tools.id", ondelete="SET NULL"),
                                                nullable=True)


class DeepLinkRequest(Base):
    """An outstanding deep linking request, found again by the ``data`` the tool echoes."""

    __tablename__ = "lti_deep_link_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[str] = mapped_column(String(64), unique=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("lti_deployments.id", ondelete="CASCADE"))
    class_sourced_id: Mapped[str] = mapped_column(String(255))
    user_sourced_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


# The gradebook's tables moved to their own module; imported here so that existing imports
# (``from gateway.store.lti import LineItem, Result``) keep working.
from gateway.store.gradebook import LineItem, Result  # noqa: E402,F401
