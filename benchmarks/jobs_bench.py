"""Imports queued at once through workers: total time, CPU and peak memory per job.

    .venv/bin/python benchmarks/jobs_bench.py --districts 10 --students 2000 --workers 1,2 \
        [--backend sqlite|postgresql|both] [--redis redis://127.0.0.1:6379/0]

Generates one demo district and copies it as ``--districts`` districts of their own (the
district's sourcedId renamed in every file), then for each backend and each worker count: an
empty store, every import queued at once (through the job API, the bundles read in place, so no
spool copy is timed), and that many ``gateway worker --burst`` processes started together; it
prints the wall time until the last worker exits, the CPU of the workers and their work horses
(user + system), imports per minute, the largest work horse's peak RSS, and the cost per added
worker beside the one-worker run of the same invocation. On SQLite imports take turns on the
store's one write lock, so a second worker buys little; on PostgreSQL they run side by side.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchdb import DEFAULT_PG, reset_database  # noqa: E402

NAME = "jobs"


def make_districts(workdir: Path, districts: int, students: int) -> list[Path]:
    """``districts`` copies of one generated district, each with a sourcedId of its own."""
    from gateway.demo import generate_demo_bundle

    template = workdir / "template"
    generate_demo_bundle(template, students=students)
    bundles = []
    for n in range(districts):
        folder = workdir / f"district-{n:02d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for path in template.iterdir():
            text = path.read_text(encoding="utf-8")
            (folder / path.name).write_text(re.sub(r"\bdistrict-1\b", f"bench-d{n:02d}", text),
                                            encoding="utf-8")
        bundles.append(folder)
    return bundles


def run(backend: str, url: str, redis_url: str, bundles: list[Path], workers: int,
        workdir: Path) -> dict:
    """Queue every bundle, run ``workers`` burst workers, and measure."""
    from gateway.config import build_settings
    from gateway.jobs.kinds import import_params
    from gateway.jobs.queue import connect_queue_redis, enqueue_job, fetch_job

    from workers import remove_queues

    prefix = f"jobs-bench:{uuid.uuid4().hex[:8]}:"
    settings = build_settings({"DATABASE_URL": url})
    redis = connect_queue_redis(redis_url)
    options = {"dry_run": False, "force": False, "district": None, "district_name": None,
               "strict": False, "format": None}
    ids = [enqueue_job(redis, prefix, "import", import_params(
        str(bundle), source=bundle.name, options=options, settings=settings, spooled=False),
        default_timeout=3600) for bundle in bundles]
    env = dict(os.environ, GATEWAY_DATABASE_URL=url, GATEWAY_REDIS_URL=redis_url,
               GATEWAY_REDIS_KEY_PREFIX=prefix, GATEWAY_SECRET_KEY="bench",
               GATEWAY_INSTANCE_PATH=str(workdir / "instance"), GATEWAY_LOG_FORMAT="text")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "gateway", "worker", "--burst"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(workers)]
    for process in processes:
        process.wait()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    jobs = [fetch_job(redis, job_id) for job_id in ids]
    outcomes = [job.return_value()["report"]["outcome"] if job.get_status() == "finished"
                else str(job.get_status()) for job in jobs]
    peak = max(job.meta.get("peak_rss_kb", 0) for job in jobs) / 1024
    remove_queues(redis_url, prefix)
    for key in redis.scan_iter(match=f"{prefix}*"):
        redis.delete(key)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"backend": backend, "workers": workers, "wall": wall, "cpu": cpu, "peak_mb": peak,
            "applied": outcomes.count("applied"), "jobs": len(ids)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--districts", type=int, default=10)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG)
    parser.add_argument("--redis", default=os.environ.get("GATEWAY_TEST_REDIS_URL",
                                                          "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="jobs-bench-") as tmp:
        workdir = Path(tmp)
        bundles = make_districts(workdir, args.districts, args.students)
        print(f"{args.districts} districts of {args.students} students, queued at once")
        print(f"{'backend':<11}{'workers':>8}{'wall s':>9}{'CPU s':>8}{'imports/min':>13}"
              f"{'peak MB/job':>13}{'applied':>9}  vs 1 worker")
        for backend in backends:
            baseline = None
            for workers in counts:
                url = reset_database(backend, workdir, args.pg_url, NAME)
                result = run(backend, url, args.redis, bundles, workers, workdir)
                if baseline is None:
                    baseline = result
                ratio = (f"wall x{result['wall'] / baseline['wall']:.2f}, "
                         f"CPU x{result['cpu'] / baseline['cpu']:.2f}")
                print(f"{backend:<11}{workers:>8}{result['wall']:>9.1f}{result['cpu']:>8.1f}"
                      f"{60 * result['jobs'] / result['wall']:>13.1f}{result['peak_mb']:>13.0f}"
                      f"{result['applied']:>6}/{result['jobs']:<3} {ratio}")


if __name__ == "__main__":
    main()
