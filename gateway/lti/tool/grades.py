"""Grades back to the LMS: a score an app posts to the gateway's AGS on a link an LMS launched is
stored in the gradebook (as every score is) and forwarded to the LMS's line item for that link.

- :func:`queue_score` (in the app's score request): one ``lms_grade_forwards`` row per score on a
  brokered link, the score already in the LMS's terms (``userId`` is the LMS's id of the student,
  which the gateway learnt when the student launched from the LMS).
- :func:`forward_due` (after the response, and by ``gateway lms retry-grades``; with Redis, in an
  ``lms-grades`` job, :mod:`gateway.lti.tool.grade_jobs`): a service token
  from the LMS's token endpoint, asked for with a client assertion the gateway signs (RFC 7523; LTI
  Security Framework §4.1), then the score POSTed to the line item's ``/scores`` (AGS 2.0
  §3.4). A failure is kept with its error and retried later, each wait twice the one before,
  until :data:`MAX_ATTEMPTS`; then it stays ``failed`` for the admin (``gateway lms grades
  --failed``). Each score sent is a disclosure-ledger entry (channel ``lms``). No write
  transaction is open while an LMS answers.

No web framework here; the HTTP client is passed in (``requests`` in production).
"""
from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.lti import vocabulary as v
from gateway.lti.keys import KeyRing
from gateway.sharing.ledger import record_disclosure
from gateway.store.lms import (FORWARD_FAILED, FORWARD_PENDING, FORWARD_SENT, LmsGradeForward,
                               LmsLink, LmsPerson, LmsPlatform)
from gateway.store.lti import LineItem, Tool

MAX_ATTEMPTS = 8
FIRST_WAIT_SECONDS = 30
MAX_WAIT_SECONDS = 3600
TIMEOUT_SECONDS = 10
SCORE_FIELDS = ("scoreGiven", "scoreMaximum", "activityProgress", "gradingProgress", "timestamp",
                "comment")


def queue_score(session: Session, *, tool_id: int, district_id: int, line_item_sourced_id: str,
                student_sourced_id: str, score: Mapping[str, Any],
                now: dt.datetime) -> int | None:
    """Queue a score just stored on ``line_item_sourced_id`` for its LMS, if its link came from
    one; the queued row's id, or None."""
    item = session.execute(select(LineItem.resource_link_id, Tool.app_id).join(
        Tool, Tool.id == LineItem.tool_id).where(
        LineItem.district_id == district_id, LineItem.sourced_id == line_item_sourced_id,
        LineItem.tool_id == tool_id)).one_or_none()
    if item is None or item.resource_link_id is None:
        return None
    link = session.execute(select(LmsLink).where(
        LmsLink.gateway_link_id == item.resource_link_id)).scalar_one_or_none()
    if link is None:
        return None
    person = session.execute(select(LmsPerson.lms_user_id).where(
        LmsPerson.platform_id == link.platform_id,
        LmsPerson.user_sourced_id == student_sourced_id)).scalars().first()
    sent = {name: score[name] for name in SCORE_FIELDS if score.get(name) is not None}
    row = LmsGradeForward(platform_id=link.platform_id, lms_link_id=link.lms_link_id,
                          app_id=item.app_id, student_sourced_id=student_sourced_id,
                          score={**sent, "userId": person} if person else sent,
                          status=FORWARD_PENDING, attempts=0, next_attempt_at=now,
                          created_at=now)
    if person is None:
        # The LMS's id of this student is unknown until they launch from the LMS once.
        row.status, row.last_error = FORWARD_FAILED, "the student has never launched from this LMS"
    session.add(row)
    session.flush()
    return row.id


class DeliveryError(Exception):
    """The LMS did not take the score; the message says why (kept for the admin)."""


@dataclass
class _Token:
    value: str
    expires_at: float


class ServiceTokens:
    """The LMS service tokens the gateway holds, per platform and scope, reused until shortly
    before they expire (pylti1p3's per-object cache ignores expiry, LTI-NOTES.md). One per
    application; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[tuple[int, str], _Token] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, http: Any, keyring: KeyRing, platform: LmsPlatform,
            scope: str, now: dt.datetime) -> str:
        """A token for ``scope`` from the platform's token endpoint (RFC 7523 client assertion)."""
        with self._lock:
            held = self._tokens.get((platform.id, scope))
        if held is not None and held.expires_at - 30 > self.clock():
            return held.value
        iat = int(now.replace(tzinfo=dt.timezone.utc).timestamp())
        assertion = keyring.sign(session, {
            "iss": platform.client_id, "sub": platform.client_id, "aud": platform.token_url,
            "iat": iat, "exp": iat + 300, "jti": secrets.token_urlsafe(18)}, now)
        try:
            response = http.post(platform.token_url, timeout=TIMEOUT_SECONDS, data={
                "grant_type": "client_credentials", "client_assertion_type": v.CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion, "scope": scope})
        except OSError as error:
            raise DeliveryError(f"the LMS token endpoint could not be reached: {error}") from error
        if response.status_code != 200:
            raise DeliveryError(f"the LMS token endpoint answered {response.status_code}")
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise DeliveryError("the LMS token endpoint sent no access_token")
        lifetime = body.get("expires_in") if isinstance(body.get("expires_in"), int) else 300
        with self._lock:
            self._tokens[(platform.id, scope)] = _Token(token, self.clock() + lifetime)
        return token


def scores_url(lineitem_url: str) -> str:
    """The scores endpoint of a line item: ``/scores`` appended to its path (AGS 2.0 §3.4)."""
    parts = urlsplit(lineitem_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


@dataclass
class Outgoing:
    """A queued score with what sending it needs, read in one (read) transaction; and, once
    tried, what became of it."""

    forward_id: int
    platform: LmsPlatform
    lms_ags: dict[str, Any]
    lms_link_id: str
    score: dict[str, Any]
    lineitem: str | None = None
    error: str | None = None


def _post(http: Any, url: str, what: str, **kwargs: Any) -> Any:
    try:
        return http.post(url, timeout=TIMEOUT_SECONDS, **kwargs)
    except OSError as error:
        raise DeliveryError(f"the LMS {what} could not be reached: {error}") from error


def _lineitem(http: Any, token: str, out: Outgoing) -> str:
    """The LMS line item of the link: the one its launch named, else one the gateway makes in the
    LMS's container for the link (AGS 2.0 §3.2.5), remembered when the outcome is recorded."""
    if isinstance(out.lms_ags.get("lineitem"), str):
        return out.lms_ags["lineitem"]
    if not isinstance(out.lms_ags.get("lineitems"), str):
        raise DeliveryError("the LMS offered no grade service on this link")
    response = _post(http, out.lms_ags["lineitems"], "line items", json={
        "label": "Score", "scoreMaximum": out.score.get("scoreMaximum") or 100,
        "resourceLinkId": out.lms_link_id}, headers={
        "Authorization": f"Bearer {token}", "Content-Type": v.AGS_LINEITEM})
    if response.status_code not in (200, 201):
        raise DeliveryError(f"the LMS refused to create a line item ({response.status_code})")
    made = response.json().get("id")
    if not isinstance(made, str):
        raise DeliveryError("the LMS's new line item has no id")
    return made


def attempt(session: Session, http: Any, keyring: KeyRing, tokens: ServiceTokens,
            out: Outgoing, now: dt.datetime) -> Outgoing:
    """Send one score (``session`` only reads: the signing key); the outcome is set on ``out``."""
    try:
        scope = " ".join((v.SCOPE_SCORE, v.SCOPE_LINEITEM))
        token = tokens.get(session, http, keyring, out.platform, scope, now)
        out.lineitem = _lineitem(http, token, out)
        response = _post(http, scores_url(out.lineitem), "scores endpoint", json=out.score,
                         headers={"Authorization": f"Bearer {token}",
                                  "Content-Type": v.AGS_SCORE})
        if response.status_code not in (200, 201, 202, 204):
            raise DeliveryError(f"the LMS scores endpoint answered {response.status_code}")
    except (DeliveryError, ValueError) as error:
        out.error = str(error)[:1000]
    return out


def retry_waits(first_wait: int = FIRST_WAIT_SECONDS) -> list[int]:
    """The seconds waited before each retry (the 2nd to the :data:`MAX_ATTEMPTS`-th attempt):
    doubling from ``first_wait``, at most :data:`MAX_WAIT_SECONDS`. The same schedule whether
    ``retry-grades`` or the job queue does the waiting."""
    return [min(first_wait * 2 ** n, MAX_WAIT_SECONDS) for n in range(MAX_ATTEMPTS - 1)]


def record_outcome(session: Session, out: Outgoing, now: dt.datetime,
                   first_wait: int = FIRST_WAIT_SECONDS) -> bool:
    """Store what became of an attempt: sent (and a ledger entry), or the error and the next
    attempt's time (:func:`retry_waits`), or given up after :data:`MAX_ATTEMPTS`."""
    row = session.get(LmsGradeForward, out.forward_id)
    if row is None or row.status != FORWARD_PENDING:
        return False
    row.attempts += 1
    if out.error is not None:
        row.last_error = out.error
        if row.attempts >= MAX_ATTEMPTS:
            row.status = FORWARD_FAILED
        else:
            wait = retry_waits(first_wait)[row.attempts - 1]
            row.next_attempt_at = now + dt.timedelta(seconds=wait)
        session.flush()
        return False
    row.status, row.sent_at, row.last_error = FORWARD_SENT, now, None
    link = session.get(LmsLink, (row.platform_id, row.lms_link_id))
    if link is not None and out.lineitem and (link.lms_ags or {}).get("lineitem") != out.lineitem:
        link.lms_ags = {**(link.lms_ags or {}), "lineitem": out.lineitem}
    record_disclosure(session, app_id=row.app_id, district_id=out.platform.district_id,
                      channel="lms", endpoint="grade_forward", entity="result",
                      fields=sorted(k for k in row.score if k != "userId"),
                      users=[row.student_sourced_id], record_count=1, now=now)
    session.flush()
    return True


def forward_due(database: Any, http: Any, keyring: KeyRing, tokens: ServiceTokens,
                clock: Callable[[], dt.datetime], ids: list[int] | None = None, *,
                first_wait: int = FIRST_WAIT_SECONDS, on_queue: bool = False) -> tuple[int, int]:
    """Send the queued scores that are due (only ``ids``, when given): read them, talk to the
    LMSs with no write transaction open (an LMS may take seconds; SQLite has one writer), then
    record every outcome in one write. Returns (sent, failed). ``on_queue``: the job queue keeps
    the time of the next attempt, so ``ids`` are sent if still pending, whatever the row's
    ``next_attempt_at`` (hosts' clocks may differ by a second or two)."""
    with database.session_scope() as session:
        outgoing = []
        for row in due_forwards(session, None if on_queue else clock(), ids):
            platform = session.get(LmsPlatform, row.platform_id)
            link = session.get(LmsLink, (row.platform_id, row.lms_link_id))
            if platform is None or link is None:
                outgoing.append(Outgoing(row.id, platform, {}, row.lms_link_id, dict(row.score),
                                         error="the LMS or its link is no longer registered"))
                continue
            session.expunge(platform)
            outgoing.append(Outgoing(row.id, platform, dict(link.lms_ags or {}), row.lms_link_id,
                                     dict(row.score)))
        for out in outgoing:
            if out.error is None:
                attempt(session, http, keyring, tokens, out, clock())
    sent = failed = 0
    with database.session_scope(write=True) as session:
        for out in outgoing:
            if record_outcome(session, out, clock(), first_wait):
                sent += 1
            else:
                failed += 1
    return sent, failed


def due_forwards(session: Session, now: dt.datetime | None, ids: list[int] | None = None,
                 limit: int = 500) -> list[LmsGradeForward]:
    """Queued scores whose next attempt is due (only ``ids``, when given; every pending one when
    ``now`` is None)."""
    query = select(LmsGradeForward).where(LmsGradeForward.status == FORWARD_PENDING)
    if now is not None:
        query = query.where(LmsGradeForward.next_attempt_at <= now)
    if ids is not None:
        query = query.where(LmsGradeForward.id.in_(ids))
    return list(session.execute(query.order_by(LmsGradeForward.id).limit(limit)).scalars())


def list_forwards(session: Session, *, failed_only: bool = False) -> list[dict[str, Any]]:
    """The queued, sent and failed scores (or only the failed and still retrying ones)."""
    query = select(LmsGradeForward).order_by(LmsGradeForward.id)
    if failed_only:
        query = query.where((LmsGradeForward.status == FORWARD_FAILED)
                            | (LmsGradeForward.last_error.is_not(None)
                               & (LmsGradeForward.status == FORWARD_PENDING)))
    return [{"id": r.id, "platform": r.platform_id, "lms_link": r.lms_link_id,
             "student": r.student_sourced_id, "status": r.status, "attempts": r.attempts,
             "next_attempt_at": r.next_attempt_at.isoformat(), "last_error": r.last_error,
             "score": r.score} for r in session.execute(query).scalars()]


def retry_forward(session: Session, forward_id: int, now: dt.datetime) -> None:
    """Put a given-up score back in the queue, due now (after the admin fixed the cause)."""
    row = session.get(LmsGradeForward, forward_id)
    if row is None:
        raise UsageError(f"no grade forward {forward_id}")
    if not row.score.get("userId"):
        # Learnt since, when the student launched from the LMS.
        person = session.execute(select(LmsPerson.lms_user_id).where(
            LmsPerson.platform_id == row.platform_id,
            LmsPerson.user_sourced_id == row.student_sourced_id)).scalars().first()
        if person is None:
            raise UsageError(f"student {row.student_sourced_id} has still never launched from "
                             "this LMS: their LMS id is unknown")
        row.score = {**row.score, "userId": person}
    row.status, row.attempts, row.next_attempt_at = FORWARD_PENDING, 0, now
    session.flush()
