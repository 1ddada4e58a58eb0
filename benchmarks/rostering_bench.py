"""Rostering REST benchmark: a district served by gunicorn on localhost, loaded by wrk.

    .venv/bin/python benchmarks/rostering_bench.py --students 1000000 [--backend sqlite|postgresql|both]

Needs wrk (Debian: apt-get install wrk). For each backend it imports the demo district once (kept
between runs), creates an app and a token, serves the gateway with `gateway serve` (gunicorn, sync
workers) and measures with `wrk -t2 -c32 -d10s --latency`:
  GET /users?limit=100                 (offset 0)
  GET /users?limit=100&offset=500000   (deep offset; anything beyond the end is clamped down)
  GET /users?filter=email='...'        (an indexed field)
  GET /classes/{id}/students
  GET /users/{id}
and, on the same machine and settings, a bare Flask endpoint returning the gateway's own first
/users page as fixed bytes, and the floor (benchmarks/floor_app.py): that fixed page behind the
gateway's own token check and disclosure ledger, nothing read or serialized.

For each it prints requests/s, p50 and p99 latency and the server CPU per request: utime+stime of
the server's process tree (gunicorn master and workers, from /proc) plus, on PostgreSQL, of the
PostgreSQL backends serving it (found by application_name), divided by the requests wrk counted.
Then the targets of issue 17: offset-0 CPU / bare CPU (<= 2.5), offset-0 p50 / bare p50 (<= 3), and
every other request's CPU / offset-0 CPU (<= 1.5). With --policy FILE (or --policy school-grade)
the same requests run through an app with that sharing policy too, on the same server,
alternating with the share-everything app for --rounds rounds (medians printed). Last, in
process, the cost of recording a 100-record page's disclosure (ledger on versus off).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchdb import DEFAULT_PG  # noqa: E402
from import_bench import ensure_bundle  # noqa: E402

BASE = "/ims/oneroster/rostering/v1p2"
PG_SCHEMA = "gateway_rest_bench"


def database_url(backend: str, workdir: Path, pg_url: str, students: int) -> str:
    """A database kept between runs for this size (imports of a million users take minutes)."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'rest-{students}.sqlite3'}"
    return (f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{PG_SCHEMA}_{students}"
            f"&application_name={APPLICATION_NAME}")


def prepare(backend: str, url: str, pg_url: str, students: int, bundle: Path) -> None:
    """Migrate, and import the district unless it is already there."""
    from sqlalchemy import func, select, text

    from gateway.oneroster.csv.importer import import_bundle
    from gateway.store import Database
    from gateway.store.migrate import upgrade_database
    from gateway.store.models import District

    if backend == "postgresql":
        admin = Database(pg_url)
        with admin.engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}_{students}"))
        admin.dispose()
    database = Database(url)
    upgrade_database(database)
    with database.session_scope() as session:
        loaded = session.execute(select(func.count()).select_from(District)).scalar_one()
    if not loaded:
        started = time.perf_counter()
        with database.session_scope() as session:
            report = import_bundle(session, bundle)
            assert report.outcome == "applied", report.problems[:3]
        print(f"  imported the district into {backend} in {time.perf_counter() - started:.0f}s")
    else:
        # A store imported before migration 0019 is rendered as its next import would.
        from gateway.oneroster.rendering import render_district

        with database.engine.begin() as conn:
            rendered = sum(render_district(conn, district_id)
                           for district_id in conn.execute(select(District.id)).scalars())
        if rendered:
            print(f"  rendered {rendered:,} records imported before migration 0019")
    if backend == "postgresql":
        with database.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    database.dispose()


def create_credentials(url: str, policy: Path | None) -> tuple[str, str]:
    """A fresh app for the district (with the policy, if given); return its client credentials."""
    from sqlalchemy import select

    from gateway.oauth.service import register_app
    from gateway.sharing.policy import share_everything_document
    from gateway.sharing.service import app_district_id, set_policy
    from gateway.sharing.snapshots import settle_snapshots
    from gateway.store import Database
    from gateway.store.models import District, utcnow

    database = Database(url)
    with database.session_scope() as session:
        district = session.execute(select(District.sourced_id)).scalars().first()
        if policy is None:
            document = share_everything_document()
        elif str(policy) == SCHOOL_GRADE:
            document = school_grade_policy(session)
        else:
            document = json.loads(policy.read_text())
        credentials = register_app(session, name="benchmark", district_sourced_id=district,
                                   scopes=None, now=utcnow())
        set_policy(session, app_id=credentials.app_id,
                   district_id=app_district_id(session, credentials.app_id, district),
                   document=document, now=utcnow())
    settle_snapshots(database.engine)
    database.dispose()
    return credentials.client_id, credentials.client_secret


SCHOOL_GRADE = "school-grade"


def school_grade_policy(session) -> dict:
    """The --policy school-grade document: every other school, grades 03 to 10, emails granted,
    family names masked to their initial (what a district typically gives a vendor)."""
    from sqlalchemy import select

    from gateway.store.models import Org

    schools = session.execute(select(Org.sourced_id).where(Org.type == "school")
                              .order_by(Org.sourced_id)).scalars().all()
    return {"schools": schools[::2], "grades": ["03", "04", "05", "06", "07", "08", "09", "10"],
            "fields": {"user": ["*", "email"], "demographics": []},
            "mask": {"user.familyName": "initial"}}


def ledger_overhead(url: str, blocks: int = 40, block: int = 20) -> dict:
    """In-process, without HTTP: GET /users?limit=100 for the share-everything app, with its
    disclosure recorded and with recording switched off (benchmark only), in alternating blocks
    of ``block`` requests so that both see the same machine; the median request of each."""
    import base64
    import statistics

    from gateway import create_app
    from gateway.sharing.ledger import LedgerWriter

    client_id, secret = create_credentials(url, None)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "benchmark", "APP_RATE_PER_SECOND": 1e6,
                      "APP_RATE_BURST": 10 ** 6})
    # The access log of thousands of in-process requests would drown the figures.
    logging.getLogger("gateway.access").disabled = True
    client = app.test_client()
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers={"Authorization": "Basic " + basic}).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(30):
        client.get(f"{BASE}/users?limit=100", headers=headers)
    # Both appenders (the session's, and on SQLite the ledger file's own) read a writer's
    # entries through noted(): with it empty, the request records nothing.
    noted = LedgerWriter.noted
    times: dict[bool, list[float]] = {True: [], False: []}
    try:
        for index in range(blocks * 2):
            recorded = index % 2 == 0
            LedgerWriter.noted = noted if recorded else (lambda self: iter(()))
            for _ in range(block):
                started = time.perf_counter()
                assert client.get(f"{BASE}/users?limit=100", headers=headers).status_code == 200
                times[recorded].append((time.perf_counter() - started) * 1000)
    finally:
        LedgerWriter.noted = noted
    return {"recorded": statistics.median(times[True]), "unrecorded": statistics.median(times[False])}


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen:
    """Start a server and wait until ``probe`` answers."""
    # The server's log goes to the work folder: a failed request's traceback is there.
    log = open(Path(env["BENCH_LOG"]), "ab")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"http://127.0.0.1:{port}{probe}", timeout=5)
            return process
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start: {' '.join(command)}")
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    """Stop a server started by :func:`start`."""
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


# The app's rate limit stays on (its cost is part of every request) but far above what wrk asks.
UNTHROTTLED = {"GATEWAY_APP_RATE_PER_SECOND": "1000000", "GATEWAY_APP_RATE_BURST": "1000000"}

APPLICATION_NAME = "gateway-rest-bench"
"""The PostgreSQL application_name of the benchmarked server's connections: how its backends
are found to count their CPU."""


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as handle:
                queue += [int(child) for child in handle.read().split()]
        except OSError:
            pass
    return pids


def ticks(pids: list[int]) -> int:
    """utime+stime, in clock ticks, of the processes ``pids`` (those that have gone count 0)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total


def backend_pids(pg_url: str, application_name: str = APPLICATION_NAME) -> list[int]:
    """The PostgreSQL backends serving the benchmarked server (by application_name)."""
    from sqlalchemy import text

    from gateway.store import Database

    admin = Database(pg_url)
    with admin.engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                            {"name": application_name}).scalars().all()
    admin.dispose()
    return list(pids)


class CpuMeter:
    """Server CPU (utime+stime) of a process tree, plus the PostgreSQL backends serving it."""

    def __init__(self, process: subprocess.Popen, pg_url: str | None = None) -> None:
        self.process = process
        self.pg_url = pg_url

    def read(self) -> tuple[int, int]:
        """(server ticks, database ticks) so far."""
        server = ticks(tree_pids(self.process.pid))
        database = ticks(backend_pids(self.pg_url)) if self.pg_url else 0
        return server, database


_TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str | None, seconds: int, connections: int,
        meter: CpuMeter | None = None) -> dict:
    """Run wrk against ``url``; return requests/s, p50/p99 latency in ms and, with a ``meter``,
    the server's CPU per request in ms (``cpu``; ``db_cpu`` of it the database's)."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    before = meter.read() if meter else (0, 0)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = meter.read() if meter else (0, 0)
    requests_done = int(re.search(r"(\d+) requests in", output).group(1))
    server_ms = (after[0] - before[0]) * _TICK_MS / max(1, requests_done)
    db_ms = (after[1] - before[1]) * _TICK_MS / max(1, requests_done)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", output).groups()
        latency[pct] = float(value) * _UNITS[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {"rps": rate, "p50": latency["50"], "p99": latency["99"],
            "errors": int(non_2xx.group(1)) if non_2xx else 0,
            "cpu": server_ms + db_ms, "db_cpu": db_ms}


def sample_ids(port: int, token: str) -> dict[str, str]:
    """Ids and values to put in the URLs: a user, a user's email, a class."""
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}{BASE}"
    users = requests.get(f"{base}/users?limit=100&offset=1000&filter=roles.role%3D%27student%27", headers=headers,
                         timeout=60)
    if users.status_code != 200:
        users = requests.get(f"{base}/users?limit=100&offset=1000", headers=headers, timeout=60)
    users.raise_for_status()
    with_email = [u for u in users.json()["users"] if u.get("email")]
    classes = requests.get(f"{base}/classes?limit=1&offset=100", headers=headers, timeout=60)
    classes.raise_for_status()
    return {"user": with_email[0]["sourcedId"], "email": with_email[0]["email"],
            "class": classes.json()["classes"][0]["sourcedId"]}


def measure(backend: str, url: str, args, rows: list) -> str:
    """Serve the gateway once and measure every request for the share-everything app and (with
    --policy) the restricted one, alternating the two apps for --rounds rounds so that both see
    the same machine; each figure is the median of its rounds."""
    apps = [("all", None)] + ([("policy", args.policy)] if args.policy else [])
    credentials = {}
    for label, policy in apps:
        started = time.perf_counter()
        credentials[label] = create_credentials(url, policy)
        if policy is not None:
            print(f"  ({label}: policy set, its scope snapshot built, in {time.perf_counter() - started:.1f}s)")
    port = free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=url, GATEWAY_INSTANCE_PATH=str(args.workdir / "instance"),
               BENCH_LOG=str(args.workdir / "server.log"), **UNTHROTTLED)
    server = start([sys.executable, "-m", "gateway", "serve", "--port", str(port),
                    "--workers", str(args.workers)], env, port, "/healthz")
    meter = CpuMeter(server, args.postgresql_url if backend == "postgresql" else None)
    try:
        targets = {}
        for label, _policy in apps:
            client_id, secret = credentials[label]
            issued = requests.post(f"http://127.0.0.1:{port}/oauth/token", auth=(client_id, secret),
                                   data={"grant_type": "client_credentials"}, timeout=60)
            if issued.status_code != 200:
                raise SystemExit(f"{label}: no token: {issued.status_code} {issued.text[:300]}")
            token = issued.json()["access_token"]
            ids = sample_ids(port, token)
            email = urllib.parse.quote(f"email='{ids['email']}'")
            total = int(requests.get(f"http://127.0.0.1:{port}{BASE}/users?limit=1",
                                     headers={"Authorization": f"Bearer {token}"}, timeout=60).headers["X-Total-Count"])
            deep = min(500000, max(0, total - 100))
            print(f"  ({label}: {total:,} users visible; deep offset {deep:,})")
            targets[label] = (token, [("users offset 0", "/users?limit=100"),
                                      ("users deep offset", f"/users?limit=100&offset={deep}"),
                                      ("users filter email", f"/users?filter={email}"),
                                      ("class students", f"/classes/{ids['class']}/students"),
                                      ("user by id", f"/users/{ids['user']}")])
        for index, name in enumerate(name for name, _ in targets["all"][1]):
            results: dict[str, list] = {label: [] for label, _ in apps}
            for _round in range(args.rounds):
                for label, _policy in apps:
                    token, paths = targets[label]
                    full = f"http://127.0.0.1:{port}{BASE}{paths[index][1]}"
                    for _ in range(args.workers * 2):  # warm each worker's caches
                        requests.get(full, headers={"Authorization": f"Bearer {token}"}, timeout=300)
                    results[label].append(wrk(full, token, args.seconds, args.connections, meter))
            for label, _policy in apps:
                result = _median(results[label])
                rows.append((backend, label, name, result))
                print_row(backend, label, name, result)
        token = targets["all"][0]
        page = requests.get(f"http://127.0.0.1:{port}{BASE}/users?limit=100",
                            headers={"Authorization": f"Bearer {token}"}, timeout=60).content
        (args.workdir / "bare-page.json").write_bytes(page)
    finally:
        stop(server)
    return token


def measure_floor(backend: str, url: str, args, rows: list, token: str) -> None:
    """The floor (benchmarks/floor_app.py): the gateway's token check and disclosure record
    around the fixed first page, same gunicorn settings, same token."""
    port = free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=url, GATEWAY_INSTANCE_PATH=str(args.workdir / "instance"),
               BARE_PAGE_FILE=str(args.workdir / "bare-page.json"), **UNTHROTTLED,
               BENCH_LOG=str(args.workdir / "server.log"),
               PYTHONPATH=os.pathsep.join([str(ROOT / "benchmarks"), str(ROOT)]))
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    server = start([gunicorn, "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "floor_app:app"],
                   env, port, "/healthz")
    meter = CpuMeter(server, args.postgresql_url if backend == "postgresql" else None)
    try:
        for path, label, name in (("/floor", "floor", "token+ledger+fixed page"),
                                  ("/floor/token", "floor-tok", "token+fixed page")):
            target = f"http://127.0.0.1:{port}{path}"
            assert requests.get(target, headers={"Authorization": f"Bearer {token}"}, timeout=60).ok
            result = _median([wrk(target, token, args.seconds, args.connections, meter)
                              for _round in range(args.rounds)])
            rows.append((backend, label, name, result))
            print_row(backend, label, name, result)
    finally:
        stop(server)


def print_row(backend: str, label: str, name: str, result: dict) -> None:
    """One line of the results table."""
    print(f"  {backend:<11}{label:<11}{name:<26}{result['rps']:>9,.0f}{result['p50']:>9.2f}"
          f"{result['p99']:>9.2f}{result['errors']:>8}{result['cpu']:>10.3f}{result['db_cpu']:>9.3f}",
          flush=True)


def _median(results: list[dict]) -> dict:
    """Each figure's median over rounds (errors: the total)."""
    middle = len(results) // 2
    out = {key: sorted(r[key] for r in results)[middle]
           for key in ("rps", "p50", "p99", "cpu", "db_cpu")}
    out["errors"] = sum(r["errors"] for r in results)
    return out


def measure_bare(args, rows: list) -> None:
    """The bare Flask endpoint, same gunicorn settings, serving the gateway's first page."""
    port = free_port()
    env = dict(os.environ, BARE_PAGE_FILE=str(args.workdir / "bare-page.json"),
               BENCH_LOG=str(args.workdir / "server.log"),
               PYTHONPATH=str(ROOT / "benchmarks"))
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    server = start([gunicorn, "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "bare_app:app"], env, port, "/page")
    meter = CpuMeter(server)
    try:
        result = _median([wrk(f"http://127.0.0.1:{port}/page", None, args.seconds, args.connections,
                              meter)
                          for _round in range(args.rounds)])
        rows.append(("-", "bare", "fixed 100-record page", result))
        print_row("-", "bare", "fixed 100-record page", result)
    finally:
        stop(server)


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1000000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="wrk runs per request and app (the apps alternate); medians are printed")
    parser.add_argument("--policy", type=Path,
                        help="also measure through an app with this sharing policy (a JSON file, "
                             f"or '{SCHOOL_GRADE}': half the schools, 8 grades, masked names)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    args.workdir.mkdir(parents=True, exist_ok=True)
    bundle, users = ensure_bundle(args.workdir, args.students, max(3, args.students // 2500))
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    print(f"{args.students:,} students, {users:,} users; wrk -t2 -c{args.connections} -d{args.seconds}s; "
          f"gunicorn sync x{args.workers}")
    print(f"  {'backend':<11}{'app':<11}{'request':<26}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>8}"
          f"{'CPU ms':>10}{'of it DB':>9}   (CPU: server tree + PostgreSQL backends, per request)")
    rows: list = []
    ledgers: dict = {}
    for backend in backends:
        url = database_url(backend, args.workdir, args.postgresql_url, args.students)
        prepare(backend, url, args.postgresql_url, args.students, bundle)
        try:
            token = measure(backend, url, args, rows)
            measure_floor(backend, url, args, rows, token)
        except requests.RequestException as error:
            print(f"  {backend}: the run failed: {error}")
        ledger = ledger_overhead(url)
        ledgers[backend] = ledger
        print(f"  {backend}: in-process GET /users?limit=100 (median of 800 each, interleaved): "
              f"{ledger['recorded']:.2f} ms recorded, {ledger['unrecorded']:.2f} ms with recording off")
    measure_bare(args, rows)
    bare = next(r for b, label, n, r in rows if label == "bare")
    print(f"bare endpoint: {bare['cpu']:.3f} ms CPU per request, p50 {bare['p50']:.2f} ms")
    for backend in backends:
        for app_label in ("all", "policy"):
            mine = {name: r for b, label, name, r in rows if b == backend and label == app_label}
            if not mine:
                continue
            first = mine["users offset 0"]
            print(f"{backend} {app_label}: offset-0 CPU / bare CPU = {first['cpu'] / bare['cpu']:.2f} "
                  f"(target <= 2.5); p50 / bare p50 = {first['p50'] / bare['p50']:.2f} (target <= 3)")
            for name, r in mine.items():
                if name != "users offset 0":
                    print(f"{backend} {app_label}: {name} CPU / offset-0 CPU = "
                          f"{r['cpu'] / first['cpu']:.2f} (target <= 1.5)")
        floors = {label: r for b, label, n, r in rows if b == backend and label.startswith("floor")}
        if len(floors) == 2:
            print(f"{backend}: floor CPU / bare CPU = {floors['floor']['cpu'] / bare['cpu']:.2f} "
                  "(token check and ledger append alone, no roster read); without the ledger "
                  f"{floors['floor-tok']['cpu'] / bare['cpu']:.2f}")
        ledger = ledgers[backend]
        print(f"{backend}: the ledger adds {ledger['recorded'] / ledger['unrecorded'] - 1:.0%} to a "
              "100-record page (in-process)")


if __name__ == "__main__":
    main()
