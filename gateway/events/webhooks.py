"""Webhooks: an app's URL that receives its change feed, signed, retried, replayable.

**A delivery** is ``POST URL`` with a JSON body ``{"app", "district", "events": [...], "next",
"more"}`` (the events and cursor exactly as ``GET /events`` pages them, at most
``BATCH_SIZE`` per request) and the header::

    X-Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

**Verifying it** (the receiver): take ``t`` and ``v1`` from the header; compute the HMAC-SHA256
of the bytes ``t`` + ``"."`` + the raw request body under the webhook's secret; compare it with
``v1`` in constant time; refuse the request when ``t`` is more than ``SIGNATURE_TOLERANCE_SECONDS``
(5 minutes) from the receiver's clock (a captured delivery replayed later fails), and treat an
event whose ``cursor`` it has already processed as a repeat (deliveries are at least once).
:func:`verify_signature` is that recipe.

**Retries**: any answer other than 2xx (or no answer within the timeout) is a failure; the
webhook keeps its cursor, and the next attempt waits ``WEBHOOK_FIRST_WAIT_SECONDS`` doubled
per consecutive failure (at most an hour). With Redis the ``webhooks`` job is retried by the
queue on the same schedule; without, ``gateway webhooks deliver`` sends what is due.

Secrets are 32 random bytes (shown once, as ``whsec_`` + URL-safe base64), kept sealed with
AES-256-GCM under a key derived from ``GATEWAY_SECRET_KEY`` and bound to the app, district and URL.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.events.feed import CursorExpired, read_events
from gateway.sharing import visibility_for
from gateway.store import Database
from gateway.store.apps import granted_scopes
from gateway.store.events import Webhook, head_of
from gateway.store.models import District, utcnow

logger = logging.getLogger("gateway.webhooks")

SIGNATURE_HEADER = "X-Gateway-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
"""How far a delivery's timestamp may be from the receiver's clock (the recipe above)."""
BATCH_SIZE = 500
MAX_WAIT_SECONDS = 3600
_HKDF_INFO = b"k12-gateway/webhooks/secrets/v1"
_NONCE = 12


class WebhookError(UsageError):
    """A webhook command was given something it cannot use."""


# ------------------------------------------------------------------------------ secrets, signing

def _key(secret_key: str | bytes) -> bytes:
    raw = secret_key.encode("utf-8") if isinstance(secret_key, str) else bytes(secret_key)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(raw)


def _bound(app_id: int, district_id: int, url: str) -> bytes:
    return f"{app_id}\x1f{district_id}\x1f{url}".encode("utf-8")


def seal_secret(secret_key: str | bytes, app_id: int, district_id: int, url: str,
                secret: str) -> bytes:
    """``nonce || AES-GCM(secret)``, bound to the webhook's app, district and URL."""
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(_key(secret_key)).encrypt(nonce, secret.encode("utf-8"),
                                                    _bound(app_id, district_id, url))


def open_secret(secret_key: str | bytes, hook: Webhook) -> str:
    """The webhook's signing secret (:class:`WebhookError` under another GATEWAY_SECRET_KEY)."""
    sealed = bytes(hook.sealed_secret)
    try:
        return AESGCM(_key(secret_key)).decrypt(
            sealed[:_NONCE], sealed[_NONCE:], _bound(hook.app_id, hook.district_id, hook.url)
        ).decode("utf-8")
    except InvalidTag as error:
        raise WebhookError(f"webhook {hook.id}'s secret cannot be read with this "
                           "GATEWAY_SECRET_KEY: remove it and add it again") from error


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body,
                   hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, now: float,
                     tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """The receiver's check: the header's MAC is the body's under ``secret`` and its timestamp
    is within ``tolerance`` seconds of ``now``."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature_header(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# ---------------------------------------------------------------------------- registrations

@dataclass(frozen=True)
class AddedWebhook:
    """A new webhook and its secret (shown this once)."""

    id: int
    app_id: int
    district: str
    url: str
    secret: str
    cursor: int


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WebhookError(f"{url!r} is not an http(s) URL")


def add_webhook(session: Session, *, app_id: int, district_id: int, url: str,
                secret_key: str | bytes, now: dt.datetime) -> AddedWebhook:
    """Register ``url`` for the app's events in the district, from the next event on; returns
    it with its new secret."""
    _check_url(url)
    secret = "whsec_" + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    head, _ = head_of(session, district_id)
    hook = Webhook(app_id=app_id, district_id=district_id, url=url, cursor=head, failures=0,
                   sealed_secret=seal_secret(secret_key, app_id, district_id, url, secret),
                   created_at=now)
    session.add(hook)
    session.flush()
    district = session.get(District, district_id)
    return AddedWebhook(hook.id, app_id, district.sourced_id, url, secret, head)


def list_webhooks(session: Session, app_id: int | None = None) -> list[Webhook]:
    """Every webhook (of one app), by id."""
    query = select(Webhook).order_by(Webhook.id)
    if app_id is not None:
        query = query.where(Webhook.app_id == app_id)
    return list(session.execute(query).scalars())


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    """The webhook ``webhook_id`` (:class:`WebhookError` if there is none)."""
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise WebhookError(f"no webhook {webhook_id}")
    return hook


def remove_webhook(session: Session, webhook_id: int) -> None:
    """Stop delivering to the webhook and forget it (its secret with it)."""
    session.delete(get_webhook(session, webhook_id))
    session.flush()


def replay_webhook(session: Session, hook: Webhook, from_cursor: int) -> None:
    """Deliver again every event after ``from_cursor``, at once (backoff reset); refused with
    :class:`CursorExpired` for a cursor older than the events kept."""
    head, pruned = head_of(session, hook.district_id)
    if from_cursor < pruned:
        raise CursorExpired(f"cursor {from_cursor} has expired: events up to {pruned} were pruned")
    if from_cursor > head:
        raise WebhookError(f"cursor {from_cursor} is past the district's last event ({head})")
    hook.cursor = from_cursor
    hook.failures = 0
    hook.next_attempt_at = None
    hook.last_error = None
    session.flush()


# --------------------------------------------------------------------------------- delivery

def backoff_seconds(failures: int, first_wait: int) -> int:
    """How long to wait after the ``failures``-th consecutive failure: doubling, at most an hour."""
    return min(first_wait * 2 ** max(failures - 1, 0), MAX_WAIT_SECONDS)


@dataclass
class DeliveryResult:
    """What one webhook's delivery run did: requests accepted, events sent, and the error of the
    attempt that failed (None: it caught up)."""

    webhook_id: int
    batches: int = 0
    events: int = 0
    error: str | None = None


Post = Callable[..., Any]
"""``post(url, data=bytes, headers=dict, timeout=seconds)`` returning an object with
``status_code`` (a ``requests.Session().post``)."""


def deliver_webhook(database: Database, webhook_id: int, *, secret_key: str | bytes, post: Post,
                    settings: Mapping[str, Any], clock: Callable[[], dt.datetime] = utcnow
                    ) -> DeliveryResult:
    """Send the webhook every event its app may see after its cursor, a batch per request,
    until it has caught up or a request fails (then its backoff is set and the error returned).

    Each batch's disclosures are committed to the ledger before the batch is sent; the cursor
    moves in a transaction of its own once the receiver has answered 2xx, so an event is sent
    at least once and a crash between the two resends it."""
    result = DeliveryResult(webhook_id)
    timeout = float(settings.get("WEBHOOK_TIMEOUT_SECONDS", 10))
    first_wait = int(settings.get("WEBHOOK_FIRST_WAIT_SECONDS", 10))
    # Held while this run sends, renewed with each batch: a longer wait than one batch can take.
    lease = dt.timedelta(seconds=3 * timeout + 5)
    if not _claim(database, webhook_id, lease):
        return result
    try:
        return _deliver_claimed(database, webhook_id, result, secret_key=secret_key, post=post,
                                clock=clock, timeout=timeout, first_wait=first_wait, lease=lease)
    finally:
        with database.session_scope(write=True) as session:
            session.execute(update(Webhook).where(Webhook.id == webhook_id)
                            .values(lease_until=None))


def _claim(database: Database, webhook_id: int, lease: dt.timedelta) -> bool:
    """Take the webhook's delivery lease, waiting (up to a lease's length) while another run
    holds it: that run may have read the events before the ones this run was started for, so
    this one must still run after it. False when the webhook is gone or the lease stayed held
    (its holder is alive and delivering; a dead holder's lease lapses for the next run). On
    the wall clock, never a caller's: leases are about runs that overlap in real time."""
    deadline = time.monotonic() + lease.total_seconds()
    while True:
        now = utcnow()
        with database.session_scope(write=True) as session:
            claimed = session.execute(
                update(Webhook).where(Webhook.id == webhook_id,
                                      (Webhook.lease_until.is_(None))
                                      | (Webhook.lease_until < now))
                .values(lease_until=now + lease)).rowcount
            gone = not claimed and session.get(Webhook, webhook_id) is None
        if claimed:
            return True
        if gone:
            return False
        if time.monotonic() >= deadline:
            logger.info("webhook %s: another delivery run holds it; leaving it that run",
                        webhook_id)
            return False
        time.sleep(0.05)


def _deliver_claimed(database: Database, webhook_id: int, result: DeliveryResult, *,
                     secret_key: str | bytes, post: Post, clock: Callable[[], dt.datetime],
                     timeout: float, first_wait: int, lease: dt.timedelta) -> DeliveryResult:
    # deliver_webhook's batches, under the lease it holds.
    while True:
        with database.session_scope() as session:
            hook = session.get(Webhook, webhook_id)
            if hook is None:
                return result
            visibility = visibility_for(session, app_id=hook.app_id, district_id=hook.district_id,
                                        secret_key=secret_key, clock=clock, deferred_ledger=True)
            cursor, url = hook.cursor, hook.url
            page = read_events(session, visibility,
                               scopes=granted_scopes(session, hook.app_id, hook.district_id),
                               after=cursor, limit=BATCH_SIZE, endpoint=f"webhook {hook.id}")
            if not page.events:
                break
            district = session.get(District, hook.district_id).sourced_id
            secret = open_secret(secret_key, hook)
            app_id = hook.app_id
            # The disclosures are committed before the batch leaves. In a transaction of their
            # own: on SQLite a read transaction cannot become a write once another delivery
            # has appended meanwhile (as for REST pages, gateway.http.visibility).
            session.commit()
            if visibility.ledger is not None:
                visibility.ledger.flush()
        body = orjson.dumps({"app": app_id, "district": district, **page.to_dict()})
        headers = {"Content-Type": "application/json",
                   SIGNATURE_HEADER: signature_header(secret, int(clock().replace(
                       tzinfo=dt.timezone.utc).timestamp()), body),
                   "X-Gateway-Webhook": str(webhook_id)}
        try:
            response = post(url, data=body, headers=headers, timeout=timeout)
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except Exception as exc:  # noqa: BLE001 -- any transport failure is a failed attempt
            error = f"{type(exc).__name__}: {exc}"[:500]
        # A writer's transaction: on SQLite it waits for the store's write lock from its start.
        with database.session_scope(write=True) as session:
            hook = session.get(Webhook, webhook_id)
            if hook is None:
                return result
            now = clock()
            if error is None:
                # Only forward: a replay committed meanwhile keeps its earlier cursor.
                if hook.cursor == cursor:
                    hook.cursor = page.next_cursor
                hook.failures, hook.next_attempt_at, hook.last_error = 0, None, None
                hook.last_delivered_at = now
                hook.lease_until = utcnow() + lease
                result.batches += 1
                result.events += len(page.events)
            else:
                hook.failures += 1
                hook.next_attempt_at = now + dt.timedelta(
                    seconds=backoff_seconds(hook.failures, first_wait))
                hook.last_error = error
                result.error = error
                logger.warning("webhook %s delivery failed (%s); attempt %s, next at %s",
                               webhook_id, error, hook.failures, hook.next_attempt_at)
                return result
        if not page.more:
            return result
    # Only events the app may not see (or none): nothing to send, skip past them.
    if page.next_cursor != cursor:
        with database.session_scope(write=True) as session:
            hook = session.get(Webhook, webhook_id)
            if hook is not None and hook.cursor == cursor:
                hook.cursor = page.next_cursor
    return result


def due_webhooks(session: Session, now: dt.datetime, district_id: int | None = None,
                 force: bool = False) -> list[int]:
    """Webhooks whose backoff has passed (all of them with ``force``), of one district or all."""
    query = select(Webhook.id).order_by(Webhook.id)
    if not force:
        query = query.where((Webhook.next_attempt_at.is_(None)) | (Webhook.next_attempt_at <= now))
    if district_id is not None:
        query = query.where(Webhook.district_id == district_id)
    return list(session.execute(query).scalars())


def deliver_due(database: Database, *, secret_key: str | bytes, post: Post,
                settings: Mapping[str, Any], clock: Callable[[], dt.datetime] = utcnow,
                district_id: int | None = None, webhook_ids: list[int] | None = None,
                force: bool = False, workers: int | None = None) -> list[DeliveryResult]:
    """Deliver every due webhook (or ``webhook_ids``), ``workers`` at a time (default
    ``WEBHOOK_WORKERS``: one slow receiver must not hold up the others); their results."""
    if webhook_ids is None:
        with database.session_scope() as session:
            webhook_ids = due_webhooks(session, clock(), district_id, force)

    def one(webhook_id: int) -> DeliveryResult:
        return deliver_webhook(database, webhook_id, secret_key=secret_key, post=post,
                               settings=settings, clock=clock)

    workers = workers or int(settings.get("WEBHOOK_WORKERS", 8))
    if workers <= 1 or len(webhook_ids) <= 1:
        return [one(webhook_id) for webhook_id in webhook_ids]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") as pool:
        return list(pool.map(one, webhook_ids))
