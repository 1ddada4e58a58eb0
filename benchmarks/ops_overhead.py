"""What the operations hooks cost per request: request ids, the JSON access line, the request
metrics and the rate limits, measured as server CPU per request.

    .venv/bin/python benchmarks/ops_overhead.py [--students 2000] [--seconds 5] [--rounds 3]

Needs wrk (Debian: apt-get install wrk) and, for the Redis row, Redis at --redis-url. It imports a
demo district into a SQLite store (kept in benchmarks/out/ between runs), then serves it with
`gateway serve --workers 2` (gunicorn, sync workers) four times side by side, one server per
setting:

  off            GATEWAY_METRICS=false, GATEWAY_ACCESS_LOG=false, rate limits 0 (request ids
                 stay: they are not optional)
  logs+metrics   the defaults: JSON access line on stderr (to a file here), request metrics in
                 multiprocess mode (two workers); rate limits 0
  + limits mem   the defaults with the per-app limit on, in process memory (rate and burst so
                 high that nothing is refused: the cost of counting, not of refusing)
  + limits redis the same, counted in Redis (one Lua script per request)

and loads each in turn with `wrk -t1 -c8` for --seconds, interleaved over --rounds rounds, on
  /healthz                           the cheapest endpoint (Flask, no database)
  /users?limit=100                   a OneRoster page (token check, roster read, ledger append)
Server CPU is utime+stime of the gunicorn process tree (master and workers) from /proc, before
and after each run, divided by the requests wrk completed; with Redis, the redis-server's own CPU
is shown apart. Medians over rounds are printed, and each setting's difference to "off".

Then, in process (steadier on a shared machine): a OneRoster page through Flask's test client
with the hooks off and on (CPU of this process, interleaved blocks, medians); and what each piece
costs per call (timeit, median of 5): the WSGI middleware with and without its access line and
metrics, a memory bucket, a Redis bucket (a loopback round trip; with the default burst, one
request in ten makes one).
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import statistics
import subprocess
import sys
import time
import timeit
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchdb import DEFAULT_PG, reset_database  # noqa: E402
from rostering_bench import create_credentials, free_port, start, stop  # noqa: E402

NAME = "ops_overhead"
PAGE = "/ims/oneroster/rostering/v1p2/users?limit=100"
TICKS = os.sysconf("SC_CLK_TCK")
NEVER = {"GATEWAY_APP_RATE_PER_SECOND": "1000000", "GATEWAY_APP_RATE_BURST": "1000000"}


def settings(redis_url: str) -> dict[str, dict[str, str]]:
    """The environment of each server."""
    off = {"GATEWAY_METRICS": "false", "GATEWAY_ACCESS_LOG": "false",
           "GATEWAY_APP_RATE_PER_SECOND": "0", "GATEWAY_IP_RATE_PER_SECOND": "0"}
    on = {"GATEWAY_METRICS": "true", "GATEWAY_ACCESS_LOG": "true",
          "GATEWAY_APP_RATE_PER_SECOND": "0", "GATEWAY_IP_RATE_PER_SECOND": "0"}
    return {"off": off, "logs+metrics": on, "+ limits mem": {**on, **NEVER},
            "+ limits redis": {**on, **NEVER, "GATEWAY_REDIS_URL": redis_url,
                               "GATEWAY_REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex}:"}}


def prepare(workdir: Path, students: int) -> str:
    """A fresh SQLite store with a demo district; its URL."""
    from gateway.demo import generate_demo_bundle
    from gateway.oneroster.csv.importer import import_bundle
    from gateway.store import Database

    url = reset_database("sqlite", workdir, DEFAULT_PG, NAME)
    bundle = workdir / f"{NAME}-bundle-{students}"
    if not (bundle / "manifest.csv").exists():
        generate_demo_bundle(bundle, schools=3, students=students, seed=7)
    database = Database(url)
    with database.session_scope() as session:
        report = import_bundle(session, bundle)
        assert report.outcome == "applied", report.problems[:3]
    database.dispose()
    return url


def tree_ticks(pid: int) -> int:
    """utime+stime, in clock ticks, of ``pid`` and its children (gunicorn's workers)."""
    total = 0
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            pids += [int(child) for child in handle.read().split()]
    except OSError:
        pass
    for each in pids:
        try:
            with open(f"/proc/{each}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def redis_server_pid() -> int | None:
    """The local redis-server, whose CPU the Redis setting adds."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "redis-server":
                    return int(entry.name)
            except OSError:
                continue
    return None


def load(url: str, token: str | None, seconds: int) -> int:
    """Requests wrk completed against ``url`` in ``seconds`` (refusing any non-2xx)."""
    command = ["wrk", "-t1", "-c8", f"-d{seconds}s", url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in output:
        raise SystemExit(f"non-2xx answers from {url}:\n{output}")
    return int(re.search(r"(\d+) requests in", output).group(1))


def measure(servers: dict, token: str, args, redis_pid: int | None) -> dict:
    """CPU microseconds per request of each (setting, endpoint), per round."""
    results: dict = {}
    for _round in range(args.rounds):
        for path, label in (("/healthz", "healthz"), (PAGE, "page")):
            for name, (process, port) in servers.items():
                target = f"http://127.0.0.1:{port}{path}"
                for _ in range(20):  # warm both workers
                    requests.get(target, headers={"Authorization": f"Bearer {token}"}, timeout=30)
                before = tree_ticks(process.pid)
                redis_before = tree_ticks(redis_pid) if redis_pid else 0
                done = load(target, token if label == "page" else None, args.seconds)
                spent = tree_ticks(process.pid) - before
                redis_spent = (tree_ticks(redis_pid) - redis_before) if redis_pid else 0
                results.setdefault((name, label), []).append(
                    (spent / TICKS / done * 1e6, done / args.seconds,
                     redis_spent / TICKS / done * 1e6))
    return results


def in_process(redis_url: str) -> dict[str, float]:
    """Microseconds per call of each piece, in this process."""
    import tempfile

    import redis

    from gateway import metrics
    from gateway.http.observe import Observer
    from gateway.logs import configure_logging
    from gateway.ratelimit import MemoryBuckets, Rate, RedisBuckets

    def bare(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def calls(function, number: int = 20000) -> float:
        return statistics.median(timeit.repeat(function, number=number, repeat=5)) / number * 1e6

    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/x", "REMOTE_ADDR": "127.0.0.1"}
    start = lambda status, headers, exc_info=None: None  # noqa: E731
    ids_only = Observer(bare, access_log=False, metrics=False)
    logged = Observer(bare, access_log=True, metrics=False)
    counted = Observer(bare, access_log=False, metrics=True)
    figures = {"bare WSGI app": calls(lambda: bare(environ, start))}
    figures["+ request id"] = calls(lambda: ids_only(environ, start))
    configure_logging("json")
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")
    try:
        figures["+ request id, access line (/dev/null)"] = calls(lambda: logged(environ, start))
    finally:
        sys.stderr.close()
        sys.stderr = stderr
    figures["+ request id, metrics (one process)"] = calls(lambda: counted(environ, start))
    with tempfile.TemporaryDirectory() as directory:
        metrics.use_multiprocess_dir(directory)
        try:
            figures["+ request id, metrics (multiprocess)"] = calls(lambda: counted(environ, start))
        finally:
            metrics.use_multiprocess_dir(None)
    memory, rate = MemoryBuckets(), Rate(1e9, 1_000_000_000)
    figures["memory bucket take"] = calls(lambda: memory.take("app:1", rate))
    shared = RedisBuckets(redis.Redis.from_url(redis_url))
    key = f"bench-{uuid.uuid4().hex}"
    exact, default = Rate(1e6, 100), Rate(1e6, 1000)
    figures["Redis take, burst 100 (round trip each)"] = calls(
        lambda: shared.take(key + "a", exact), 2000)
    figures["Redis take, burst 1000 (1 trip in 10)"] = calls(
        lambda: shared.take(key + "b", default), 2000)
    return figures


def in_process_page(url: str, client_id: str, secret: str, redis_url: str,
                    blocks: int = 30, block: int = 20) -> dict[str, float]:
    """CPU microseconds of this process per OneRoster page through Flask's test client (no
    sockets, no gunicorn), for an app with the hooks off, on, and on with Redis limits: in
    alternating blocks of ``block`` pages, median over ``blocks`` blocks each. Steadier than the
    served figures on a shared machine."""
    from gateway import create_app

    base = {"DATABASE_URL": url, "SECRET_KEY": "benchmark", "INSTANCE_PATH": "/tmp/ops-bench"}
    off = {"METRICS": False, "ACCESS_LOG": False, "APP_RATE_PER_SECOND": 0,
           "IP_RATE_PER_SECOND": 0}
    never = {"APP_RATE_PER_SECOND": 1e6, "APP_RATE_BURST": 1_000_000}
    apps = {"off": create_app({**base, **off}), "on, limits mem": create_app({**base, **never}),
            "on, limits redis": create_app({**base, **never, "REDIS_URL": redis_url,
                                            "REDIS_KEY_PREFIX": f"bench-{uuid.uuid4().hex}:"})}
    clients = {name: app.test_client() for name, app in apps.items()}
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    token = clients["off"].post("/oauth/token", data={"grant_type": "client_credentials"},
                                headers={"Authorization": f"Basic {basic}"}).get_json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    times: dict[str, list[float]] = {name: [] for name in apps}
    stderr, sys.stderr = sys.stderr, open(os.devnull, "w")  # the access lines
    try:
        for client in clients.values():
            for _ in range(block):
                assert client.get(PAGE, headers=headers).status_code == 200
        for _ in range(blocks):
            for name, client in clients.items():
                started = time.process_time()
                for _ in range(block):
                    client.get(PAGE, headers=headers)
                times[name].append((time.process_time() - started) / block * 1e6)
    finally:
        sys.stderr.close()
        sys.stderr = stderr
        for app in apps.values():
            app.extensions["gateway.db"].dispose()
    return {name: statistics.median(figures) for name, figures in times.items()}


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    url = prepare(args.workdir, args.students)
    client_id, secret = create_credentials(url, None)
    servers: dict = {}
    try:
        for name, env_settings in settings(args.redis_url).items():
            port = free_port()
            slug = re.sub(r"\W+", "-", name).strip("-")
            env = dict(os.environ, GATEWAY_DATABASE_URL=url, GATEWAY_SECRET_KEY="benchmark",
                       GATEWAY_INSTANCE_PATH=str(args.workdir / "instance"),
                       BENCH_LOG=str(args.workdir / f"ops-{slug}.log"), **env_settings)
            servers[name] = (start([sys.executable, "-m", "gateway", "serve", "--port", str(port),
                                    "--workers", "2"], env, port, "/healthz"), port)
        _process, port = servers["off"]
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        issued = requests.post(f"http://127.0.0.1:{port}/oauth/token",
                               data={"grant_type": "client_credentials"},
                               headers={"Authorization": f"Basic {basic}"}, timeout=60)
        token = issued.json()["access_token"]
        print(f"gunicorn sync x2, wrk -t1 -c8 -d{args.seconds}s, {args.rounds} rounds "
              f"interleaved; {args.students:,} students, SQLite; medians")
        results = measure(servers, token, args, redis_server_pid())
    finally:
        for process, _port in servers.values():
            stop(process)
    print(f"  {'setting':<16}{'endpoint':<10}{'CPU us/req':>12}{'vs off':>10}{'req/s':>9}"
          f"{'redis us/req':>14}")
    for label in ("healthz", "page"):
        base = statistics.median(r[0] for r in results[("off", label)])
        for name in servers:
            rows = results[(name, label)]
            cpu = statistics.median(r[0] for r in rows)
            extra = f"{statistics.median(r[2] for r in rows):>14.1f}" if "redis" in name else ""
            print(f"  {name:<16}{label:<10}{cpu:>12.1f}{cpu - base:>+10.1f}"
                  f"{statistics.median(r[1] for r in rows):>9,.0f}{extra}")
    pages = in_process_page(url, client_id, secret, args.redis_url)
    print("in process, a OneRoster page through the test client, CPU us (median of 30 blocks "
          "of 20, interleaved):")
    for name, figure in pages.items():
        print(f"  {name:<40}{figure:>8.1f}{figure - pages['off']:>+9.1f}")
    print("in process, per call (us):")
    for name, figure in in_process(args.redis_url).items():
        print(f"  {name:<40}{figure:>8.2f}")


if __name__ == "__main__":
    main()
