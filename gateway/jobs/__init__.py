"""Background jobs: long work (imports, scheduled SIS pulls, scope snapshot rebuilds) described
once, and run either on a queue in Redis by ``gateway worker`` processes on any host, or, in the
embedded default without Redis, in the process that asks for it. No web framework here.

A job is a *kind* (:class:`JobKind`: a name, the queue it goes to, how long it may run, how often
it is retried) and JSON parameters. The kind's function runs with a :class:`JobContext`: the
store, the settings of the process that runs it, and a way to report progress and to leave notes
that a retry of the same job reads (an import notes its run in the history, so that a retry never
applies a bundle twice). Kinds register themselves with :func:`register_kind`; exports and webhook
deliveries, when they exist, are kinds like the others (a module of their own that calls
:func:`register_kind`, imported by :mod:`gateway.jobs.kinds`), and need nothing else here.

The queue is RQ (:mod:`gateway.jobs.queue`): see the README's "Jobs and workers" for why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from gateway.store import Database

IMPORTS_QUEUE = "imports"
"""Imports and SIS pulls: long, memory-hungry, each in a work horse of its own."""
DEFAULT_QUEUE = "default"
"""Shorter work: scope snapshot rebuilds (later exports)."""
QUEUES = (IMPORTS_QUEUE, DEFAULT_QUEUE)
"""Every queue a ``gateway worker`` serves unless told otherwise, in priority order."""

Progress = Callable[[int, int], None]
"""``(done, total)``: how far a job has come, in the kind's own unit (an import: bytes read)."""


class JobContext:
    """What a job's function runs with: the store, the settings of the process running it, and
    where its progress and notes go (the job's record in Redis, or nowhere in-process)."""

    def __init__(self, database: Database, settings: Mapping[str, Any], instance_path: str, *,
                 progress: Progress | None = None,
                 notes: dict[str, Any] | None = None,
                 save_notes: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.database = database
        self.settings = settings
        self.instance_path = instance_path
        self._progress = progress
        self.notes: dict[str, Any] = notes if notes is not None else {}
        self._save_notes = save_notes

    def progress(self, done: int, total: int) -> None:
        """Report how far the job has come."""
        if self._progress is not None:
            self._progress(done, total)

    def note(self, **values: Any) -> None:
        """Keep ``values`` with the job, where a retry of it (after a kill) finds them in
        :attr:`notes`; saved at once."""
        self.notes.update(values)
        if self._save_notes is not None:
            self._save_notes(self.notes)


JobFunction = Callable[[JobContext, Mapping[str, Any]], dict[str, Any]]
"""A kind's work: from the context and the job's parameters to a JSON-ready result."""


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its name, its function, the queue it goes to, at most how many seconds one
    attempt may run (None: ``GATEWAY_JOB_TIMEOUT_SECONDS``), how many times it is tried again
    after an attempt dies or raises (only for work that is safe to run again) and the seconds
    waited before each retry (none: at once; a worker's scheduler queues delayed ones), and a
    one-line description of a job from its parameters."""

    name: str
    function: JobFunction
    queue: str = DEFAULT_QUEUE
    timeout_seconds: int | None = None
    retries: int = 0
    retry_intervals: tuple[int, ...] = ()
    describe: Callable[[Mapping[str, Any]], str] = field(default=lambda params: "")


KINDS: dict[str, JobKind] = {}
"""Every kind, by name."""


def register_kind(kind: JobKind) -> JobKind:
    """Make ``kind`` known to every process that enqueues or runs jobs."""
    if kind.queue not in QUEUES:
        raise ValueError(f"job kind {kind.name}: unknown queue {kind.queue!r}")
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> JobKind:
    """The kind named ``name`` (:class:`KeyError` if none)."""
    import gateway.jobs.kinds  # noqa: F401  (registers the kinds)

    return KINDS[name]


def run_job(kind_name: str, params: Mapping[str, Any], context: JobContext) -> dict[str, Any]:
    """Run one job of ``kind_name`` now, in this process."""
    return get_kind(kind_name).function(context, params)
