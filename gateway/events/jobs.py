"""Deliveries as jobs, and starting them once an import (or a policy change) has committed.

With Redis (``GATEWAY_REDIS_URL``) a change queues a ``webhooks`` job for its district: a worker
delivers, and the queue retries the job with the webhooks' backoff while a delivery fails. Without
Redis the deliveries run in a thread of the process that made the change, after its commit (the
import never waits on a receiver); a failure is retried by ``gateway webhooks deliver``. Either
way the job also prunes events older than ``GATEWAY_EVENTS_RETENTION_DAYS``.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Mapping

from gateway.events.feed import prune_events
from gateway.events.webhooks import MAX_WAIT_SECONDS, deliver_due, due_webhooks
from gateway.jobs import JobContext, JobKind, register_kind
from gateway.store import Database
from gateway.store.models import utcnow

logger = logging.getLogger("gateway.webhooks")

KIND = "webhooks"


class DeliveryFailed(Exception):
    """Some webhook of the job could not be delivered to: the queue tries the job again."""


def prune_old_events(database: Database, settings: Mapping[str, Any],
                     now: dt.datetime | None = None) -> int:
    """Remove the events older than the retention (``EVENTS_RETENTION_DAYS``); how many."""
    days = int(settings.get("EVENTS_RETENTION_DAYS") or 90)
    with database.session_scope(write=True) as session:
        return prune_events(session, (now or utcnow()) - dt.timedelta(days=days))


def webhooks_job(context: JobContext, params: Mapping[str, Any]) -> dict[str, Any]:
    """Deliver the due webhooks of a district (``district_id``; all districts without), prune old
    events, and raise :class:`DeliveryFailed` (the queue retries) if a delivery failed."""
    import requests

    settings = context.settings
    with requests.Session() as http:
        results = deliver_due(context.database, secret_key=settings["SECRET_KEY"], post=http.post,
                              settings=settings, district_id=params.get("district_id"),
                              force=bool(params.get("force")))
    pruned = prune_old_events(context.database, settings)
    failed = [r for r in results if r.error]
    if failed:
        raise DeliveryFailed("; ".join(f"webhook {r.webhook_id}: {r.error}" for r in failed))
    return {"delivered": sum(r.events for r in results), "webhooks": len(results),
            "pruned": pruned}


def retry_waits(first_wait: int, attempts: int = 10) -> list[int]:
    """The queue's waits between a failed job's retries: the webhooks' own backoff."""
    return [min(first_wait * 2 ** i, MAX_WAIT_SECONDS) for i in range(attempts)]


register_kind(JobKind(KIND, webhooks_job, retries=10, retry_intervals=tuple(retry_waits(10)),
                      describe=lambda params: "deliver webhooks"
                      + (f" of district {params['district_id']}" if params.get("district_id")
                         else "")))


def start_deliveries(database: Database, settings: Mapping[str, Any],
                     district_id: int | None = None) -> threading.Thread | str | None:
    """Start delivering a district's events now that the change is committed: a ``webhooks``
    job with Redis (its id), else a thread of this process (returned, so a caller may wait for
    it; it is not a daemon, so a command that ends waits for its deliveries). Nothing (None)
    when the district has no webhook."""
    params = {"district_id": district_id} if district_id is not None else {}
    with database.session_scope() as session:
        if not due_webhooks(session, utcnow(), district_id, force=True):
            return None  # nobody to deliver to: no job, no thread
    if settings.get("REDIS_URL"):
        from gateway.jobs.queue import connect_queue_redis, enqueue_job

        redis = connect_queue_redis(settings["REDIS_URL"])
        try:
            return enqueue_job(redis, settings["REDIS_KEY_PREFIX"], KIND, params,
                               default_timeout=settings["JOB_TIMEOUT_SECONDS"],
                               retry_intervals=retry_waits(int(settings["WEBHOOK_FIRST_WAIT_SECONDS"])))
        finally:
            redis.close()

    def run() -> None:
        try:
            webhooks_job(JobContext(database, settings, ""), params)
        except DeliveryFailed as error:
            logger.warning("%s; `gateway webhooks deliver` tries again when due", error)
        except Exception:  # noqa: BLE001 -- nobody waits on this thread: log it
            logger.exception("delivering webhooks failed")

    thread = threading.Thread(target=run, name="gateway-webhooks")
    thread.start()
    return thread
