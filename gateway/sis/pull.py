"""Scheduled pulls from a SIS's OneRoster 1.2 REST service: the service behind ``gateway sources``.

A pull reads every rostering collection of the source into a OneRoster 1.2.1 CSV bundle in a
private temporary folder (:mod:`gateway.sis.bundle`) and imports it with
:func:`gateway.importing.run_import`, the one way every import runs: validated, merged in one
transaction or not at all, and recorded in the import history (``gateway imports``) as
``oneroster-rest:<url>``. The folder is removed afterwards, whatever happened.

- The first pull, or one asked ``full``, is ``bulk``: the district's records missing from the
  source are marked tobedeleted (behind the importer's mass-change guard).
- Later pulls ask each collection for ``dateLastModified>`` the start of the last applied pull
  (by the source's clock, its ``Date`` header) less an overlap (``SIS_PULL_OVERLAP_SECONDS``),
  and import the answers as ``delta`` files, records tobedeleted included. The anchor moves only
  when a pull's import was applied.
- A pull that fails before its import (unreachable, refused credentials, not OneRoster, a
  timeout, inconsistent pages) is recorded in the import history as ``failed`` with its
  one-line reason; nothing was written.
"""
from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence
from urllib.parse import urlsplit

from sqlalchemy import select

from gateway.errors import UsageError
from gateway.importing import run_import
from gateway.oneroster.csv import binding
from gateway.oneroster.csv.importer import ImportOptions, ImportReport, record_import_run
from gateway.oneroster.csv.limits import ImportLimits
from gateway.oneroster.serialize import format_datetime
from gateway.oneroster.vocabulary import SCOPE_ROSTER_DEMOGRAPHICS
from gateway.sis.bundle import COLLECTIONS, USER_PARTS, BundleWriter, Collection
from gateway.sis.client import AccessRefused, OneRosterClient, SourceError
from gateway.sis.secrets import (SecretUnreadable, open_client_secret, seal_client_secret,
                                 secrets_key)
from gateway.store import Database, StoreBusy
from gateway.store.models import utcnow
from gateway.store.sources import (SisSource, active_user_parts, claim_due_source, due_source_ids,
                                   list_sources)
from gateway.urls import is_loopback_host

SOURCE_LABEL_PREFIX = "oneroster-rest:"
ROSTERING_PATH_MARK = "/ims/oneroster/"
SYSTEM_NAME = "OneRoster 1.2 REST pull (k12-gateway)"
# Pull intervals: at least five minutes (a SIS is not a stream), at most a year.
MIN_INTERVAL_SECONDS = 5 * 60
MAX_INTERVAL_SECONDS = 366 * 86400
_INTERVAL = re.compile(r"(\d+)\s*([mhd])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


class UnknownSource(UsageError):
    """No source has this id."""


class InvalidSource(UsageError):
    """A source's settings are not usable (an address, the interval, a credential)."""


# ------------------------------------------------------------------------------------ settings

@dataclass(frozen=True)
class PullSettings:
    """What every pull of this gateway shares: the key of the stored secrets, where private
    temporary bundles go, the HTTP timeout and delta overlap, and the import's own settings."""

    secret_key: str
    work_folder: Path
    timeout: float = 60.0
    overlap: dt.timedelta = dt.timedelta(hours=1)
    mass_change_threshold: float = 0.25
    max_reported_problems: int = 1000
    limits: ImportLimits = field(default_factory=ImportLimits)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], work_folder: str | Path) -> "PullSettings":
        """The settings of an app's configuration (``SIS_PULL_*``, ``IMPORT_*``...)."""
        return cls(secret_key=config["SECRET_KEY"], work_folder=Path(work_folder),
                   timeout=float(config["SIS_PULL_TIMEOUT_SECONDS"]),
                   overlap=dt.timedelta(seconds=int(config["SIS_PULL_OVERLAP_SECONDS"])),
                   mass_change_threshold=config["MASS_CHANGE_THRESHOLD"],
                   max_reported_problems=config["IMPORT_MAX_REPORTED_ERRORS"],
                   limits=ImportLimits.from_config(config))


class PullProgress(Protocol):
    """Where a pull reports how far it got (the CLI draws bars on a terminal)."""

    def fetched(self, collection: str, done: int, total: int | None) -> None:
        """``done`` records of ``collection`` read so far, of ``total`` if the source said."""

    def importing(self, done: int, total: int) -> None:
        """The import's progress, in the units :func:`gateway.importing.run_import` reports."""


# ---------------------------------------------------------------------------- adding sources

def parse_interval(text: str) -> int:
    """``30m``, ``6h``, ``1d`` (or a sum such as ``1d12h``) as seconds."""
    compact = text.strip().lower()
    parts = _INTERVAL.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact.replace(" ", ""):
        raise InvalidSource(f"interval {text!r}: give minutes, hours or days, e.g. 30m, 6h, 1d")
    seconds = sum(int(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if not MIN_INTERVAL_SECONDS <= seconds <= MAX_INTERVAL_SECONDS:
        raise InvalidSource(f"interval {text!r}: between {format_interval(MIN_INTERVAL_SECONDS)} "
                            f"and {format_interval(MAX_INTERVAL_SECONDS)}")
    return seconds


def format_interval(seconds: int) -> str:
    """Seconds as the largest whole unit: ``86400`` -> ``1d``, ``5400`` -> ``90m``."""
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def check_url(url: str, what: str) -> str:
    """``url`` without a trailing slash, if it is an absolute https URL (http only to this
    host: the client secret and the rosters never cross a network in clear)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidSource(f"{what} {url!r}: an absolute https:// URL")
    if parts.username or parts.password:
        raise InvalidSource(f"{what} {url!r}: no credentials in the URL (use --client-id and "
                            "--client-secret)")
    if parts.query or parts.fragment:
        raise InvalidSource(f"{what} {url!r}: the address alone, without ?query or #fragment")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InvalidSource(f"{what} {url!r}: https:// (plain http is accepted only for this "
                            "host, localhost or 127.0.0.1: the client secret and the rosters "
                            "would cross the network in clear)")
    return url.strip().rstrip("/")


def default_token_url(base_url: str) -> str:
    """The token URL a OneRoster service at ``base_url`` documents when it is served as this
    gateway serves it: ``/oauth/token`` beside ``/ims/oneroster/...`` (the discovery document's
    ``tokenUrl``)."""
    parts = urlsplit(base_url)
    path = parts.path
    prefix = path[:path.index(ROSTERING_PATH_MARK)] if ROSTERING_PATH_MARK in path else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}/oauth/token"


def add_source(session, *, district: str, district_name: str | None, base_url: str,
               token_url: str | None, client_id: str, client_secret: str, interval_seconds: int,
               secret_key: str, now: dt.datetime) -> SisSource:
    """Register a district's source (due at once: its first pull is a full one); flushed."""
    district = district.strip()
    if not district:
        raise InvalidSource("--district: the district's sourcedId (its org of type district)")
    base_url = check_url(base_url, "--oneroster-url")
    token_url = check_url(token_url, "--token-url") if token_url else default_token_url(base_url)
    if not client_id.strip() or not client_secret:
        raise InvalidSource("the client_id and the client secret must not be empty")
    taken = session.execute(select(SisSource.id).where(
        SisSource.district_sourced_id == district, SisSource.base_url == base_url)).scalar()
    if taken is not None:
        raise InvalidSource(f"source {taken} already pulls {district} from {base_url} "
                            f"(`gateway sources remove {taken}` first to replace it)")
    source = SisSource(
        district_sourced_id=district, district_name=district_name or None, base_url=base_url,
        token_url=token_url, client_id=client_id.strip(),
        client_secret_encrypted=seal_client_secret(secrets_key(secret_key), base_url, token_url,
                                                   client_id.strip(), client_secret),
        interval_seconds=interval_seconds, created_at=now, next_due_at=now)
    session.add(source)
    session.flush()
    return source


def get_source(session, source_id: int) -> SisSource:
    """The source ``source_id``, or :class:`UnknownSource`."""
    source = session.get(SisSource, source_id)
    if source is None:
        raise UnknownSource(f"no source {source_id} (see `gateway sources list`)")
    return source


def remove_source(session, source_id: int) -> dict[str, Any]:
    """Forget a source (its runs stay in the import history); what it was."""
    source = get_source(session, source_id)
    described = describe_source(source)
    session.delete(source)
    session.flush()
    return described


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


def describe_source(source: SisSource) -> dict[str, Any]:
    """A source as ``sources list`` shows it: everything but the secret."""
    return {"id": source.id, "district": source.district_sourced_id,
            "district_name": source.district_name, "oneroster_url": source.base_url,
            "token_url": source.token_url, "client_id": source.client_id,
            "every": format_interval(source.interval_seconds),
            "next_due_at": _iso(source.next_due_at), "synced_through": _iso(source.synced_through),
            "last_started_at": _iso(source.last_started_at),
            "last_finished_at": _iso(source.last_finished_at),
            "last_outcome": source.last_outcome, "last_message": source.last_message,
            "last_import_run": source.last_import_run_id}


def describe_sources(session) -> list[dict[str, Any]]:
    """Every source, described."""
    return [describe_source(source) for source in list_sources(session)]


# ------------------------------------------------------------------------------------ pulling

@dataclass
class PullOutcome:
    """What one pull did: how it read the source, and how its import ended."""

    source_id: int
    district: str
    url: str
    mode: str  # bulk | delta
    since: dt.datetime | None  # the dateLastModified> of a delta
    outcome: str  # applied | rejected | failed
    message: str | None = None
    import_run_id: int | None = None
    rows: dict[str, int] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    report: ImportReport | None = None
    requests: int = 0
    # The path and query of each rostering request, in order: what the pull asked the SIS for
    # (filters by dateLastModified only, never a person).
    requested: list[str] = field(default_factory=list)
    snapshots_refreshed: int = 0
    # The time the import stamps on what it changes (a delta's rows carry it too).
    stamp: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        """Whether the pull ended as it should (its import applied)."""
        return self.outcome == "applied"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``sources run --json``)."""
        return {"source": self.source_id, "district": self.district, "oneroster_url": self.url,
                "mode": self.mode, "since": _iso_ms(self.since), "outcome": self.outcome,
                "message": self.message, "import_run": self.import_run_id, "rows": self.rows,
                "requests": self.requests, "requested": self.requested, "notices": self.notices,
                "sharing_scopes_refreshed": self.snapshots_refreshed,
                "report": self.report.to_dict() if self.report else None}


def _iso_ms(moment: dt.datetime | None) -> str | None:
    return format_datetime(moment) if moment else None


@dataclass(frozen=True)
class _Plan:
    """One pull, as read from its source's row when it starts."""

    source_id: int
    district: str
    district_name: str | None
    base_url: str
    token_url: str
    client_id: str
    sealed_secret: bytes
    since: dt.datetime | None

    @property
    def label(self) -> str:
        return SOURCE_LABEL_PREFIX + self.base_url


def run_source(database: Database, source_id: int, settings: PullSettings, *,
               force: bool = False, full: bool = False, progress: PullProgress | None = None,
               due_at: dt.datetime | None = None) -> PullOutcome | None:
    """Pull source ``source_id`` now and import what it holds; the outcome, also when it
    failed. With ``due_at`` only if it is still due then (None when another process took it).

    ``force``: apply a bulk pull past the mass-change guard. ``full``: a bulk pull even when a
    delta would do (a full resync).
    """
    started = utcnow()
    with database.session_scope(write=True) as session:
        source = get_source(session, source_id)
        next_due = started + dt.timedelta(seconds=source.interval_seconds)
        if due_at is not None:
            if not claim_due_source(session, source_id, due_at, next_due):
                return None
        else:
            source.next_due_at = next_due
        source.last_started_at = started
        since = None if full or source.synced_through is None else (
            source.synced_through - settings.overlap)
        plan = _Plan(source.id, source.district_sourced_id, source.district_name, source.base_url,
                     source.token_url, source.client_id, source.client_secret_encrypted, since)
    outcome = PullOutcome(source_id=plan.source_id, district=plan.district, url=plan.base_url,
                          mode="delta" if since else "bulk", since=since, outcome="failed")
    anchor: dt.datetime | None = None
    # mkdtemp makes the folder owner-only (0700) whatever the umask: what is written in it is
    # every student's record.
    root = Path(tempfile.mkdtemp(prefix="sis-pull-", dir=_work_folder(settings)))
    try:
        try:
            secret = open_client_secret(secrets_key(settings.secret_key), plan.base_url,
                                        plan.token_url, plan.client_id, plan.sealed_secret)
            anchor = _fetch(database, plan, secret, settings, root, outcome, progress)
        except Exception as error:
            expected = isinstance(error, (SourceError, SecretUnreadable))
            outcome.message = str(error) if expected else f"{type(error).__name__}: {error}"[:2000]
            outcome.import_run_id = _record_failure(database, plan, started, outcome.message)
            if expected:
                return outcome
            raise
        if not outcome.rows:
            outcome.outcome = "applied"
            outcome.message = f"nothing changed at the source since {_iso_ms(since)}"
            outcome.import_run_id = _record_unchanged(database, plan, started, outcome.message)
            return outcome
        try:
            _import(database, plan, settings, root / "bundle", started, outcome, force, progress)
        except Exception as error:
            # run_import recorded the run as failed; the source's row says so too.
            outcome.message = f"{type(error).__name__}: {error}"[:2000]
            raise
        return outcome
    finally:
        shutil.rmtree(root, ignore_errors=True)
        _finish(database, plan.source_id, outcome, anchor)


def _work_folder(settings: PullSettings) -> Path | None:
    folder = settings.work_folder
    return folder if folder.is_dir() else None


def _fetch(database: Database, plan: _Plan, secret: str, settings: PullSettings, root: Path,
           outcome: PullOutcome, progress: PullProgress | None) -> dt.datetime:
    """Read every collection of the source into a bundle in ``root/bundle`` (rows spilled in
    ``root/work`` meanwhile); return the anchor of the next delta: the source's clock when this
    pull began reading it."""
    started = utcnow()
    folder, work = root / "bundle", root / "work"
    folder.mkdir()
    work.mkdir()
    client = OneRosterClient(plan.base_url, plan.token_url, plan.client_id, secret,
                             timeout=settings.timeout)
    writer = BundleWriter(folder, work, outcome.mode,
                          current_parts=lambda ids: _current_parts(database, plan.district, ids))
    try:
        client.connect()
        filter = f"dateLastModified>'{format_datetime(plan.since)}'" if plan.since else None
        for collection in COLLECTIONS:
            _pull_collection(client, collection, filter, writer, outcome, progress)
        # The import's time, taken as late as it can be (see BundleWriter on deltas' stamps).
        outcome.stamp = utcnow()
        outcome.rows = writer.finish(SYSTEM_NAME, format_datetime(outcome.stamp))
    finally:
        writer.close()
        outcome.requests = len(client.requested)
        outcome.requested = [_path_and_query(url) for url in client.requested]
    outcome.notices += writer.notices
    if outcome.mode == "bulk" and not outcome.rows:
        raise SourceError(f"{plan.base_url} holds no records at all for this client; nothing "
                          "was imported")
    return client.server_date or started


def _pull_collection(client: OneRosterClient, collection: Collection, filter: str | None,
                     writer: BundleWriter, outcome: PullOutcome,
                     progress: PullProgress | None) -> None:
    """Read one collection into the writer. Demographics are optional: a source that keeps them
    from this client leaves them out, with a notice, and the rest is pulled."""
    demographics = collection.name == "demographics"
    if demographics and client.granted_scopes is not None and \
            SCOPE_ROSTER_DEMOGRAPHICS not in client.granted_scopes:
        outcome.notices.append("demographics were not pulled: the token endpoint did not grant "
                               "roster-demographics.readonly")
        return
    done = 0
    try:
        for records, total in client.pages(collection.name, filter):
            writer.add_page(collection, records)
            done += len(records)
            if progress is not None:
                progress.fetched(collection.name, done, total)
    except AccessRefused as refused:
        if not demographics:
            raise
        writer.discard(collection.csv_file.name)
        outcome.notices.append(f"demographics were not pulled: the source refused them "
                               f"({refused.status_code})")


def _current_parts(database: Database, district: str,
                   user_ids: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """The active roles and profiles the store holds for ``user_ids``, as CSV values."""
    with database.session_scope() as session:
        by_table = active_user_parts(session, district, list(user_ids))
    parts: dict[str, list[dict[str, str]]] = {}
    for name in USER_PARTS:
        csv_file = binding.ROSTERING_BY_NAME[name]
        parts[name] = [{column.name: _stored_text(row.get(column.attribute))
                        for column in csv_file.columns} for row in by_table[csv_file.table]]
    return parts


def _stored_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _import(database: Database, plan: _Plan, settings: PullSettings, folder: Path,
            started: dt.datetime, outcome: PullOutcome, force: bool,
            progress: PullProgress | None) -> None:
    """Import the pulled bundle the one way imports run, into ``outcome``."""
    # The district's name creates it on a first pull from a SIS that serves no district org.
    options = ImportOptions(force=force, district=plan.district, district_name=plan.district_name,
                            mass_change_threshold=settings.mass_change_threshold,
                            max_reported_problems=settings.max_reported_problems,
                            limits=settings.limits, now=outcome.stamp)
    try:
        imported = run_import(database, folder, options,
                              progress.importing if progress is not None else None,
                              source=plan.label, started_at=started)
    except StoreBusy as busy:
        # run_import recorded the run as refused; the history has it, the source says why.
        outcome.message = str(busy)
        return
    report = imported.report
    outcome.report = report
    outcome.import_run_id = imported.run_id
    outcome.snapshots_refreshed = imported.snapshots_refreshed
    outcome.outcome = report.outcome
    outcome.notices += report.notices
    if report.outcome == "applied":
        return
    if report.refusal:
        outcome.message = report.refusal
    elif report.problems:
        outcome.message = (f"{report.problem_count} problem(s) in what the source sent, e.g. "
                           f"{report.problems[0]}; nothing was written")
    else:
        outcome.message = f"{report.problem_count} problem(s); nothing was written"


def _record_failure(database: Database, plan: _Plan, started: dt.datetime, message: str) -> int:
    """Put a pull that failed before its import in the import history, as ``failed``."""
    with database.session_scope(write=True) as session:
        report = ImportReport(source=plan.label, outcome="failed", district=plan.district)
        return record_import_run(session, report, started, message=message).id


def _record_unchanged(database: Database, plan: _Plan, started: dt.datetime, message: str) -> int:
    """Put a delta with nothing new in the import history: applied, with nothing to apply."""
    with database.session_scope(write=True) as session:
        report = ImportReport(source=plan.label, outcome="applied", district=plan.district)
        return record_import_run(session, report, started, message=message).id


def _finish(database: Database, source_id: int, outcome: PullOutcome,
            anchor: dt.datetime | None) -> None:
    """Write how the pull went on its source's row; the delta anchor only if it was applied.

    Apart from the import's transaction: a process that dies between the two leaves the anchor
    where it was, and the next pull asks again from there (records fetched twice change nothing).
    """
    with database.session_scope(write=True) as session:
        source = session.get(SisSource, source_id)
        if source is None:
            return  # removed meanwhile
        source.last_finished_at = utcnow()
        source.last_outcome = outcome.outcome
        source.last_message = outcome.message
        source.last_import_run_id = outcome.import_run_id
        if outcome.ok and anchor is not None:
            source.synced_through = anchor


def run_due_sources(database: Database, settings: PullSettings, now: dt.datetime | None = None,
                    progress: PullProgress | None = None) -> list[PullOutcome]:
    """Pull every source due at ``now``, one after another; one failing does not stop the rest."""
    now = now or utcnow()
    with database.session_scope() as session:
        due = due_source_ids(session, now)
    outcomes = []
    for source_id in due:
        try:
            outcome = run_source(database, source_id, settings, progress=progress, due_at=now)
        except UnknownSource:
            continue  # removed since it was listed
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def claim_due_sources(database: Database, now: dt.datetime | None = None) -> list[int]:
    """Claim every source due at ``now`` for a pull queued as a job: its next pull is moved one
    interval on now, as a pull does when it starts, so that a scheduler run on two hosts (or
    twice) queues each due pull once. The ids claimed."""
    now = now or utcnow()
    claimed = []
    with database.session_scope(write=True) as session:
        for source_id in due_source_ids(session, now):
            source = session.get(SisSource, source_id)
            if source is not None and claim_due_source(
                    session, source_id, now, now + dt.timedelta(seconds=source.interval_seconds)):
                claimed.append(source_id)
    return claimed


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
