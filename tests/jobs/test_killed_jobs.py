"""A work horse or a worker killed (SIGKILL) mid-import: the store is as it was (the import is one
transaction), and the job is tried again, or failed with the reason when no retry is left."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from gateway.cli import cli
from gateway.demo import generate_demo_bundle
from gateway.jobs.queue import connect_queue_redis, fetch_job, job_notes
from gateway.store.import_runs import INTERRUPTED, interrupted_runs
from gateway.store.models import ImportRun, User

from bundles import small_district, write_bundle
from workers import wait_until

STUDENTS = 20000
"""Enough for an import that takes seconds, time to kill it half-way."""


@pytest.fixture(scope="module")
def large_bundle(tmp_path_factory):
    """A demo district large enough to be killed mid-import."""
    folder = tmp_path_factory.mktemp("large") / "district"
    generate_demo_bundle(folder, students=STUDENTS)
    return folder


def _queued(runner, bundle) -> str:
    """Queue an import of ``bundle`` without waiting for it; the job's id."""
    queued = runner.invoke(cli, ["import", "--no-wait", "--json", str(bundle)])
    assert queued.exit_code == 0, queued.output
    return json.loads(queued.output)["job"]


def _under_way(redis, job_id: str, attempt: int = 1) -> dict:
    """The job's meta once ``attempt`` of it has read part of the bundle (not all of it)."""
    def reading():
        # The meta of a killed attempt stays until the retry's horse starts.
        meta = fetch_job(redis, job_id).meta
        progress = meta.get("progress")
        return (meta if meta.get("attempts") == attempt and progress
                and 0 < progress["done"] < progress["total"] else None)

    return wait_until(reading, timeout=120, what=f"attempt {attempt} to be importing")


def _kill_mid_import(redis, job_id: str, attempt: int) -> int:
    """SIGKILL the work horse of ``attempt`` of the job once it has read part of the bundle;
    the pid killed."""
    pid = _under_way(redis, job_id, attempt)["pid"]
    os.kill(pid, signal.SIGKILL)
    return pid


def _store_counts(database) -> tuple[int, list[tuple[str, str]]]:
    with database.session_scope() as session:
        users = session.execute(select(func.count()).select_from(User)).scalar_one()
        runs = session.execute(select(ImportRun).order_by(ImportRun.id)).scalars().all()
        dead = interrupted_runs(session.connection(), runs)
        return users, [(INTERRUPTED if run.id in dead else run.outcome, run.source)
                       for run in runs]


def test_a_killed_work_horse_is_retried_and_its_import_applied_once(
        queued_app, start_worker, database, queue_settings, large_bundle):
    runner = queued_app.test_cli_runner()
    worker = start_worker()
    job_id = _queued(runner, large_bundle)
    redis = connect_queue_redis(queue_settings["REDIS_URL"])
    _kill_mid_import(redis, job_id, attempt=1)

    finished = wait_until(lambda: fetch_job(redis, job_id).get_status() == "finished",
                          timeout=300, what="the retry to finish")
    assert finished, worker.output()
    assert "Work-horse terminated unexpectedly; waitpid returned 9 (signal 9)" in worker.output()
    job = fetch_job(redis, job_id)
    attempts, notes = job_notes(redis, queue_settings["REDIS_KEY_PREFIX"], job_id)
    assert attempts == 2
    result = job.return_value()
    assert result["report"]["outcome"] == "applied"
    first, second = notes["import_runs"]
    assert result["run_id"] == second
    users, runs = _store_counts(database)
    # The first attempt's run died with its process; nothing of it was written, so the retry
    # imported the whole bundle.
    assert runs == [(INTERRUPTED, str(large_bundle)), ("applied", str(large_bundle))]
    assert result["report"]["files"]["users"]["added"] == users > STUDENTS


def test_a_job_killed_on_every_attempt_fails_with_the_reason_and_changes_nothing(
        queued_app, start_worker, database, queue_settings, queue_env, large_bundle, tmp_path):
    runner = queued_app.test_cli_runner()
    small = write_bundle(tmp_path / "small", small_district())
    assert runner.invoke(cli, ["import", "--no-wait", str(small)]).exit_code == 0
    worker = start_worker()
    # A waiting command, in a process of its own, as an operator would run it.
    waiting = subprocess.Popen([sys.executable, "-m", "gateway", "import", str(large_bundle)],
                               env=queue_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    redis = connect_queue_redis(queue_settings["REDIS_URL"])
    try:
        def queued_big_job():
            jobs = json.loads(runner.invoke(cli, ["jobs", "--json"]).output)
            return next((job["id"] for job in jobs if job["description"] ==
                         f"import {large_bundle}"), None)

        job_id = wait_until(queued_big_job, what="the large import to be queued")
        before = wait_until(lambda: _store_counts(database)[0] or None,
                            what="the small import to be applied")
        _kill_mid_import(redis, job_id, attempt=1)
        _kill_mid_import(redis, job_id, attempt=2)
        out, err = waiting.communicate(timeout=120)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    reason = "Work-horse terminated unexpectedly; waitpid returned 9 (signal 9);"
    assert waiting.returncode == 1, out + err
    assert f"Error: job {job_id} failed: {reason}" in err

    [job] = [job for job in json.loads(runner.invoke(cli, ["jobs", "--json"]).output)
             if job["id"] == job_id]
    assert (job["status"], job["reason"], job["attempts"], job["retries_left"]) == (
        "failed", reason, 2, 0)
    listed = runner.invoke(cli, ["jobs"]).output
    assert f"{job_id}  imports  failed" in listed and f"    {reason}" in listed
    users, runs = _store_counts(database)
    assert users == before == 7
    assert runs == [("applied", str(small)), (INTERRUPTED, str(large_bundle)),
                    (INTERRUPTED, str(large_bundle))]
    # The failed job keeps its spooled bundle (for a look, or to queue again); the worker lives on.
    assert [folder.name.startswith("import-") for folder in (tmp_path / "spool").iterdir()] == [True]
    assert worker.process.poll() is None


def test_a_worker_killed_mid_import_leaves_its_work_horse_to_finish_the_job(
        queued_app, start_worker, database, queue_settings, large_bundle):
    """The work horse is a process group of its own: SIGKILL of the worker alone (not of its
    group, as a supervisor stopping the whole unit does) does not stop the import half-way."""
    runner = queued_app.test_cli_runner()
    worker = start_worker()
    job_id = _queued(runner, large_bundle)
    redis = connect_queue_redis(queue_settings["REDIS_URL"])
    _under_way(redis, job_id)
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=30)
    wait_until(lambda: fetch_job(redis, job_id).get_status() == "finished", timeout=300,
               what="the orphaned work horse to finish")
    users, runs = _store_counts(database)
    assert runs == [("applied", str(large_bundle))]
    assert fetch_job(redis, job_id).return_value()["report"]["files"]["users"]["added"] == users


@pytest.mark.slow
def test_a_job_whose_worker_and_work_horse_died_is_retried_once_its_heartbeat_stops(
        queued_app, start_worker, database, queue_settings, large_bundle):
    """A host lost with its worker and horse: nothing answers for the started job. Once its
    heartbeat has lapsed (RQ: about 90 s), listing the jobs requeues it (a retry was left), and
    another worker imports it whole."""
    runner = queued_app.test_cli_runner()
    worker = start_worker()
    job_id = _queued(runner, large_bundle)
    redis = connect_queue_redis(queue_settings["REDIS_URL"])
    horse = _under_way(redis, job_id)["pid"]
    os.killpg(worker.process.pid, signal.SIGKILL)
    os.kill(horse, signal.SIGKILL)
    worker.process.wait(timeout=30)

    def listed_status():
        jobs = json.loads(runner.invoke(cli, ["jobs", "--json"]).output)
        return next(job["status"] for job in jobs if job["id"] == job_id)

    assert listed_status() == "started"
    wait_until(lambda: listed_status() == "queued", timeout=150,
               what="the abandoned job to be requeued")
    start_worker()
    wait_until(lambda: fetch_job(redis, job_id).get_status() == "finished", timeout=300,
               what="the retry to finish")
    users, runs = _store_counts(database)
    assert runs == [(INTERRUPTED, str(large_bundle)), ("applied", str(large_bundle))]
    assert fetch_job(redis, job_id).return_value()["report"]["files"]["users"]["added"] == users
