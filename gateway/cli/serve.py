"""``gateway serve``: serve the app with gunicorn (a production WSGI server, not the dev server)."""
from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
from typing import Any, Callable, Iterator

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from gateway import metrics
from gateway.config import DEFAULTS, ENV_PREFIX
from gateway.database import get_database
from gateway.store.migrate import ensure_schema


def isolated(app: Flask) -> Callable[..., Any]:
    """``app`` as a WSGI callable that serves each request in a fresh, empty context.

    ``gateway serve`` runs inside the CLI's app context, which the workers inherit when they
    fork. Flask reuses an app context already pushed for the same app instead of pushing one per
    request, so without this every request of a worker would share one ``g``: one request's
    database session and visibilities would be seen by the next (a stale session left holding
    SQLite's write lock, a replaced policy still applied). A fresh context per request is what
    any WSGI server gives ``wsgi.py``.
    """
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return contextvars.Context().run(app, environ, start_response)
    return serve


@contextlib.contextmanager
def shared_metrics(workers: int) -> Iterator[str | None]:
    """With several workers, have them count their metrics in a private temporary directory
    (prometheus_client's multiprocess mode), so that a scrape answered by any worker sums them
    all; removed when serving ends. Yields the directory, or None (one worker counts alone, or
    ``PROMETHEUS_MULTIPROC_DIR`` was set by whoever started the gateway, who keeps it)."""
    if workers < 2 or metrics.multiprocess_dir() is not None:
        yield None
        return
    # mkdtemp: owner-only (0700), a fresh name; the counts are nobody else's business.
    directory = tempfile.mkdtemp(prefix="gateway-metrics-")
    metrics.use_multiprocess_dir(directory)
    owner = os.getpid()
    try:
        yield directory
    finally:
        # gunicorn's workers are forked inside this block and leave it as they exit (by
        # SystemExit): only the master, which made the directory, removes it, when it stops.
        if os.getpid() == owner:
            metrics.use_multiprocess_dir(None)
            shutil.rmtree(directory, ignore_errors=True)


def run_server(app, host: str, port: int, workers: int, threads: int) -> None:
    """Serve ``app`` with gunicorn in this process until interrupted.

    Without ``GATEWAY_ISSUER`` the public base URL (hrefs, Link headers, discovery, the LTI
    issuer) becomes the address served, so links work on any ``--port``; behind a proxy, set it.
    """
    from gunicorn.app.base import BaseApplication

    if not os.environ.get(ENV_PREFIX + "ISSUER") and app.config["ISSUER"] == DEFAULTS["ISSUER"]:
        shown = "localhost" if host in ("127.0.0.1", "localhost") else host
        app.config["ISSUER"] = f"http://{shown}:{port}"

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread" if threads > 1 else "sync")
            # No gunicorn access log: it writes the full URL, query string included, and queries
            # carry filters such as email='...': personal data must not reach the logs. The
            # gateway writes its own access line per request, without the query, with the
            # request id (gateway.http.observe).
            self.cfg.set("accesslog", None)
            self.cfg.set("child_exit", lambda _arbiter, worker: metrics.worker_exited(worker.pid))

        def load(self):
            return isolated(app)

    with shared_metrics(workers):
        _Server().run()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Threads per worker.")
@with_appcontext
def serve_command(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the gateway on HOST:PORT (schema migrations are applied first)."""
    app = current_app._get_current_object()
    database = get_database(app)
    ensure_schema(database)
    # Workers fork after this point: they must not inherit the master's pooled connections.
    database.dispose()
    click.echo(f"serving on http://{host}:{port}/  (database: "
               f"{database.engine.url.render_as_string(hide_password=True)})")
    run_server(app, host, port, workers, threads)


def register(cli: click.Group) -> None:
    """Attach ``serve``."""
    cli.add_command(serve_command)
