"""What `gateway backup` and `gateway restore` cost on a SQLite instance, and what a backup costs
the apps reading meanwhile.

    .venv/bin/python benchmarks/backup_bench.py [--students 20000] [--seconds 5]

Builds a demo district of --students students in benchmarks/out/backup_bench/ (kept between runs)
with one app sharing everything, serves it with `gateway serve --workers 2`, and has one client
read /users pages (limit 100) one after another: for --seconds alone (the baseline), while
`gateway backup` runs, and for --seconds after it. Printed: the store's and ledger's sizes, the archive's size, the backup's wall time
and CPU (the command's process, from getrusage), the reader's pages per second and p50/p99
latency before, during and after, and a restore of the archive into an empty instance (wall time
and CPU; it verifies every chain).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / "out" / "backup_bench"
PAGE = "/ims/oneroster/rostering/v1p2/users"


def gateway(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run a `gateway` command; stop the benchmark if it fails."""
    result = subprocess.run([sys.executable, "-m", "gateway", *args], env=env, text=True,
                            capture_output=True)
    if result.returncode:
        sys.exit(f"gateway {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def timed(env: dict[str, str], *args: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one `gateway` command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    gateway(env, *args)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def environment(instance: Path) -> dict[str, str]:
    """A `gateway` process's environment on ``instance`` (its SQLite store and key file)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GATEWAY_DATABASE_URL", "GATEWAY_SECRET_KEY")}
    env.update(GATEWAY_INSTANCE_PATH=str(instance), GATEWAY_APP_RATE_PER_SECOND="0",
               GATEWAY_ACCESS_LOG="false", GATEWAY_LOG_FORMAT="text")
    return env


def prepare(instance: Path, students: int) -> dict:
    """The instance with the demo district and an app sharing everything; its credentials."""
    marker = instance / f"bench-{students}.json"
    if marker.exists():
        return json.loads(marker.read_text())
    shutil.rmtree(instance, ignore_errors=True)
    env = environment(instance)
    bundle = WORK / f"bundle-{students}"
    gateway(env, "demo-data", "--out", str(bundle), "--students", str(students), "--force")
    gateway(env, "import", str(bundle))
    policy = WORK / "everything.json"
    policy.write_text(json.dumps({"schools": ["*"], "fields": {"user": ["*"]}}))
    credentials = json.loads(gateway(env, "apps", "create", "--district", "district-1",
                                     "--name", "Bench", "--policy", str(policy), "--json").stdout)
    marker.write_text(json.dumps(credentials))
    return credentials


class Reader(threading.Thread):
    """Reads /users pages one after another, noting when each ended and how long it took."""

    def __init__(self, base: str, token: str, students: int) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.students = base, token, students
        self.samples: list[tuple[float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with requests.Session() as http:
            offset = 0
            while not self.stopping.is_set():
                started = time.perf_counter()
                response = http.get(f"{self.base}{PAGE}", params={"limit": 100, "offset": offset},
                                    headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
                ended = time.perf_counter()
                response.raise_for_status()
                self.samples.append((ended, ended - started))
                offset = (offset + 100) % self.students

    def window(self, start: float, end: float) -> str:
        """Pages per second and p50/p99 latency of the pages that ended in [start, end)."""
        latencies = sorted(d for t, d in self.samples if start <= t < end)
        if len(latencies) < 2:
            return "too few pages"
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return (f"{len(latencies) / (end - start):7.1f} pages/s   p50 "
                f"{statistics.median(latencies) * 1000:6.1f} ms   p99 {p99 * 1000:6.1f} ms")


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "cli"))
    from served import Served  # the tests' real `gateway serve` helper

    WORK.mkdir(parents=True, exist_ok=True)
    instance = WORK / "instance"
    credentials = prepare(instance, args.students)
    env = environment(instance)
    archive = WORK / "backup.tar.gz"
    archive.unlink(missing_ok=True)
    server = Served(env, ["serve", "--workers", "2"])
    try:
        token = requests.post(f"{server.base}/oauth/token",
                              data={"grant_type": "client_credentials"},
                              auth=(credentials["client_id"], credentials["client_secret"]),
                              timeout=30).json()["access_token"]
        reader = Reader(server.base, token, args.students)
        reader.start()
        time.sleep(1)  # warm-up, not counted
        baseline_start = time.perf_counter()
        time.sleep(args.seconds)
        backup_start = time.perf_counter()
        backup_wall, backup_cpu = timed(env, "backup", str(archive))
        backup_end = time.perf_counter()
        time.sleep(args.seconds)
        after_end = time.perf_counter()
        reader.stopping.set()
        reader.join(timeout=60)
    finally:
        server.stop()
    store = instance / "gateway.sqlite3"
    ledger = instance / "gateway-ledger.sqlite3"
    restored = WORK / "restored"
    shutil.rmtree(restored, ignore_errors=True)
    restore_wall, restore_cpu = timed(environment(restored), "restore", str(archive))
    megabytes = (store.stat().st_size + ledger.stat().st_size) / 1e6
    print(f"SQLite instance: {args.students:,} students; store {store.stat().st_size / 1e6:.1f} MB, "
          f"ledger {ledger.stat().st_size / 1e6:.1f} MB; archive {archive.stat().st_size / 1e6:.1f} MB")
    print(f"gateway backup:  {backup_wall:6.2f} s wall, {backup_cpu:6.2f} s CPU "
          f"({megabytes / backup_wall:.0f} MB/s of store and ledger)")
    print(f"gateway restore: {restore_wall:6.2f} s wall, {restore_cpu:6.2f} s CPU (checksums, "
          "chain verification, rename)")
    print("one app reading /users?limit=100 pages back to back, `gateway serve --workers 2`:")
    print(f"  before the backup   {reader.window(baseline_start, backup_start)}")
    print(f"  during the backup   {reader.window(backup_start, backup_end)}")
    print(f"  after the backup    {reader.window(backup_end, after_end)}")


if __name__ == "__main__":
    main()
