"""With Redis, `gateway import` queues the import (its bundle copied into the spool), a real
`gateway worker` runs it, and the command waits and reports as it does in-process; `gateway
jobs` and /metrics show the queues."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from gateway.cli import cli
from gateway.store.models import ImportRun, User

from bundles import small_district, write_bundle


def _jobs(runner) -> list[dict]:
    listed = runner.invoke(cli, ["jobs", "--json"])
    assert listed.exit_code == 0, listed.output
    return json.loads(listed.output)


def _depth(client, queue: str, state: str) -> float:
    body = client.get("/metrics").get_data(as_text=True)
    line = f'gateway_job_queue_depth{{queue="{queue}",state="{state}"}} '
    found = [row for row in body.splitlines() if row.startswith(line)]
    assert found, body
    return float(found[0][len(line):])


def test_a_queued_import_is_run_by_a_worker_and_reported_by_the_command(
        queued_app, start_worker, database, queue_settings, tmp_path):
    worker = start_worker()
    runner = queued_app.test_cli_runner()
    path = write_bundle(tmp_path / "bundle", small_district())
    result = runner.invoke(cli, ["import", str(path)])
    assert result.exit_code == 0, result.output + worker.output()
    lines = result.output.splitlines()
    assert lines[0].startswith("job ")
    job_id = lines[0][len("job "):]
    assert "users.csv             bulk           7        0          0        0         0" in lines
    assert lines[-1] == "import applied"
    with database.session_scope() as session:
        assert session.execute(select(ImportRun.outcome, ImportRun.source)).all() == [
            ("applied", str(path))]
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 7
    # The job removed its copy of the bundle from the spool once it had reported.
    assert list((tmp_path / "spool").iterdir()) == []

    [job] = _jobs(runner)
    assert (job["id"], job["kind"], job["queue"], job["status"]) == (
        job_id, "import", "imports", "finished")
    assert job["description"] == f"import {path}"
    assert job["progress"]["done"] == job["progress"]["total"] > 0
    assert job["attempts"] == 1 and job["reason"] is None
    assert job["result"]["report"]["outcome"] == "applied"
    listed = runner.invoke(cli, ["jobs"])
    assert listed.output.splitlines()[0].startswith(f"{job_id}  imports  finished  100% ")
    assert "applied (import run #1)" in listed.output
    assert _depth(queued_app.test_client(), "imports", "finished") == 1

    # The same report as JSON, and a refused bundle's exit status, through the worker too.
    files = small_district()
    files["users"][0]["enabledUser"] = "maybe"
    refused = runner.invoke(cli, ["import", "--json", str(write_bundle(tmp_path / "bad", files))])
    assert refused.exit_code == 1
    report = json.loads(refused.output)
    assert (report["outcome"], report["problem_count"]) == ("rejected", 1)
    assert report["job"] != job_id
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == 7


def test_an_import_queued_without_waiting_waits_for_a_worker(queued_app, start_worker, database,
                                                             tmp_path):
    runner = queued_app.test_cli_runner()
    path = write_bundle(tmp_path / "bundle", small_district())
    queued = runner.invoke(cli, ["import", "--no-wait", "--json", str(path)])
    assert queued.exit_code == 0, queued.output
    job_id = json.loads(queued.output)["job"]
    text = runner.invoke(cli, ["import", "--no-wait", "--dry-run", str(path)])
    assert text.output.startswith("queued as job ")

    jobs = _jobs(runner)
    assert [(job["id"] == job_id, job["status"]) for job in jobs] == [(True, "queued"),
                                                                      (False, "queued")]
    assert jobs[1]["description"] == f"import {path} (dry run)"
    client = queued_app.test_client()
    assert _depth(client, "imports", "queued") == 2
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(ImportRun)).scalar_one() == 0

    worker = start_worker("--burst", "--queues", "imports")
    assert worker.process.wait(timeout=120) == 0, worker.output()
    jobs = {job["id"]: job for job in _jobs(runner)}
    assert jobs[job_id]["status"] == "finished"
    assert jobs[job_id]["result"]["report"]["outcome"] == "applied"
    assert [job["result"]["report"]["outcome"] for job in jobs.values()
            if job["id"] != job_id] == ["dry-run"]
    assert _depth(client, "imports", "queued") == 0
    assert _depth(client, "imports", "finished") == 2
    with database.session_scope() as session:
        assert sorted(session.execute(select(ImportRun.outcome)).scalars()) == ["applied",
                                                                               "dry-run"]


def test_worker_refuses_unknown_queues(queued_app):
    result = queued_app.test_cli_runner().invoke(cli, ["worker", "--queues", "imports,mail"])
    assert result.exit_code == 2
    assert "the queues are imports, default" in result.output


def test_an_import_is_not_queued_while_redis_does_not_answer(make_app, closed_port_url, database,
                                                             tmp_path):
    app = make_app(REDIS_URL=closed_port_url, SPOOL_DIR=str(tmp_path / "spool"))
    path = write_bundle(tmp_path / "bundle", small_district())
    result = app.test_cli_runner().invoke(cli, ["import", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the job queue (GATEWAY_REDIS_URL) does not answer: ")
    assert result.output.rstrip().endswith("; nothing was queued")
    # Its spooled copy is gone with it, and nothing was imported.
    assert list((tmp_path / "spool").iterdir()) == []
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(ImportRun)).scalar_one() == 0


def test_a_scope_rebuild_is_a_job_for_a_worker(queued_app, start_worker, tmp_path):
    runner = queued_app.test_cli_runner()
    path = write_bundle(tmp_path / "bundle", small_district())
    assert runner.invoke(cli, ["import", "--no-wait", str(path)]).exit_code == 0
    queued = runner.invoke(cli, ["apps", "rebuild-scopes", "--district", "d1", "--no-wait",
                                 "--json"])
    assert queued.exit_code == 1 and "no district 'd1'" in queued.output  # not imported yet
    worker = start_worker("--burst")
    assert worker.process.wait(timeout=120) == 0, worker.output()
    queued = runner.invoke(cli, ["apps", "rebuild-scopes", "--district", "d1", "--no-wait",
                                 "--json"])
    assert queued.exit_code == 0, queued.output
    job_id = json.loads(queued.output)["job"]
    [job] = [job for job in _jobs(runner) if job["id"] == job_id]
    assert (job["kind"], job["queue"], job["status"]) == ("snapshots", "default", "queued")
    worker = start_worker("--burst")
    assert worker.process.wait(timeout=120) == 0, worker.output()
    [job] = [job for job in _jobs(runner) if job["id"] == job_id]
    assert job["status"] == "finished"
    assert job["result"] == {"district": "d1", "snapshots_refreshed": 0}
