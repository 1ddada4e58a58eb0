"""What the console shows of a district: the pickers of the policy form, the dashboard, the apps
and their connections, people (for password resets) and the public transparency page. Reads
only; the writes go through the services the CLI calls."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import String, cast, func, select
from sqlalchemy.orm import Session

from gateway.admin.accounts import HELP_DESK, TECH_LEAD, Admin, Forbidden
from gateway.errors import UsageError
from gateway.lti.platform.portal import set_password
from gateway.sharing.contract import contract_window
from gateway.sharing.policy import BASE_FIELDS, SERVED_FIELDS, Policy
from gateway.sharing.service import load_policy, visible_counts
from gateway.store.apps import AccessToken, App, AppClient
from gateway.store.lti import TOOL_PENDING, Deployment, Tool
from gateway.store.models import Class, District, ImportRun, Org, Role, User
from gateway.store.sharing import LedgerHead

CONTRACT_WARNING_DAYS = 30


@dataclass(frozen=True)
class Pickers:
    """The district's schools, grades and classes, as the policy form offers them."""

    schools: list[tuple[str, str]]  # (sourcedId, name)
    grades: list[tuple[str, str]]  # (code, label): the code as the SIS writes it
    classes: list[tuple[str, str]]  # (sourcedId, title)


def district_pickers(session: Session, admin: Admin) -> Pickers:
    """The choices of the policy form; a tech lead is offered their schools only."""
    schools = session.execute(select(Org.sourced_id, Org.name).where(
        Org.district_id == admin.district_id, Org.type == "school", Org.status == "active")
        .order_by(Org.name)).all()
    if admin.role == TECH_LEAD:
        schools = [s for s in schools if s[0] in admin.schools]
    grades: set[str] = set()
    # Each distinct list once (JSON as text: PostgreSQL's json has no equality for DISTINCT).
    for text in session.execute(select(cast(Class.grades, String)).where(
            Class.district_id == admin.district_id, Class.grades.is_not(None)).distinct()).scalars():
        grades.update(json.loads(text))
    classes = session.execute(select(Class.sourced_id, Class.title).where(
        Class.district_id == admin.district_id, Class.status == "active")
        .order_by(Class.title, Class.sourced_id)).all()
    return Pickers([tuple(s) for s in schools], [(g, g) for g in sorted(grades)],
                   [tuple(c) for c in classes])


def check_policy_schools(admin: Admin, document: dict) -> None:
    """A tech lead may only set a policy naming schools they lead."""
    if admin.role != TECH_LEAD:
        return
    schools = set(document.get("schools", []))
    if "*" in schools or not schools <= set(admin.schools):
        raise Forbidden("A school tech lead may share only their own schools: choose them "
                        "instead of all schools.")


@dataclass
class AppRow:
    """An app connected to the district, as the console lists it."""

    app_id: int
    name: str
    client_ids: list[str] = field(default_factory=list)
    live: bool = False
    last_token: dt.datetime | None = None
    policy: Policy | None = None
    shares_nothing: bool = True
    contract_end: dt.date | None = None



def district_apps(session: Session, district_id: int) -> list[AppRow]:
    """Every app with a client in the district (revoked ones too), with its policy and the last
    time it was issued a token (its last sync)."""
    rows = session.execute(
        select(App.id, App.name, AppClient.client_id, AppClient.revoked_at,
               select(func.max(AccessToken.issued_at))
               .where(AccessToken.app_client_id == AppClient.id).scalar_subquery())
        .join(AppClient, AppClient.app_id == App.id)
        .where(AppClient.district_id == district_id).order_by(App.name, App.id, AppClient.id)).all()
    apps: dict[int, AppRow] = {}
    for app_id, name, client_id, revoked_at, last in rows:
        row = apps.setdefault(app_id, AppRow(app_id, name))
        row.client_ids.append(client_id)
        row.live = row.live or revoked_at is None
        if last is not None and (row.last_token is None or last > row.last_token):
            row.last_token = last
    for row in apps.values():
        row.policy = load_policy(session, row.app_id, district_id)
        counts = visible_counts(session, row.policy, district_id)
        row.shares_nothing = (row.policy is None or not row.policy.shares_entity("user")
                              or counts["students"] + counts["teachers"] == 0)
        window = contract_window(session, row.app_id, district_id)
        row.contract_end = window[1] if window is not None else None
    return list(apps.values())


def app_in_district(session: Session, app_id: int, district_id: int) -> App:
    """The app ``app_id`` if it has a client in the district (an admin sees only their own)."""
    found = session.execute(select(App).join(AppClient, AppClient.app_id == App.id).where(
        App.id == app_id, AppClient.district_id == district_id).limit(1)).scalar_one_or_none()
    if found is None:
        raise UsageError("No such app in this district.")
    return found


def live_clients(session: Session, app_id: int, district_id: int) -> list[AppClient]:
    """The app's live clients in the district, newest first."""
    return list(session.execute(select(AppClient).where(
        AppClient.app_id == app_id, AppClient.district_id == district_id,
        AppClient.revoked_at.is_(None)).order_by(AppClient.id.desc())).scalars())


def live_client(session: Session, app_id: int, district_id: int) -> AppClient | None:
    """The app's newest live client in the district, if any."""
    found = live_clients(session, app_id, district_id)
    return found[0] if found else None


def check_app_scope(session: Session, admin: Admin, app_id: int) -> None:
    """A tech lead manages the apps of their schools only: those without a policy yet, or whose
    policy names only schools they lead."""
    if admin.role != TECH_LEAD:
        return
    policy = load_policy(session, app_id, admin.district_id)
    if policy is not None and (policy.schools is None or not policy.schools <= set(admin.schools)):
        raise Forbidden("This app is shared beyond your schools: a district admin manages it.")


def check_app_deletable(session: Session, admin: Admin, app_id: int) -> None:
    """An app may be deleted from the console only if it is connected to the admin's district
    alone (deleting it takes its connections everywhere)."""
    admin.require("manage_apps")
    check_app_scope(session, admin, app_id)
    elsewhere = session.execute(select(AppClient.id).where(
        AppClient.app_id == app_id, AppClient.district_id != admin.district_id).limit(1)).first()
    if elsewhere is not None:
        raise Forbidden("This app is connected to other districts too: revoke it here instead.")


@dataclass(frozen=True)
class Dashboard:
    """The district at a glance."""

    last_import: ImportRun | None
    apps: list[AppRow]
    ledger_entries: int
    pending_tools: int
    warnings: list[str]


def dashboard(session: Session, district_id: int, today: dt.date) -> Dashboard:
    """The last import, the apps with their last sync, the ledger's size, and what needs a look:
    an app whose policy shares nothing, a contract ending within 30 days."""
    last = session.execute(select(ImportRun).where(ImportRun.district_id == district_id)
                           .order_by(ImportRun.started_at.desc(), ImportRun.id.desc())
                           .limit(1)).scalar_one_or_none()
    apps = district_apps(session, district_id)
    warnings = []
    for app in apps:
        if not app.live:
            continue
        if app.shares_nothing:
            warnings.append(f"{app.name}: its sharing policy shares nobody's records, so the app "
                            "receives no people.")
        if app.contract_end is not None and today <= app.contract_end \
                <= today + dt.timedelta(days=CONTRACT_WARNING_DAYS):
            warnings.append(f"{app.name}: its contract ends on {app.contract_end.isoformat()}.")
    if last is not None and last.outcome not in ("applied", "running"):
        warnings.append(f"The last import ({last.started_at:%Y-%m-%d %H:%M} UTC) ended: "
                        f"{last.outcome}.")
    entries = session.execute(select(LedgerHead.seq).where(
        LedgerHead.district_id == district_id)).scalar_one_or_none() or 0
    pending = session.execute(select(func.count(Tool.id.distinct())).join(
        Deployment, Deployment.tool_id == Tool.id).where(
        Deployment.district_id == district_id, Tool.status == TOOL_PENDING)).scalar_one()
    if pending:
        warnings.append(f"{pending} LTI tool(s) registered themselves and wait for approval.")
    return Dashboard(last, apps, entries, pending, warnings)


@dataclass(frozen=True)
class Person:
    """A person of the district, as the console's people search shows them."""

    id: int
    sourced_id: str
    username: str | None
    name: str
    roles: tuple[str, ...]
    school: str | None
    has_password: bool


def _holds_role(user_sourced_id, admin: Admin, *, schools: tuple[str, ...] = (),
                role: str | None = None):
    """Whether the user holds a role (``role``, at one of ``schools``) in the admin's district."""
    statement = select(Role.id).where(Role.district_id == admin.district_id,
                                      Role.user_sourced_id == user_sourced_id)
    if schools:
        statement = statement.where(Role.org_sourced_id.in_(schools))
    if role:
        statement = statement.where(Role.role == role)
    return statement.exists()


def find_people(session: Session, admin: Admin, query: str, limit: int = 50) -> list[Person]:
    """People of the district whose username, sourcedId or name starts with ``query``; a tech
    lead sees the people of their schools only."""
    query = query.strip()
    if not query:
        return []
    like = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    statement = select(User).where(User.district_id == admin.district_id, (
        User.username.ilike(like, escape="\\") | User.sourced_id.ilike(like, escape="\\")
        | User.family_name.ilike(like, escape="\\") | User.given_name.ilike(like, escape="\\")))
    if admin.role == TECH_LEAD:
        statement = statement.where(_holds_role(User.sourced_id, admin, schools=admin.schools))
    users = session.execute(statement.order_by(User.family_name, User.given_name, User.id)
                            .limit(limit)).scalars().all()
    roles: dict[str, set[str]] = {}
    if users:
        for user_sourced_id, role in session.execute(select(Role.user_sourced_id, Role.role).where(
                Role.district_id == admin.district_id,
                Role.user_sourced_id.in_([u.sourced_id for u in users]))):
            roles.setdefault(user_sourced_id, set()).add(role)
    return [Person(u.id, u.sourced_id, u.username,
                   " ".join(n for n in (u.preferred_given_name or u.given_name, u.family_name) if n),
                   tuple(sorted(roles.get(u.sourced_id, ()))), u.primary_org_sourced_id,
                   bool(u.password_hash)) for u in users]


def reset_person_password(session: Session, admin: Admin, user_id: int, password: str) -> User:
    """Set a person's portal password (their sessions end); a help desk may reset students'
    only, a tech lead those of their schools only."""
    admin.require("reset_passwords")
    user = session.get(User, user_id)
    if user is None or user.district_id != admin.district_id or not user.username:
        raise UsageError("No such person with a username in this district.")
    if admin.role == TECH_LEAD and not session.execute(select(
            _holds_role(user.sourced_id, admin, schools=admin.schools))).scalar():
        raise Forbidden("This person is not at one of your schools.")
    if admin.role == HELP_DESK and not session.execute(select(
            _holds_role(user.sourced_id, admin, role="student"))).scalar():
        raise Forbidden("The help desk may reset students' passwords only.")
    set_password(session, user.username, password, admin.district_sourced_id)
    return user


@dataclass(frozen=True)
class DisclosedField:
    """A field of a student's record an app receives, and how."""

    entity: str
    field: str
    how: str


@dataclass(frozen=True)
class PublicApp:
    """An app as the public transparency page describes it."""

    name: str
    fields: list[DisclosedField]
    contract_start: dt.date | None
    contract_end: dt.date | None


def transparency(session: Session, district_sourced_id: str) -> tuple[District, list[PublicApp]]:
    """The district and every app connected to it (with a live client), with the fields of a
    student's record each receives and how (shared, masked, pseudonymized)."""
    district = session.execute(select(District).where(
        District.sourced_id == district_sourced_id)).scalar_one_or_none()
    if district is None:
        raise UsageError("No such district.")
    shown = []
    for app in district_apps(session, district.id):
        if not app.live:
            continue
        fields = []
        if app.policy is not None:
            for entity in ("user", "enrollment", "demographics"):
                for name in SERVED_FIELDS[entity]:
                    how = app.policy.treatment(entity, name)
                    if how != "withheld" and (name not in BASE_FIELDS or how != "shared"
                                              or name == "sourcedId"):
                        fields.append(DisclosedField(entity, name, how.replace(":", " (") + (
                            ")" if ":" in how else "")))
        shown.append(PublicApp(app.name, fields,
                               app.policy.contract_start if app.policy else None,
                               app.policy.contract_end if app.policy else None))
    return district, shown




def import_history(session: Session, district_id: int, limit: int = 20) -> list[ImportRun]:
    """The district's latest import runs, newest first."""
    return list(session.execute(select(ImportRun).where(ImportRun.district_id == district_id)
                                .order_by(ImportRun.id.desc()).limit(limit)).scalars())


def problems_by_file(problems: list[dict]) -> dict[str, list[dict]]:
    """A report's problems grouped by file, in line order."""
    grouped: dict[str, list[dict]] = {}
    for problem in sorted(problems, key=lambda p: (p["file"], p.get("line") or 0)):
        grouped.setdefault(problem["file"], []).append(problem)
    return grouped


def applicable(job, district_sourced_id: str) -> str | None:
    """Whether a finished dry run may be applied: ``"ok"``, ``"hold"`` (valid, but held by the
    mass-change threshold: applying means approving the hold), or None (also once rejected)."""
    report = job.report or {}
    if (job.kind != "dry-run" or job.status != "done" or job.rejected_at
            or report.get("district") != district_sourced_id):
        return None
    if report.get("outcome") == "dry-run":
        return "ok"
    if report.get("refusal") and not report.get("problem_count"):
        return "hold"
    return None
