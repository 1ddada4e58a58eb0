"""State-scale benchmark (issue 15): ten districts on one PostgreSQL, imported through the job
queue, served by 1, 2 and 4 gunicorn processes, read while another district imports.

    .venv/bin/python benchmarks/scale_bench.py --users 1000000 [--districts 10] [--seconds 10]

Needs wrk (Debian: apt-get install wrk), PostgreSQL and Redis (defaults: this machine's). Steps:

1. Bundles: ``--districts`` demo districts (each its own seed and district sourcedId) sharing
   ``--users`` users between them, generated once into the work folder; a spare district for
   step 4 (two versions of it, alternating between runs, so that a rerun changes it).
2. Imports: the ten imports are queued at once (``gateway import --no-wait``) and run by
   ``--queue-workers`` ``gateway worker`` processes; prints the total wall time, each job's time,
   and the peak resident memory of the workers' process trees (work horses included), sampled
   every 0.2 s.
3. REST: one share-everything app of one district reads ``GET /users?limit=100`` at offsets
   spread over the district (wrk, ``--connections`` connections) served by ``gateway serve`` with 1,
   2 and 4 workers: pages/s and server CPU per page (the gunicorn tree plus the PostgreSQL
   backends serving it, from /proc), and what each added worker adds; beside it, in the same run,
   the bare endpoint (benchmarks/bare_app.py serving the app's first page as fixed bytes) with as
   many gunicorn workers, and the ratio of the two CPU figures.
   Ledger growth: rows and bytes of the ledger's tables per million records served, over a first
   full sync of the district by the app (every span new) and a second (spans updated in place),
   each followed by ``gateway ledger fold`` so that nothing is left pending.
4. Reads during an import: the same load with 2 workers, p50/p99 before, then while the spare
   district imports through the queue.

The PostgreSQL schema ``gateway_scale_<users>`` is kept between runs (``--fresh`` starts over).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchdb import DEFAULT_PG  # noqa: E402
from rostering_bench import backend_pids, free_port, start, stop, ticks, tree_pids  # noqa: E402

BASE = "/ims/oneroster/rostering/v1p2"
USERS_PER_STUDENT = 1.517  # the demo district's users (students, teachers, guardians...) per student
APPLICATION_NAME = "gateway-scale-bench"
TICK = os.sysconf("SC_CLK_TCK")


def district_bundles(workdir: Path, users: int, districts: int) -> list[tuple[Path, str, str]]:
    """Generate (once) the ``districts`` demo bundles; return (folder, sourcedId, name) each."""
    students = max(100, round(users / districts / USERS_PER_STUDENT))
    return [_bundle(workdir / f"scale-{students}" / f"district-{index:02d}", students, 1000 + index,
                    f"district-{index:02d}") for index in range(1, districts + 1)]


def spare_bundle(workdir: Path, users: int, districts: int) -> tuple[Path, str, str]:
    """The district imported during step 4. Its bundle alternates between two seeds from run to
    run, so that a rerun imports a changed district rather than an unchanged one (with --force:
    replacing a whole district trips the mass-change guard)."""
    students = max(100, round(users / districts / USERS_PER_STUDENT))
    marker = workdir / f"scale-{students}" / "spare-imports"
    runs = int(marker.read_text()) if marker.exists() else 0
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(runs + 1))
    variant = runs % 2
    folder, district, name = _bundle(workdir / f"scale-{students}" / f"spare-{variant}", students,
                                     2000 + variant, "district-spare")
    return folder, district, name


def _bundle(folder: Path, students: int, seed: int, district: str) -> tuple[Path, str, str]:
    from gateway.demo import generate_demo_bundle

    # The marker sits beside the bundle: a file inside it would be read as part of the bundle.
    marker = folder.parent / f"{folder.name}.complete"
    if not marker.exists():
        started = time.perf_counter()
        result = generate_demo_bundle(folder, students=students, schools=max(1, students // 2500),
                                      seed=seed, district_sourced_id=district)
        marker.write_text(json.dumps({"users": result.counts["users.csv"], "name": _district_name(folder)}))
        print(f"  generated {folder.name}: {result.counts['users.csv']:,} users "
              f"in {time.perf_counter() - started:.0f}s", flush=True)
    return folder, district, json.loads(marker.read_text())["name"]


def _district_name(folder: Path) -> str:
    """The district org's name in a generated bundle."""
    import csv

    with open(folder / "orgs.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["type"] == "district":
                return row["name"]
    raise SystemExit(f"{folder}: no district org")


def database_url(pg_url: str, users: int) -> str:
    """The benchmark's schema on ``pg_url``, its connections named so their CPU can be found."""
    return (f"{pg_url}{'&' if '?' in pg_url else '?'}application_name={APPLICATION_NAME}"
            f"&options=-csearch_path%3Dgateway_scale_{users}")


def reset_schema(pg_url: str, users: int, fresh: bool) -> bool:
    """Create (or, with ``fresh``, recreate) the schema and migrate it; True when it is empty."""
    from sqlalchemy import func, select, text

    from gateway.store import Database
    from gateway.store.migrate import upgrade_database
    from gateway.store.models import District

    admin = Database(pg_url)
    with admin.engine.begin() as conn:
        if fresh:
            conn.execute(text(f"DROP SCHEMA IF EXISTS gateway_scale_{users} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS gateway_scale_{users}"))
    admin.dispose()
    database = Database(database_url(pg_url, users))
    upgrade_database(database)
    with database.session_scope() as session:
        empty = session.execute(select(func.count()).select_from(District)).scalar_one() == 0
    database.dispose()
    return empty


def gateway(args: list[str], env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """Run the ``gateway`` CLI with the benchmark's settings."""
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=env, text=True,
                          capture_output=True, **kwargs)


def rss_bytes(pid: int) -> int:
    """Resident memory of one process, 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


class MemorySampler(threading.Thread):
    """Samples the resident memory of process trees every 0.2 s; keeps each tree's peak (the
    peak of the sum of its processes) and the peak of any one process."""

    def __init__(self, roots: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.peak_tree = {root: 0 for root in roots}
        self.peak_process = 0
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until :meth:`finish`."""
        while not self.done.wait(0.2):
            for root in self.roots:
                sizes = [rss_bytes(pid) for pid in tree_pids(root)]
                self.peak_tree[root] = max(self.peak_tree[root], sum(sizes))
                self.peak_process = max(self.peak_process, max(sizes, default=0))

    def finish(self) -> None:
        """Stop sampling."""
        self.done.set()
        self.join()


def queue_imports(bundles, env: dict[str, str], force: bool = False) -> list[str]:
    """Queue one import per bundle without waiting; return the job ids."""
    job_ids = []
    for folder, _district, _name in bundles:
        # Each bundle carries its district's org, so no --district is needed.
        queued = gateway(["import", str(folder), "--no-wait", "--json", *(["--force"] if force else [])], env)
        if queued.returncode != 0:
            raise SystemExit(f"queueing {folder} failed:\n{queued.stdout}\n{queued.stderr}")
        job_ids.append(json.loads(queued.stdout)["job"])
    return job_ids


def wait_for_jobs(job_ids: list[str], env: dict[str, str]) -> dict[str, dict]:
    """Poll ``gateway jobs --json`` until every job has finished or failed; return them by id,
    each with its ``duration_seconds``. A failed job, or an import not applied, ends the run."""
    from datetime import datetime

    while True:
        listed = gateway(["jobs", "--json", "--finished", "100"], env)
        if listed.returncode != 0:
            raise SystemExit(f"gateway jobs failed:\n{listed.stderr}")
        jobs = {job["id"]: job for job in json.loads(listed.stdout) if job["id"] in job_ids}
        states = [jobs.get(job_id, {}).get("status") for job_id in job_ids]
        if all(state in ("finished", "failed") for state in states):
            break
        time.sleep(1)
    for job in jobs.values():
        outcome = ((job.get("result") or {}).get("report") or {}).get("outcome")
        if job["status"] == "failed" or outcome != "applied":
            raise SystemExit(f"an import job did not apply: {json.dumps(job, indent=1)[:2000]}")
        job["duration_seconds"] = (datetime.fromisoformat(job["ended_at"])
                                   - datetime.fromisoformat(job["started_at"])).total_seconds()
    return jobs


def start_workers(count: int, env: dict[str, str], log: Path) -> list[subprocess.Popen]:
    """Start ``count`` ``gateway worker`` processes."""
    workers = []
    for _ in range(count):
        handle = open(log, "ab")
        workers.append(subprocess.Popen([sys.executable, "-m", "gateway", "worker"], env=env,
                                        stdout=handle, stderr=handle, start_new_session=True))
        handle.close()
    time.sleep(2)
    for worker in workers:
        if worker.poll() is not None:
            raise SystemExit(f"a worker exited at once; see {log}")
    return workers


def import_step(bundles, env: dict[str, str], workers: int, log: Path) -> float:
    """Queue the districts' imports at once through ``workers`` workers; print and return the
    mean time of one import (the length of step 4's load)."""
    processes = start_workers(workers, env, log)
    sampler = MemorySampler([process.pid for process in processes])
    sampler.start()
    started = time.perf_counter()
    try:
        job_ids = queue_imports(bundles, env)
        jobs = wait_for_jobs(job_ids, env)
    finally:
        elapsed = time.perf_counter() - started
        sampler.finish()
        for process in processes:
            stop(process)
    durations = [job["duration_seconds"] for job in jobs.values()]
    peaks = [job.get("peak_memory_mb") or 0 for job in jobs.values()]
    print(f"  {len(bundles)} imports through {workers} workers: {elapsed:.0f} s in all; "
          f"one import {min(durations):.0f}-{max(durations):.0f} s (median {statistics.median(durations):.0f})")
    print(f"  peak resident memory: per worker tree "
          f"{', '.join(f'{peak / 2**20:,.0f} MiB' for peak in sampler.peak_tree.values())}; "
          f"largest single process {sampler.peak_process / 2**20:,.0f} MiB; "
          f"each job's own peak (gateway jobs) {min(peaks):,}-{max(peaks):,} MiB")
    return statistics.median(durations)


def create_app(url: str, district: str) -> tuple[str, str]:
    """A share-everything app of ``district``; return its client credentials."""
    from gateway.oauth.service import register_app
    from gateway.sharing.policy import share_everything_document
    from gateway.sharing.service import app_district_id, set_policy
    from gateway.sharing.snapshots import settle_snapshots
    from gateway.store import Database
    from gateway.store.models import utcnow

    database = Database(url)
    with database.session_scope() as session:
        credentials = register_app(session, name="scale benchmark", district_sourced_id=district,
                                   scopes=None, now=utcnow())
        set_policy(session, app_id=credentials.app_id,
                   district_id=app_district_id(session, credentials.app_id, district),
                   document=share_everything_document(), now=utcnow())
    settle_snapshots(database.engine)
    database.dispose()
    return credentials.client_id, credentials.client_secret


def table_sizes(url: str, users: int) -> dict[str, tuple[int, int]]:
    """Every table of the schema: (rows, bytes including indexes and TOAST)."""
    from sqlalchemy import text

    from gateway.store import Database

    database = Database(url)
    sizes = {}
    with database.engine.connect() as conn:
        names = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                             {"schema": f"gateway_scale_{users}"}).scalars().all()
        for name in names:
            rows = conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            size = conn.execute(text("SELECT pg_total_relation_size(:table)"),
                                {"table": f'gateway_scale_{users}."{name}"'}).scalar_one()
            sizes[name] = (rows, size)
    database.dispose()
    return sizes


def backend_ticks(pg_url: str) -> int:
    """CPU ticks of the PostgreSQL backends the benchmark's server holds open (by application
    name): their work for the server's requests."""
    return ticks(backend_pids(pg_url, APPLICATION_NAME))


def wrk_pages(urls: list[str], token: str, seconds: int, connections: int, workdir: Path) -> dict:
    """wrk over ``urls`` (one server) in turn, round robin; requests, rps, p50, p99."""
    script = workdir / "scale-paths.lua"
    server = urls[0].split(BASE, 1)[0]
    paths = ", ".join(json.dumps(url[len(server):]) for url in urls)
    script.write_text(
        f"local paths = {{{paths}}}\nlocal n = 0\n"
        "request = function()\n  n = n + 1\n"
        "  return wrk.format('GET', paths[(n % #paths) + 1])\nend\n")
    output = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                             "-H", f"Authorization: Bearer {token}", "-s", str(script),
                             server], capture_output=True, text=True, check=False)
    return _parse_wrk(output.stdout + output.stderr)


def _parse_wrk(output: str) -> dict:
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    found = re.search(r"(\d+) requests in", output)
    if not found:
        raise SystemExit(f"wrk failed:\n{output}")
    latency = {}
    for pct in ("50", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", output).groups()
        latency[pct] = float(value) * units[unit]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {"requests": int(found.group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50": latency["50"], "p99": latency["99"],
            "errors": int(non_2xx.group(1)) if non_2xx else 0}


def serve(env: dict[str, str], workers: int) -> tuple[subprocess.Popen, int]:
    """``gateway serve`` with ``workers`` gunicorn processes; return it and its port."""
    port = free_port()
    server = start([sys.executable, "-m", "gateway", "serve", "--port", str(port),
                    "--workers", str(workers)], env, port, "/healthz")
    return server, port


def page_urls(port: int, token: str, count: int = 16) -> list[str]:
    """``count`` 100-record pages spread evenly over the app's users."""
    total = int(requests.get(f"http://127.0.0.1:{port}{BASE}/users?limit=1",
                             headers={"Authorization": f"Bearer {token}"}, timeout=60).headers["X-Total-Count"])
    step = max(100, total // count)
    return [f"http://127.0.0.1:{port}{BASE}/users?limit=100&offset={offset}"
            for offset in range(0, max(1, total - 100), step)][:count]


def token_for(port: int, client: tuple[str, str]) -> str:
    """A client-credentials token from the server on ``port``."""
    issued = requests.post(f"http://127.0.0.1:{port}/oauth/token", auth=client,
                           data={"grant_type": "client_credentials"}, timeout=60)
    issued.raise_for_status()
    return issued.json()["access_token"]


def rest_step(env: dict[str, str], client: tuple[str, str], args, pg_url: str) -> None:
    """Pages/s and CPU per page with 1, 2 and 4 gunicorn processes, beside the bare endpoint
    (benchmarks/bare_app.py: the app's own first page as fixed bytes) with as many processes."""
    print(f"\n  {'server':<9}{'workers':>7}{'pages/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'CPU ms/page':>13}{'(py':>7}{'+ pg)':>7}{'errors':>8}")
    previous = None
    for workers in (1, 2, 4):
        server, port = serve(env, workers)
        try:
            token = token_for(port, client)
            urls = page_urls(port, token)
            page = requests.get(urls[0], headers={"Authorization": f"Bearer {token}"}, timeout=60)
            (args.workdir / "scale-bare-page.json").write_bytes(page.content)
            wrk_pages(urls, token, 2, args.connections, args.workdir)  # warm every worker
            before = (tree_ticks_all(server.pid), backend_ticks(pg_url))
            result = wrk_pages(urls, token, args.seconds, args.connections, args.workdir)
            after = (tree_ticks_all(server.pid), backend_ticks(pg_url))
        finally:
            stop(server)
        python_ms = (after[0] - before[0]) / TICK * 1000 / max(1, result["requests"])
        pg_ms = (after[1] - before[1]) / TICK * 1000 / max(1, result["requests"])
        added = f"  (+{result['rps'] - previous:,.0f} pages/s for the added workers)" if previous else ""
        previous = result["rps"]
        bare = bare_page(args, workers)
        print(f"  {'bare':<9}{workers:>7}{bare['rps']:>10,.0f}{bare['p50']:>9.1f}{bare['p99']:>9.1f}"
              f"{bare['cpu_ms']:>13.2f}{'':>14}{bare['errors']:>8}")
        print(f"  {'gateway':<9}{workers:>7}{result['rps']:>10,.0f}{result['p50']:>9.1f}"
              f"{result['p99']:>9.1f}{python_ms + pg_ms:>13.2f}{python_ms:>7.2f}{pg_ms:>7.2f}"
              f"{result['errors']:>8}  (x{(python_ms + pg_ms) / bare['cpu_ms']:.1f} the bare CPU)"
              f"{added}", flush=True)


def bare_page(args, workers: int) -> dict:
    """The bare endpoint under the same load: its figures and CPU ms per page."""
    import shutil

    port = free_port()
    env = dict(os.environ, BARE_PAGE_FILE=str(args.workdir / "scale-bare-page.json"),
               BENCH_LOG=str(args.workdir / "scale-server.log"), PYTHONPATH=str(ROOT / "benchmarks"))
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    server = start([gunicorn, "-w", str(workers), "-b", f"127.0.0.1:{port}", "bare_app:app"],
                   env, port, "/page")
    try:
        _wrk_plain(f"http://127.0.0.1:{port}/page", 2, args.connections)  # warm every worker
        before = tree_ticks_all(server.pid)
        result = _wrk_plain(f"http://127.0.0.1:{port}/page", args.seconds, args.connections)
        after = tree_ticks_all(server.pid)
    finally:
        stop(server)
    result["cpu_ms"] = (after - before) / TICK * 1000 / max(1, result["requests"])
    return result


def _wrk_plain(url: str, seconds: int, connections: int) -> dict:
    output = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                            capture_output=True, text=True, check=False)
    return _parse_wrk(output.stdout + output.stderr)


def tree_ticks_all(pid: int) -> int:
    """utime+stime, in clock ticks, of a process tree (gunicorn master and its workers)."""
    return ticks(tree_pids(pid))


def full_sync(port: int, token: str, threads: int = 8) -> int:
    """Read every page of the app's users once, ``threads`` at a time; the records served."""
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Authorization": f"Bearer {token}"}
    total = int(requests.get(f"http://127.0.0.1:{port}{BASE}/users?limit=1", headers=headers,
                             timeout=60).headers["X-Total-Count"])
    local = threading.local()

    def read(offset: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        answer = local.session.get(f"http://127.0.0.1:{port}{BASE}/users?limit=100&offset={offset}",
                                   headers=headers, timeout=300)
        answer.raise_for_status()
        return len(answer.json()["users"])

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(read, range(0, total, 100)))


def ledger_step(url: str, users: int, env: dict[str, str], client: tuple[str, str], args) -> None:
    """Rows and bytes the store gains per million records served, for a first full sync of the
    district by the app (every person's span is new) and for a second (spans updated in place;
    PostgreSQL's autovacuum would have run between two daily syncs, so a VACUUM runs here)."""
    from sqlalchemy import text

    from gateway.store import Database

    server, port = serve(env, 2)
    try:
        token = token_for(port, client)
        growth = []
        for sync in (1, 2):
            before = table_sizes(url, users)
            started = time.perf_counter()
            records = full_sync(port, token)
            elapsed = time.perf_counter() - started
            fold = gateway(["ledger", "fold"], env)  # what is pending is counted as folded
            if fold.returncode != 0:
                raise SystemExit(f"gateway ledger fold failed:\n{fold.stderr}")
            growth.append((sync, records, elapsed, before, table_sizes(url, users)))
            database = Database(url)
            with database.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM"))
            database.dispose()
    finally:
        stop(server)
    for sync, records, elapsed, before, after in growth:
        print(f"\n  ledger growth, full sync {sync}: {records:,} records in {elapsed:.0f} s "
              f"({records / 100 / elapsed:,.0f} pages/s)")
        print(f"  {'table':<32}{'rows/M records':>16}{'bytes/M records':>18}")
        for name in sorted(after):
            rows = after[name][0] - before.get(name, (0, 0))[0]
            size = after[name][1] - before.get(name, (0, 0))[1]
            if name.startswith("ledger") and (rows or size):
                print(f"  {name:<32}{rows * 1e6 / records:>16,.0f}{size * 1e6 / records:>18,.0f}")


def during_import_step(env: dict[str, str], client: tuple[str, str], spare, seconds: float,
                       args, log: Path) -> None:
    """p50/p99 of the same load before and while a district imports through the queue."""
    server, port = serve(env, 2)
    workers = start_workers(1, env, log)
    try:
        token = token_for(port, client)
        urls = page_urls(port, token)
        wrk_pages(urls, token, 2, args.connections, args.workdir)
        quiet = wrk_pages(urls, token, args.seconds, args.connections, args.workdir)
        job_ids = queue_imports([spare], env, force=True)
        time.sleep(1)
        busy = wrk_pages(urls, token, max(args.seconds, int(seconds * 0.8)), args.connections, args.workdir)
        still_running = wait_for_jobs(job_ids, env)[job_ids[0]]
    finally:
        stop(server)
        for worker in workers:
            stop(worker)
    print(f"\n  reads while a district imports (2 server workers, {args.connections} connections):")
    for label, result in (("before", quiet), ("during", busy)):
        print(f"  {label:<8}{result['rps']:>9,.0f} pages/s  p50 {result['p50']:.1f} ms  "
              f"p99 {result['p99']:.1f} ms  errors {result['errors']}")
    print(f"  (the import took {still_running['duration_seconds']:.0f} s; the load ran "
          f"{max(args.seconds, int(seconds * 0.8))} s from 1 s after it was queued)")


def main() -> None:
    """Parse arguments and run the four steps."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000000)
    parser.add_argument("--districts", type=int, default=10)
    parser.add_argument("--queue-workers", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--fresh", action="store_true", help="drop the schema and import again")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    log = args.workdir / "scale-server.log"

    print(f"scale benchmark: {args.users:,} users in {args.districts} districts, PostgreSQL", flush=True)
    bundles = district_bundles(args.workdir, args.users, args.districts)
    url = database_url(args.postgresql_url, args.users)
    env = dict(os.environ, GATEWAY_DATABASE_URL=url, GATEWAY_REDIS_URL=args.redis_url,
               GATEWAY_INSTANCE_PATH=str(args.workdir / "scale-instance"),
               GATEWAY_APP_RATE_PER_SECOND="0", BENCH_LOG=str(log))
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()  # the benchmark's own Redis database
    one_import = 60.0
    if reset_schema(args.postgresql_url, args.users, args.fresh):
        print("\nstep 2: imports", flush=True)
        one_import = import_step(bundles, env, args.queue_workers, log)
    else:
        print("\nstep 2: skipped (the districts are already imported; --fresh imports them again)")
    client = create_app(url, bundles[0][1])
    print("\nstep 3: REST pages with 1, 2 and 4 server processes", flush=True)
    rest_step(env, client, args, args.postgresql_url)
    ledger_step(url, args.users, env, client, args)
    print("\nstep 4: reads during an import", flush=True)
    during_import_step(env, client, spare_bundle(args.workdir, args.users, args.districts),
                       one_import, args, log)


if __name__ == "__main__":
    main()
