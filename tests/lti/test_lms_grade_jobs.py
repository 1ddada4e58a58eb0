"""Grades back to the LMS on the job queue: the served gateway has Redis, a real ``gateway
worker`` sends each score as an ``lms-grades`` job, and the LMS (``lti1p3platform``) refuses
the first post; the queue's scheduler retries it after the configured wait, and the admin sees
the failure in ``gateway lms grades --failed`` and ``gateway jobs`` meanwhile."""
from __future__ import annotations

import json
import os

import pytest

from gateway import create_app
from gateway.cli import cli

from test_end_to_end import serve
from test_end_to_end import tool_state  # noqa: F401  (the same served app)
from test_lms_end_to_end import launch_and_score, lms  # noqa: F401
from workers import WorkerProcess, remove_queues, wait_until

pytestmark = pytest.mark.slow

SECRET = "queued-e2e-secret"
FIRST_WAIT = 5


@pytest.fixture
def platform(database_url, tmp_path, district, passwords, app_id, redis_url, redis_prefix):
    """The gateway on a real port with job queues of this test's own in Redis."""
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET,
                      "INSTANCE_PATH": str(tmp_path / "platform"), "ISSUER": "http://127.0.0.1",
                      "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": redis_prefix,
                      "LMS_GRADE_FIRST_WAIT_SECONDS": FIRST_WAIT})
    with serve(app) as server:
        app.config["ISSUER"] = f"http://127.0.0.1:{server.server_port}"
        yield app
    app.extensions["gateway.db"].dispose()
    remove_queues(redis_url, redis_prefix)


@pytest.fixture
def worker(platform, database_url, tmp_path, redis_url, redis_prefix):
    """A `gateway worker` on the platform's store and queues, with its secret key (it signs the
    client assertion for the LMS's token endpoint)."""
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY=SECRET,
               GATEWAY_LOG_FORMAT="text", GATEWAY_REDIS_URL=redis_url,
               GATEWAY_REDIS_KEY_PREFIX=redis_prefix,
               GATEWAY_INSTANCE_PATH=str(tmp_path / "worker-instance"))
    process = WorkerProcess(env, tmp_path / "worker.log")
    yield process
    process.stop()


def gateway_json(platform, *args: str):
    result = platform.test_cli_runner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def grade_jobs(platform) -> list[dict]:
    return [job for job in gateway_json(platform, "jobs") if job["kind"] == "lms-grades"]


def test_a_refused_grade_is_retried_by_the_queue_after_its_wait(platform, lms, tool_state,
                                                                app_id, worker):
    lms.unavailable = 1
    launch_and_score(platform, lms, tool_state, app_id)
    # The first attempt, in the worker: refused, visible to the admin both ways.
    [failed] = wait_until(lambda: gateway_json(platform, "lms", "grades", "--failed"),
                          what="the first, refused attempt")
    assert (failed["status"], failed["attempts"]) == ("pending", 1)
    assert failed["last_error"] == "the LMS scores endpoint answered 503"
    assert lms.scores == []
    [job] = wait_until(lambda: [j for j in grade_jobs(platform) if j["status"] == "scheduled"],
                       timeout=FIRST_WAIT + 30, what="the job scheduled for its retry")
    assert job["description"] == f"send grade {failed['id']} to its LMS"
    assert job["retries_left"] == 6
    # After the wait, the worker's scheduler queues the retry, which the LMS takes.
    wait_until(lambda: lms.scores, timeout=FIRST_WAIT + 30, what="the retried grade")
    assert [(s["userId"], s["scoreGiven"]) for s in lms.scores] == [("lms-bart", 80.0)]
    wait_until(lambda: gateway_json(platform, "lms", "grades")[0]["status"] == "sent",
               what="the row marked sent")
    [sent] = gateway_json(platform, "lms", "grades")
    assert sent["attempts"] == 2 and sent["last_error"] is None
    assert gateway_json(platform, "lms", "grades", "--failed") == []
    [finished] = wait_until(lambda: [j for j in grade_jobs(platform)
                                     if j["status"] == "finished"], what="the finished job")
    assert finished["result"] == {"forward_id": sent["id"], "sent": True, "note": None}
    assert finished["attempts"] == 2


def test_a_waiting_retry_shows_the_lms_answer_and_the_admin_can_queue_one(platform, lms,
                                                                          tool_state, app_id,
                                                                          worker):
    lms.unavailable = 1000
    launch_and_score(platform, lms, tool_state, app_id)
    [job] = wait_until(lambda: [j for j in grade_jobs(platform) if j["status"] == "scheduled"],
                       timeout=30, what="the job scheduled for its retry")
    # `gateway jobs` says why the retry waits: the LMS's answer to the attempt before.
    assert job["reason"].endswith("attempt 1 (retried later): the LMS scores endpoint "
                                  "answered 503"), job["reason"]
    # The text listing too (polled: the wait may end between two listings, and the
    # retry, refused again, waits twice as long).
    wait_until(lambda: "retry after: GradeNotTaken: grade forward" in platform.test_cli_runner()
               .invoke(cli, ["jobs"]).stdout, timeout=30, what="the listed reason")
    [failed] = gateway_json(platform, "lms", "grades", "--failed")
    result = platform.test_cli_runner().invoke(cli, ["lms", "retry-grades", "--id",
                                                     str(failed["id"])])
    assert result.exit_code == 0 and "1 queued as jobs" in result.output, result.output
    # The admin's job runs at once, beside the waiting retry, and is refused the same way.
    wait_until(lambda: lms.unavailable <= 998, what="the admin's attempt")
    assert len(grade_jobs(platform)) == 2
    assert lms.scores == []
