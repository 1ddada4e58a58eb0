"""Change feed fan-out benchmark: one import changing 10,000 records, delivered to 100 apps'
webhook receivers on localhost.

    .venv/bin/python benchmarks/events_bench.py [--backend sqlite|postgresql|both] [--apps 100]
        [--changes 10000] [--repeat 2]

For each backend, from the same start (a demo district imported, ``--apps`` apps connected to it,
half sharing the whole district and half restricted to one school, each with a webhook at a
receiver of its own, a real HTTP server on 127.0.0.1), it imports a bundle that changes
``--changes`` users' family names:

  alone        the import with the change feed switched off (its event rows and scope moves not
               written): what the import costs by itself;
  with events  the same import writing its events (one row per changed record for the district,
               plus each restricted app's scope moves), then delivering: every app's webhook gets
               what it may see, signed, in batches of 500, 8 webhooks at a time.

It prints the import's median wall time each way, the added cost (target: under 10%), the time
from the import's commit to the last receiver's last event, and how many events were delivered.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchdb import DEFAULT_PG, reset_database  # noqa: E402


class Receivers:
    """One HTTP server per app on localhost; counts the events each receives."""

    def __init__(self, count: int) -> None:
        self.counts = [0] * count
        self.last_at = 0.0
        self.servers = []
        lock = threading.Lock()
        for index in range(count):
            receivers = self

            class Handler(BaseHTTPRequestHandler):
                slot = index

                def do_POST(self) -> None:  # noqa: N802
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    events = body.count(b'"cursor"')
                    with lock:
                        receivers.counts[self.slot] += events
                        receivers.last_at = time.perf_counter()
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

                def log_message(self, *args) -> None:
                    pass

            server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)

    def url(self, index: int) -> str:
        """Receiver ``index``'s address."""
        return f"http://127.0.0.1:{self.servers[index].server_address[1]}/hook"

    def close(self) -> None:
        """Stop every server."""
        for server in self.servers:
            server.shutdown()
            server.server_close()


def changed_bundle(base: Path, out: Path, changes: int) -> Path:
    """A copy of ``base`` whose first ``changes`` users have a new family name."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out)
    with (base / "users.csv").open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    family = rows[0].index("familyName")
    for row in rows[1:changes + 1]:
        row[family] = row[family] + "-Changed"
    with (out / "users.csv").open("w", newline="", encoding="utf-8") as target:
        csv.writer(target).writerows(rows)
    return out


def prepare(url: str, base: Path, apps: int, receivers: Receivers, secret: str) -> None:
    """Import the district, connect the apps with their policies and webhooks."""
    from gateway.events.webhooks import add_webhook
    from gateway.importing import run_import
    from gateway.oauth import service
    from gateway.oneroster.csv.importer import ImportOptions
    from gateway.sharing.policy import share_everything_document
    from gateway.sharing.service import app_district_id, set_policy
    from gateway.sharing.snapshots import settle_snapshots
    from gateway.store import Database
    from gateway.store.models import Org, utcnow
    from sqlalchemy import select

    database = Database(url)
    run_import(database, base, ImportOptions(force=True))
    with database.session_scope(write=True) as session:
        school = session.execute(select(Org.sourced_id).where(Org.type == "school")
                                 .order_by(Org.id)).scalars().first()
        for index in range(apps):
            created = service.register_app(session, name=f"App {index}",
                                           district_sourced_id="district-1", scopes=None,
                                           now=utcnow())
            district_id = app_district_id(session, created.app_id, "district-1")
            policy = (share_everything_document() if index % 2 == 0
                      else {"schools": [school], "pseudonymize": ["user.sourcedId"]})
            set_policy(session, app_id=created.app_id, district_id=district_id, document=policy,
                       now=utcnow())
            add_webhook(session, app_id=created.app_id, district_id=district_id,
                        url=receivers.url(index), secret_key=secret, now=utcnow())
    settle_snapshots(database.engine)
    database.dispose()


def timed_import(url: str, bundle: Path, feed: bool) -> float:
    """The import's wall time; ``feed`` False switches the change feed's writes off."""
    from unittest import mock

    from gateway.importing import run_import
    from gateway.oneroster.csv import importer
    from gateway.oneroster.csv.importer import ImportOptions
    from gateway.sharing import snapshots
    from gateway.store import Database

    database = Database(url)
    patches = [] if feed else [mock.patch.object(importer, "_record_changes", lambda *a: 0),
                               mock.patch.object(snapshots, "_record_scope_moves", lambda *a: 0)]
    for patch in patches:
        patch.start()
    try:
        started = time.perf_counter()
        outcome = run_import(database, bundle, ImportOptions(force=True))
        elapsed = time.perf_counter() - started
    finally:
        for patch in patches:
            patch.stop()
    assert outcome.report.outcome == "applied", outcome.report.to_dict()
    database.dispose()
    return elapsed


def run_backend(backend: str, workdir: Path, base: Path, change: Path, args) -> None:
    """Measure one backend and print its figures."""
    import requests

    from gateway.config import build_settings
    from gateway.events.webhooks import deliver_due
    from gateway.store import Database

    secret = "bench-secret-key"
    times = {True: [], False: []}
    delivery = None
    for attempt in range(args.repeat):
        for feed in (False, True):
            receivers = Receivers(args.apps)
            try:
                url = reset_database(backend, workdir, args.pg_url, "events")
                prepare(url, base, args.apps, receivers, secret)
                times[feed].append(timed_import(url, change, feed))
                if feed and attempt == args.repeat - 1:
                    database = Database(url)
                    settings = build_settings({"SECRET_KEY": secret})
                    committed = time.perf_counter()
                    with requests.Session() as http:
                        results = deliver_due(database, secret_key=secret, post=http.post,
                                              settings=settings)
                    done = time.perf_counter()
                    assert not any(r.error for r in results), [r.error for r in results]
                    delivery = (receivers.last_at - committed, done - committed,
                                sum(receivers.counts), min(receivers.counts),
                                max(receivers.counts))
                    database.dispose()
            finally:
                receivers.close()
    alone, with_feed = statistics.median(times[False]), statistics.median(times[True])
    print(f"[{backend}] import changing {args.changes:,} users, {args.apps} apps "
          f"(medians of {args.repeat}): alone {alone:.2f} s, with events {with_feed:.2f} s, "
          f"added {100 * (with_feed / alone - 1):+.1f}%")
    last, total, events, least, most = delivery
    print(f"[{backend}] delivery: last event at a receiver {last:.2f} s after the import's "
          f"commit (run ended {total:.2f} s); {events:,} events delivered, "
          f"{least:,} to {most:,} per app")


def main() -> None:
    """Parse arguments, measure each backend, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--changes", type=int, default=10000)
    parser.add_argument("--students", type=int, default=12000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from gateway.demo import generate_demo_bundle

    workdir = Path(tempfile.mkdtemp(prefix="events-bench-"))
    try:
        base = workdir / "base"
        generate_demo_bundle(base, schools=6, students=args.students, seed=1)
        change = changed_bundle(base, workdir / "change", args.changes)
        backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
        for backend in backends:
            run_backend(backend, workdir, base, change, args)
        print("command: .venv/bin/python benchmarks/events_bench.py " + " ".join(sys.argv[1:]))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
