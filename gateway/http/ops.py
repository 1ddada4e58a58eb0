"""What operators and their machines ask of a running gateway: ``/healthz`` (the process is up),
``/readyz`` (it can serve: database, schema, Redis) and ``/metrics`` (Prometheus).

``/healthz`` touches nothing, so a load balancer restarting on it never restarts every process
for a database outage; ``/readyz`` is the one to route on. ``/metrics`` requires
``Authorization: Bearer GATEWAY_METRICS_TOKEN`` when that setting is set, and is absent (404)
when ``GATEWAY_METRICS`` is off.
"""
from __future__ import annotations

import functools
import hmac
import logging

import orjson
from flask import Blueprint, Flask, Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound

from gateway.database import get_database, get_redis
from gateway.jobs.queue import job_queue_families
from gateway.metrics import (Families, ImportRunsCollector, ImportTotals, ScrapeSource,
                             render_metrics)
from gateway.readiness import check_readiness
from gateway.store.import_runs import import_history_totals

blueprint = Blueprint("ops", __name__)

SCRAPE_SOURCES = "gateway.metrics.scrape_sources"
_HEALTHY = orjson.dumps({"status": "ok"})


def add_scrape_source(app: Flask, source: ScrapeSource) -> None:
    """Have every scrape of ``app``'s ``/metrics`` also call ``source`` (see
    :data:`gateway.metrics.ScrapeSource`): where counts kept in the store or Redis, such as a job
    queue's depth, join the metrics."""
    app.extensions.setdefault(SCRAPE_SOURCES, []).append(source)


def init_app(app: Flask) -> None:
    """With job queues (Redis configured), their depth joins ``/metrics``
    (``gateway_job_queue_depth{queue,state}``)."""
    if app.config.get("REDIS_URL"):
        add_scrape_source(app, functools.partial(job_queue_families,
                                                 str(app.config["REDIS_KEY_PREFIX"])))


def _json(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers. No database, nothing else."""
    return Response(_HEALTHY, mimetype="application/json", headers={"Cache-Control": "no-store"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """Readiness: 200 when the database answers at the newest schema and Redis (when
    configured) answers, else 503 naming what failed; each check's outcome either way."""
    readiness = check_readiness(get_database(), get_redis())
    if readiness.ready:
        return _json({"status": "ready", "checks": readiness.checks})
    return _json({"status": "not ready", "checks": readiness.checks, "failed": readiness.failed},
                 503)


logger = logging.getLogger(__name__)


def _import_totals() -> list[ImportTotals]:
    # A connection of its own, not the request's session: a store that fails must cost the
    # scrape the import families only, not every worker's request counts.
    try:
        with get_database().engine.connect() as connection:
            totals = import_history_totals(connection)
    except SQLAlchemyError as error:
        logger.warning("metrics: could not read the import history (%s)", type(error).__name__)
        return []
    return [ImportTotals(outcome, runs, finished, seconds)
            for outcome, runs, finished, seconds in totals]


@blueprint.get("/metrics")
def metrics() -> Response:
    """The Prometheus text exposition of every worker's counts and the store's."""
    config = current_app.config
    if not config["METRICS"]:
        raise NotFound()
    token = str(config["METRICS_TOKEN"] or "")
    if token:
        scheme, _, presented = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(),
                                                                 token.encode()):
            return Response("A metrics token is required: send Authorization: Bearer <token>.\n",
                            status=401, mimetype="text/plain",
                            headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    scraped = [ImportRunsCollector(_import_totals())]
    scraped += [Families(functools.partial(source, get_database(), get_redis()))
                for source in current_app.extensions.get(SCRAPE_SOURCES, ())]
    body, content_type = render_metrics(scraped)
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})
