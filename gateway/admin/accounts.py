"""District staff accounts: roles, sign-in, sessions, invitations, and the audit log.

Three roles, each within one district:

- ``district_admin``: everything in the district (apps, policies, imports, tools, other admins);
- ``tech_lead``: the apps and people of their schools: they may set a policy only if it names
  schools they lead (never ``"*"``), and reset passwords of people at those schools;
- ``help_desk``: reads everything, changes nothing but students' passwords.

Passwords are salted scrypt hashes (:mod:`gateway.passwords`), like portal passwords. Sessions
are kept as the SHA-256 of a random token, like portal sessions.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.passwords import (PASSWORD_RULE, UNUSABLE_HASH, follows_password_rule,
                               hash_password, verify_password)
from gateway.store.admins import AdminAccount, AdminAction, AdminSession
from gateway.store.models import District

DISTRICT_ADMIN, TECH_LEAD, HELP_DESK = "district_admin", "tech_lead", "help_desk"
ROLES = {DISTRICT_ADMIN: "District admin", TECH_LEAD: "School tech lead",
         HELP_DESK: "Help desk"}
"""Each role and how the console names it."""

INVITE_LIFETIME = dt.timedelta(days=7)

# What each role may do; every view names the permission it needs.
PERMISSIONS = {
    DISTRICT_ADMIN: frozenset({"view", "manage_apps", "manage_admins", "manage_imports",
                               "manage_tools", "reset_passwords", "verify_ledger"}),
    TECH_LEAD: frozenset({"view", "manage_apps", "manage_tools", "reset_passwords",
                          "verify_ledger"}),
    HELP_DESK: frozenset({"view", "reset_passwords"}),
}


class AdminSignInFailed(Exception):
    """Unknown address, wrong password, or an account that may not sign in."""


class Forbidden(UsageError):
    """The signed-in admin's role does not allow this."""

    status = 403


@dataclass(frozen=True)
class Admin:
    """A signed-in staff member."""

    id: int
    email: str
    role: str
    schools: tuple[str, ...]
    district_id: int
    district_sourced_id: str
    district_name: str

    @property
    def role_name(self) -> str:
        """The role as the console names it."""
        return ROLES[self.role]

    def may(self, permission: str) -> bool:
        """Whether this admin's role grants ``permission``."""
        return permission in PERMISSIONS[self.role]

    def require(self, permission: str) -> None:
        """Raise :class:`Forbidden` unless this admin's role grants ``permission``."""
        if not self.may(permission):
            raise Forbidden(f"A {self.role_name.lower()} may not do this.")


def _admin(account: AdminAccount, district: District) -> Admin:
    return Admin(id=account.id, email=account.email, role=account.role,
                 schools=tuple(account.schools or ()), district_id=district.id,
                 district_sourced_id=district.sourced_id, district_name=district.name)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _normalized_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise UsageError(f"{email!r} is not an email address")
    return email


def _district(session: Session, sourced_id: str) -> District:
    district = session.execute(
        select(District).where(District.sourced_id == sourced_id)).scalar_one_or_none()
    if district is None:
        raise UsageError(f"no district {sourced_id!r}: import it first")
    return district


def _check_role(role: str, schools: list[str]) -> None:
    if role not in ROLES:
        raise UsageError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role == TECH_LEAD and not schools:
        raise UsageError("a school tech lead needs at least one school")
    if role != TECH_LEAD and schools:
        raise UsageError("only a school tech lead is given schools")


def create_admin(session: Session, *, district: str, email: str, role: str, password: str,
                 schools: list[str] | None = None, now: dt.datetime) -> Admin:
    """Create a staff account with ``password`` (the first account of a district, from the CLI)."""
    schools = list(schools or [])
    _check_role(role, schools)
    if not follows_password_rule(password):
        raise UsageError(f"an admin needs {PASSWORD_RULE}")
    found = _district(session, district)
    email = _normalized_email(email)
    if session.execute(select(AdminAccount.id).where(
            AdminAccount.district_id == found.id, AdminAccount.email == email)).first():
        raise UsageError(f"{email} is already an admin of district {district}")
    account = AdminAccount(district_id=found.id, email=email, role=role, schools=schools,
                           password_hash=hash_password(password), created_at=now)
    session.add(account)
    session.flush()
    return _admin(account, found)


def invite_admin(session: Session, inviter: Admin, *, email: str, role: str,
                 schools: list[str] | None, now: dt.datetime) -> str:
    """Invite ``email`` to the inviter's district with ``role``; returns the invitation's token
    (shown once; the store keeps only its hash). The invited person sets their own password."""
    inviter.require("manage_admins")
    schools = list(schools or [])
    _check_role(role, schools)
    email = _normalized_email(email)
    if session.execute(select(AdminAccount.id).where(
            AdminAccount.district_id == inviter.district_id, AdminAccount.email == email)).first():
        raise UsageError(f"{email} is already an admin of this district")
    token = secrets.token_urlsafe(32)
    session.add(AdminAccount(district_id=inviter.district_id, email=email, role=role,
                             schools=schools, invite_hash=_hash(token),
                             invite_expires_at=now + INVITE_LIFETIME, created_at=now))
    session.flush()
    record_action(session, inviter, "admin.invite", email, {"role": role, "schools": schools},
                  now=now)
    return token


def invited_account(session: Session, token: str, now: dt.datetime) -> AdminAccount | None:
    """The account an unexpired invitation ``token`` is for, or None."""
    return session.execute(select(AdminAccount).where(
        AdminAccount.invite_hash == _hash(token), AdminAccount.invite_expires_at > now,
        AdminAccount.disabled_at.is_(None))).scalar_one_or_none()


def accept_invite(session: Session, token: str, password: str, now: dt.datetime) -> Admin:
    """Set the invited account's password; the invitation is used up."""
    account = invited_account(session, token, now)
    if account is None:
        raise UsageError("This invitation has expired or was already used.")
    if not follows_password_rule(password):
        raise UsageError(f"Choose {PASSWORD_RULE}.")
    account.password_hash = hash_password(password)
    account.invite_hash = None
    account.invite_expires_at = None
    admin = _admin(account, session.get(District, account.district_id))
    record_action(session, admin, "admin.accept_invite", admin.email, now=now)
    return admin


def authenticate_admin(session: Session, email: str, password: str) -> Admin:
    """The staff member signing in as ``email`` with ``password``; :class:`AdminSignInFailed`
    otherwise. An address in several districts signs in to the one its password fits."""
    rows = session.execute(
        select(AdminAccount, District).join(District, District.id == AdminAccount.district_id)
        .where(AdminAccount.email == email.strip().lower(), AdminAccount.disabled_at.is_(None))
        .order_by(District.sourced_id)).all() if email and password else []
    if not rows:
        # The same scrypt work as a wrong password: timing does not tell which addresses exist.
        verify_password(UNUSABLE_HASH, password or "")
        raise AdminSignInFailed("unknown address or wrong password")
    for account, district in rows:
        if account.password_hash and verify_password(account.password_hash, password):
            return _admin(account, district)
    raise AdminSignInFailed("unknown address or wrong password")


def start_admin_session(session: Session, admin: Admin, now: dt.datetime,
                        lifetime: dt.timedelta) -> str:
    """Open a console session for ``admin``; returns the token the browser keeps."""
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(AdminSession(token_hash=_hash(token), admin_id=admin.id, created_at=now,
                             expires_at=now + lifetime))
    session.flush()
    return token


def session_admin(session: Session, token: str, now: dt.datetime) -> Admin | None:
    """The admin whose live session ``token`` is, or None."""
    row = session.execute(
        select(AdminAccount, District)
        .join(AdminSession, AdminSession.admin_id == AdminAccount.id)
        .join(District, District.id == AdminAccount.district_id)
        .where(AdminSession.token_hash == _hash(token), AdminSession.expires_at > now,
               AdminAccount.disabled_at.is_(None))).one_or_none()
    return _admin(*row) if row is not None else None


def end_admin_sessions(session: Session, admin_id: int) -> None:
    """End every console session of ``admin_id``, on every worker."""
    session.execute(delete(AdminSession).where(AdminSession.admin_id == admin_id))
    session.flush()


@dataclass(frozen=True)
class AdminRow:
    """An account as the console lists it."""

    id: int
    email: str
    role: str
    schools: tuple[str, ...]
    invited: bool
    disabled: bool


def list_admins(session: Session, admin: Admin) -> list[AdminRow]:
    """The staff accounts of ``admin``'s district."""
    return [AdminRow(a.id, a.email, ROLES[a.role], tuple(a.schools or ()),
                     a.password_hash is None, a.disabled_at is not None)
            for a in session.execute(select(AdminAccount).where(
                AdminAccount.district_id == admin.district_id)
                .order_by(AdminAccount.email)).scalars()]


def disable_admin(session: Session, admin: Admin, account_id: int, now: dt.datetime) -> str:
    """Disable another account of the district (its sessions end); returns its address."""
    admin.require("manage_admins")
    account = session.get(AdminAccount, account_id)
    if account is None or account.district_id != admin.district_id:
        raise UsageError("No such admin in this district.")
    if account.id == admin.id:
        raise UsageError("You cannot disable your own account.")
    account.disabled_at = now
    end_admin_sessions(session, account.id)
    record_action(session, admin, "admin.disable", account.email, now=now)
    return account.email


def record_action(session: Session, admin: Admin, action: str, target: str = "",
                  detail: dict[str, Any] | None = None, *, now: dt.datetime) -> None:
    """Add one line to the district's audit log."""
    session.add(AdminAction(district_id=admin.district_id, admin_id=admin.id, actor=admin.email,
                            at=now, action=action, target=target, detail=detail or {}))
    session.flush()


def audit_log(session: Session, district_id: int, *, limit: int = 200) -> list[AdminAction]:
    """The district's latest admin actions, newest first."""
    return list(session.execute(
        select(AdminAction).where(AdminAction.district_id == district_id)
        .order_by(AdminAction.at.desc(), AdminAction.id.desc()).limit(limit)).scalars())
