"""Prometheus metrics: what the web processes count as they serve, and what a scrape reads from
the store. No web framework here; :mod:`gateway.http.observe` counts requests and
:mod:`gateway.http.ops` serves ``/metrics``.

Counted by the process that does the work:

* ``gateway_http_requests_total{endpoint,method,status}`` and the latency histogram
  ``gateway_http_request_duration_seconds{endpoint}``. ``endpoint`` is the URL rule
  (``/ims/oneroster/rostering/v1p2/users/<sourcedId>``), never the path: paths carry sourcedIds,
  and one label value per record would both leak them and grow without bound.
* ``gateway_ledger_appends_total{channel}``: disclosure-ledger entries appended.
* ``gateway_rate_limited_total{limit}``: requests refused by a rate limit (``app``, ``address``).

Read from the store at scrape time (imports run in the CLI's or a job worker's process, which
nobody scrapes):
``gateway_imports_total{outcome}`` and ``gateway_import_duration_seconds{outcome}`` (count and
sum of finished runs), from the import history. Other scrape-time families (the job queues'
depth) are added through :data:`ScrapeSource` functions.

Several worker processes (``gateway serve --workers N``): prometheus_client's multiprocess mode,
each process writing its counts to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape summing
them, so any worker answers for all. The mode is chosen when the first metric is made, so the
metrics are made on first use (in the workers, after the directory is set), never at import.
"""
from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds. A OneRoster page takes a few milliseconds; a large page or an import's lock more."""

UNMATCHED = "unmatched"
"""The endpoint label of a request that matched no URL rule (a 404)."""


class ProcessMetrics:
    """The metrics this process counts (made once per process, see :func:`process_metrics`)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        # A registry of our own: the process-wide default one would also publish whatever any
        # other library registers there.
        self.registry = CollectorRegistry()
        self.requests = Counter("gateway_http_requests", "HTTP requests served, by URL rule, "
                                "method and status.", ["endpoint", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("gateway_http_request_duration_seconds", "Time to serve a "
                                 "request (until its body is handed to the server), by URL rule.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ledger_appends = Counter("gateway_ledger_appends", "Disclosure-ledger entries "
                                      "appended, by channel.", ["channel"], registry=self.registry)
        self.rate_limited = Counter("gateway_rate_limited", "Requests refused by a rate limit.",
                                    ["limit"], registry=self.registry)
        # labels() looks its child up under a lock and by a tuple of strings on every call;
        # the children of a request's (endpoint, method, status) are kept here instead.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one request and its latency."""
        key = (endpoint, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(endpoint, method, str(status)), self.latency.labels(endpoint))
        children[0].inc()
        children[1].observe(seconds)


_metrics: ProcessMetrics | None = None
_lock = threading.Lock()


def process_metrics() -> ProcessMetrics:
    """This process's :class:`ProcessMetrics`, made on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = ProcessMetrics()
    return _metrics


def count_ledger_append(channel: str) -> None:
    """Count one disclosure-ledger entry appended on ``channel``."""
    process_metrics().ledger_appends.labels(channel).inc()


def count_rate_limited(limit: str) -> None:
    """Count one request refused by the ``limit`` rate limit (``app``, ``address``)."""
    process_metrics().rate_limited.labels(limit).inc()


def use_multiprocess_dir(path: str | None) -> None:
    """Count in files under ``path`` from now on (None: in memory again), for worker processes
    forked after this call. Metrics this process made before are dropped, so none made in
    another mode is inherited by the workers."""
    global _metrics
    if path is None:
        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
    else:
        os.environ[MULTIPROCESS_DIR_ENV] = path
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        # prometheus_client picks the kind of value when it is first imported; the choice is
        # made again for metrics made from now on.
        values.ValueClass = values.get_value_class()
    with _lock:
        _metrics = None


def multiprocess_dir() -> str | None:
    """The directory the worker processes count in, or None (this process counts alone)."""
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


def worker_exited(pid: int) -> None:
    """Tell the multiprocess files that worker ``pid`` is gone (its live gauges no longer
    count; its counters still do)."""
    if multiprocess_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


# -- read at scrape time ----------------------------------------------------------------------

@dataclass(frozen=True)
class ImportTotals:
    """The import history of one outcome: runs, and the count and seconds of the finished."""

    outcome: str
    runs: int
    finished: int
    seconds: float


class ImportRunsCollector:
    """The import families, from :class:`ImportTotals` read just before the scrape."""

    def __init__(self, totals: Iterable[ImportTotals]) -> None:
        self.totals = list(totals)

    def collect(self) -> Iterable[Any]:
        """``gateway_imports_total`` and ``gateway_import_duration_seconds``."""
        from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily

        runs = CounterMetricFamily("gateway_imports", "Import runs in the import history, by "
                                   "outcome (running: started, not finished).", labels=["outcome"])
        durations = SummaryMetricFamily("gateway_import_duration_seconds", "Duration of the "
                                        "finished import runs in the import history, by outcome.",
                                        labels=["outcome"])
        for total in self.totals:
            runs.add_metric([total.outcome], total.runs)
            if total.finished:
                durations.add_metric([total.outcome], total.finished, total.seconds)
        yield runs
        yield durations


ScrapeSource = Callable[[Any, Any], Iterable[Any]]
"""A function from the app's :class:`~gateway.store.Database` and Redis client (None in embedded
mode) to more metric families (prometheus_client ``Metric`` objects), called at each scrape: the
hook for counts kept in the store or Redis, such as the job queues' depth
(``gateway_job_queue_depth``, see :func:`gateway.jobs.queue.job_queue_families`)."""


class Families:
    """A collector of the families ``collect()`` returns at each collection."""

    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Any]:
        """The families."""
        return self._collect()


def render_metrics(scraped: Iterable[Any]) -> tuple[bytes, str]:
    """The Prometheus text exposition of every process's counts (this one's alone when not in
    multiprocess mode) and the ``scraped`` collectors; and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry, path=directory)
    else:
        registry.register(Families(process_metrics().registry.collect))
    for collector in scraped:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
