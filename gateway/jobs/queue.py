"""The jobs on RQ: queues in Redis, ``gateway worker`` processes that run them, and the listing
``gateway jobs`` prints. No web framework here.

Why RQ: it needs Redis only (which a multi-host gateway runs already for its rate limits), it is
small enough to read, and its worker forks a *work horse* per job, so the memory an import of a
large district takes is returned when the job ends, and a horse killed by the kernel takes no
worker with it. Its registries list started, failed and finished jobs, and find jobs whose worker
died (a started job whose heartbeat stopped is retried or failed when any process reads the list).

Everything is kept under queue names that start with ``GATEWAY_REDIS_KEY_PREFIX``, so gateways (or
test runs) sharing a Redis keep their jobs apart. Jobs are stored as JSON (RQ's JSON serializer),
never pickles, so a job's data is data; Redis must still be reachable by the gateway's hosts
only, since a job names the function a worker calls.
"""
from __future__ import annotations

import datetime as dt
import os
import resource
import socket
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import orjson

from gateway.jobs import QUEUES, JobContext, get_kind, run_job
from gateway.store import Database

RESULT_TTL_SECONDS = 7 * 86400
"""How long a finished job (and its result) stays listed."""
FAILURE_TTL_SECONDS = 30 * 86400
"""How long a failed job stays listed, with its reason."""
PROGRESS_EVERY_SECONDS = 0.5
"""At most this often a job's progress is written to Redis."""
STATES = ("queued", "started", "failed", "finished", "scheduled")
"""The states ``gateway jobs`` lists, in that order."""


def connect_queue_redis(url: str) -> Any:
    """A Redis client for the queues: without the short read timeout of the rate limits' client
    (:func:`gateway.redis_client.connect_redis`), since a worker waits for work in a blocking
    read."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=5)


def _queue(redis: Any, prefix: str, name: str) -> Any:
    from rq import Queue
    from rq.serializers import JSONSerializer

    return Queue(prefix + name, connection=redis, serializer=JSONSerializer)


# ------------------------------------------------------------------------------ enqueueing

def enqueue_job(redis: Any, prefix: str, kind_name: str, params: Mapping[str, Any], *,
                default_timeout: int, retry_intervals: Sequence[int] | None = None) -> str:
    """Queue a job of ``kind_name`` with ``params``; its id. ``retry_intervals`` replaces the
    kind's waits between retries (settings of the queuing host, e.g.
    ``GATEWAY_LMS_GRADE_FIRST_WAIT_SECONDS``)."""
    from rq import Retry

    kind = get_kind(kind_name)
    intervals = list(kind.retry_intervals if retry_intervals is None else retry_intervals)
    job = _queue(redis, prefix, kind.queue).enqueue(
        perform, kind.name, dict(params),
        job_timeout=kind.timeout_seconds or default_timeout,
        retry=Retry(max=kind.retries, interval=intervals or 0) if kind.retries else None,
        result_ttl=RESULT_TTL_SECONDS, failure_ttl=FAILURE_TTL_SECONDS,
        description=kind.describe(params),
        meta={"kind": kind.name, "queued_on": socket.gethostname()})
    return job.id


# ---------------------------------------------------------------------------------- running

@dataclass(frozen=True)
class WorkerSetup:
    """What a worker's jobs run with: the worker's settings and instance folder."""

    settings: Mapping[str, Any]
    instance_path: str


_setup: WorkerSetup | None = None


def _attempts_key(prefix: str, job_id: str) -> str:
    # A key of the gateway's own, not the job's meta: RQ saves the worker's copy of the job when
    # it requeues one whose horse died, and that copy predates what the horse wrote.
    return f"{prefix}jobs:{job_id}"


def perform(kind_name: str, params: dict[str, Any]) -> dict[str, Any]:
    """What RQ calls in the work horse: run the job with a store of its own (the horse is a fresh
    fork; connections are never shared across a fork), its progress in its meta, its attempts
    and notes in a key that outlives a requeue."""
    from rq import get_current_job

    if _setup is None:
        raise RuntimeError("gateway jobs run in `gateway worker` processes")
    job = get_current_job()
    redis = job.connection
    key = _attempts_key(str(_setup.settings["REDIS_KEY_PREFIX"]), job.id)
    attempts = redis.hincrby(key, "attempts", 1)
    redis.expire(key, FAILURE_TTL_SECONDS)
    notes = orjson.loads(redis.hget(key, "notes") or b"{}")
    last_saved = [0.0]

    def progress(done: int, total: int) -> None:
        job.meta["progress"] = {"done": done, "total": total}
        now = time.monotonic()
        if now - last_saved[0] >= PROGRESS_EVERY_SECONDS or done >= total:
            last_saved[0] = now
            job.save_meta()

    def save_notes(noted: dict[str, Any]) -> None:
        redis.hset(key, "notes", orjson.dumps(noted))

    job.meta.update({"host": socket.gethostname(), "pid": os.getpid(), "attempts": attempts,
                     "progress": None})
    job.save_meta()
    settings = _setup.settings
    database = Database(settings["DATABASE_URL"], settings["STORE_WRITE_WAIT_SECONDS"])
    try:
        context = JobContext(database, settings, _setup.instance_path, progress=progress,
                             notes=notes, save_notes=save_notes)
        return run_job(kind_name, params, context)
    except Exception as error:
        # RQ records no result for an attempt it retries: the reason a retry waits is kept here.
        redis.hset(key, "last_error", f"{type(error).__name__}: {error}"[:2000])
        raise
    finally:
        database.dispose()
        # The horse's peak resident memory (Linux: KiB), for listings and capacity planning.
        job.meta["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        job.save_meta()


def job_notes(redis: Any, prefix: str, job_id: str) -> tuple[int, dict[str, Any]]:
    """How many attempts job ``job_id`` has started, and what they noted."""
    attempts, notes = redis.hmget(_attempts_key(prefix, job_id), "attempts", "notes")
    return int(attempts or 0), orjson.loads(notes or b"{}")


def last_error(redis: Any, prefix: str, job_id: str) -> str | None:
    """Why the latest failed attempt of job ``job_id`` failed (its exception), if one did."""
    raw = redis.hget(_attempts_key(prefix, job_id), "last_error")
    return raw.decode() if raw else None


def run_worker(redis: Any, prefix: str, settings: Mapping[str, Any], instance_path: str,
               queues: Sequence[str] = QUEUES, *, burst: bool = False,
               name: str | None = None) -> bool:
    """Work the ``queues`` (in priority order) until stopped (SIGTERM/SIGINT: the job at hand
    is finished first; a second signal kills it), or with ``burst`` until they are empty. One
    worker of those serving a queue also runs RQ's scheduler (a process of its own, holding a
    lock in Redis), which queues the retries that wait (a grade the LMS refused) when due."""
    global _setup
    from rq import Worker
    from rq.serializers import JSONSerializer

    class PromptWorker(Worker):
        """RQ's worker, listening for its commands (stop a job, shut down) in one-second waits
        instead of RQ 3's minute: stopping a worker otherwise waits out that minute at times
        (the listening thread is still in its wait when the worker closes its connection)."""

        def subscribe(self) -> None:
            self.pubsub = self.connection.pubsub()
            self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
            self.pubsub_thread = self.pubsub.run_in_thread(
                sleep_time=1, daemon=True, exception_handler=self._pubsub_exception_handler)

    _setup = WorkerSetup(dict(settings), instance_path)
    worker = PromptWorker([_queue(redis, prefix, queue) for queue in queues], connection=redis,
                    serializer=JSONSerializer, name=name,
                    default_result_ttl=RESULT_TTL_SECONDS)
    return worker.work(burst=burst, logging_level="INFO", with_scheduler=True)


# ---------------------------------------------------------------------------------- listing

def _iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds") + "Z"


def describe_job(job: Any, state: str | None = None, attempts: int | None = None,
                 failure: str | None = None) -> dict[str, Any]:
    """A job as ``gateway jobs --json`` prints it (``attempts``: see :func:`job_notes`;
    ``failure``: :func:`last_error`, the reason a scheduled retry waits)."""
    meta = job.meta or {}
    status = state or str(job.get_status(refresh=False) or "")
    described: dict[str, Any] = {
        "id": job.id, "kind": meta.get("kind"), "description": job.description,
        "queue": job.origin, "status": getattr(status, "value", status),
        "enqueued_at": _iso(job.enqueued_at), "started_at": _iso(job.started_at),
        "ended_at": _iso(job.ended_at), "progress": meta.get("progress"),
        "attempts": meta.get("attempts", 0) if attempts is None else attempts,
        "retries_left": job.retries_left,
        "host": meta.get("host"), "pid": meta.get("pid"),
        "peak_memory_mb": round(meta["peak_rss_kb"] / 1024) if meta.get("peak_rss_kb") else None,
        "reason": None, "result": None}
    if described["status"] == "scheduled":
        # A retry waiting: the reason is the failure of the attempt before.
        described["reason"] = failure
    elif described["status"] == "failed":
        result = job.latest_result()
        text = (result.exc_string if result is not None else None) or ""
        # The reason is the exception's last line (the traceback stays in Redis for a look).
        lines = [line for line in text.strip().splitlines() if line.strip()]
        described["reason"] = lines[-1] if lines else None
    elif described["status"] == "finished":
        described["result"] = job.return_value()
    return described


def list_jobs(redis: Any, prefix: str, queues: Iterable[str] = QUEUES,
              finished_limit: int = 20) -> list[dict[str, Any]]:
    """The jobs of ``queues``: queued, started (with progress), scheduled for a retry, failed
    (with the reason) and the latest ``finished_limit`` finished of each queue. Reading the
    started list also fails or retries the jobs whose worker died (RQ's registry cleanup)."""
    from rq.job import Job

    order = {state: rank for rank, state in enumerate(STATES)}
    listed: list[dict[str, Any]] = []
    for name in queues:
        queue = _queue(redis, prefix, name)
        in_queue: list[dict[str, Any]] = []
        # The started list first: reading it requeues or fails the abandoned jobs, which the
        # other lists then show where they went.
        started = queue.started_job_registry.get_job_ids()
        by_state = {
            "queued": queue.get_job_ids(),
            "started": started,
            "scheduled": queue.scheduled_job_registry.get_job_ids(),
            "failed": queue.failed_job_registry.get_job_ids(desc=True),
            "finished": queue.finished_job_registry.get_job_ids(0, finished_limit - 1, desc=True),
        }
        # The lists are read one after another while workers move jobs between them, so a
        # job can be in two of them (e.g. a retry leaving "scheduled" for "started"): list it
        # once, in the state its own record holds, read after all the lists.
        states_of: dict[str, list[str]] = {}
        for state in STATES:
            # A started registry's entries are "job id:execution id".
            for entry in by_state[state]:
                states_of.setdefault(entry.split(":", 1)[0], []).append(state)
        ids = list(states_of)
        for job in Job.fetch_many(ids, connection=redis, serializer=queue.serializer):
            if job is None:
                continue
            state = _listed_state(job, states_of[job.id])
            attempts, _notes = job_notes(redis, prefix, job.id)
            failure = last_error(redis, prefix, job.id) if state == "scheduled" else None
            described = describe_job(job, state, attempts, failure)
            described["queue"] = name
            in_queue.append(described)
        # Stable: within a state, its list's own order (failed and finished newest first).
        listed.extend(sorted(in_queue, key=lambda described: order[described["status"]]))
    return listed


def _listed_state(job: Any, found_in: list[str]) -> str:
    """The state to list ``job`` in: the one list it was found in, or, when a move between
    lists was caught halfway, the status its record holds now (if that is a listed state)."""
    if len(found_in) == 1:
        return found_in[0]
    current = job.get_status(refresh=False)
    current = str(getattr(current, "value", current) or "")
    return current if current in STATES else found_in[-1]


class JobFailed(Exception):
    """A job failed for good (no retry left); the message is the reason."""


def wait_for_job(redis: Any, job_id: str, progress: Any = None,
                 poll_seconds: float = 0.2) -> dict[str, Any]:
    """Wait until job ``job_id`` has finished and return its result, calling ``progress(done,
    total)`` as its progress changes; :class:`JobFailed` when it failed for good (a job that
    will be retried is waited for through its retries)."""
    from rq.exceptions import NoSuchJobError

    shown = None
    while True:
        try:
            job = fetch_job(redis, job_id)
        except NoSuchJobError:
            raise JobFailed("the job is no longer in Redis (removed, or Redis lost it)") from None
        status = str(getattr(job.get_status(), "value", job.get_status()))
        reported = (job.meta or {}).get("progress")
        if progress is not None and reported and reported != shown:
            shown = reported
            progress(reported["done"], reported["total"])
        if status == "finished":
            return job.return_value()
        if status in ("failed", "stopped", "canceled"):
            raise JobFailed(describe_job(job, "failed")["reason"] or status)
        time.sleep(poll_seconds)


def fetch_job(redis: Any, job_id: str) -> Any:
    """The job ``job_id`` (fresh from Redis)."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    return Job.fetch(job_id, connection=redis, serializer=JSONSerializer)


def queue_depths(redis: Any, prefix: str, queues: Iterable[str] = QUEUES) -> dict[tuple[str, str], int]:
    """How many jobs each queue holds in each state: ``(queue, state) -> count`` (finished:
    those still kept). Counts only: no job is read."""
    depths: dict[tuple[str, str], int] = {}
    for name in queues:
        queue = _queue(redis, prefix, name)
        depths[(name, "queued")] = queue.count
        depths[(name, "started")] = queue.started_job_registry.count
        depths[(name, "scheduled")] = queue.scheduled_job_registry.count
        depths[(name, "failed")] = queue.failed_job_registry.count
        depths[(name, "finished")] = queue.finished_job_registry.count
    return depths


def job_queue_families(prefix: str, _database: Any, redis: Any) -> list[Any]:
    """``gateway_job_queue_depth{queue,state}`` for ``/metrics`` (a
    :data:`gateway.metrics.ScrapeSource`, ``prefix`` bound first); nothing in embedded mode or
    while Redis does not answer."""
    from prometheus_client.core import GaugeMetricFamily
    from redis.exceptions import RedisError

    if redis is None:
        return []
    try:
        depths = queue_depths(redis, prefix)
    except (RedisError, OSError):
        return []
    family = GaugeMetricFamily("gateway_job_queue_depth", "Jobs in each job queue, by state "
                               "(finished: those still listed).", labels=["queue", "state"])
    for (queue, state), count in sorted(depths.items()):
        family.add_metric([queue, state], count)
    return [family]
