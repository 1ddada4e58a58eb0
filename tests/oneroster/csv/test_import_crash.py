"""An import killed in the middle of writing leaves the store exactly as it was, and the import
history shows the run as interrupted."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from bundles import small_district, write_bundle
from gateway.cli import cli
from gateway.store.models import Enrollment, ImportRun, Role, User, utcnow

EXTRA_STUDENTS = 20000


def _big_district():
    files = small_district()
    files["users"][0]["givenName"] = "Lisa-changed"
    for n in range(EXTRA_STUDENTS):
        files["users"].append({"sourcedId": f"x{n}", "enabledUser": "true", "username": f"x{n}",
                               "givenName": "Student", "familyName": f"Number {n}", "grades": "09",
                               "primaryOrgSourcedId": "s2"})
        files["roles"].append({"sourcedId": f"rx{n}", "userSourcedId": f"x{n}", "roleType": "primary",
                               "role": "student", "orgSourcedId": "s2"})
        files["enrollments"].append({"sourcedId": f"ex{n}", "classSourcedId": "k2", "schoolSourcedId": "s2",
                                     "userSourcedId": f"x{n}", "role": "student"})
    return files


def _snapshot(database):
    with database.session_scope() as session:
        users = [tuple(r) for r in session.execute(select(
            User.sourced_id, User.given_name, User.status, User.date_last_modified).order_by(User.sourced_id))]
        counts = [session.execute(select(func.count()).select_from(m)).scalar_one() for m in (Role, Enrollment)]
    return users, counts


def _writing_started(database, database_url: str) -> bool:
    """Whether the import has reached the merge (the moment a crash could leave half the rows)."""
    if database_url.startswith("sqlite"):
        wal = Path(database_url[len("sqlite:///"):] + "-wal")
        return wal.exists() and wal.stat().st_size > 500_000
    with database.engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE '%INSERT INTO users (district_id%'")).scalar_one() > 0


def test_killing_an_import_midway_leaves_the_store_as_it_was(runner, database, database_url, tmp_path):
    assert runner.invoke(cli, ["import", str(write_bundle(tmp_path / "first", small_district()))]).exit_code == 0
    before = _snapshot(database)
    bundle = write_bundle(tmp_path / "big", _big_district())

    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    process = subprocess.Popen([sys.executable, "-m", "gateway", "import", str(bundle)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120

    def wait_for(condition, what):
        while not condition():
            if process.poll() is not None:
                output = process.stdout.read().decode()
                process.stdout.close()
                raise AssertionError("the import ended before it could be interrupted: " + output)
            assert time.monotonic() < deadline, f"the import never reached {what}"
            time.sleep(0.005)

    # The run is in the history from its start, committed apart from the import's transaction
    # (seen while the import reads the bundle: the history shows the run is still going).
    wait_for(lambda: len(_runs(runner)) == 2, "its start")
    running = _runs(runner)[0]
    assert (running["outcome"], running["source"], running["finished_at"]) == ("running", str(bundle), None)
    wait_for(lambda: _writing_started(database, database_url), "its merge")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL

    assert _snapshot(database) == before
    # PostgreSQL ends the dead client's sessions (and so the run's lock) as it notices them gone.
    while (interrupted := _runs(runner)[0])["outcome"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (interrupted["id"], interrupted["outcome"], interrupted["finished_at"]) == (
        running["id"], "interrupted", None)
    assert interrupted["message"] == (
        f"its process ({process.pid} on {socket.gethostname()}) ended before the import did; "
        "the import's transaction was rolled back, so nothing of it was written")
    listing = runner.invoke(cli, ["imports"]).output.splitlines()
    assert listing[0].startswith(f"#{running['id']} ") and f" interrupted - {bundle}  +0 ~0 =0 -0" in listing[0]

    # And the store is still usable: the same bundle imports cleanly afterwards.
    result = runner.invoke(cli, ["import", str(bundle)])
    assert result.exit_code == 0, result.output
    assert _snapshot(database)[1] == [before[1][0] + EXTRA_STUDENTS, before[1][1] + EXTRA_STUDENTS]
    assert [r["outcome"] for r in _runs(runner)] == ["applied", "interrupted", "applied"]


def _runs(runner):
    """The import history, newest first, as ``gateway imports --json`` prints it."""
    result = runner.invoke(cli, ["imports", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_running_run_is_judged_by_its_lock_or_its_process(runner, database, database_url):
    # Rows as a run's start leaves them, for processes that are gone: one of this host's (a
    # finished child's id), one of another host's.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with database.session_scope() as session:
        for pid, host in ((child.pid, socket.gethostname()), (1, "another-host.example")):
            session.add(ImportRun(source="x.zip", started_at=utcnow(), outcome="running", counts={},
                                  error_count=0, pid=pid, host=host))
    outcomes = [r["outcome"] for r in _runs(runner)]
    if database_url.startswith("sqlite"):
        # SQLite cannot see another host's processes: that run may still be going.
        assert outcomes == ["running", "interrupted"]
    else:
        # PostgreSQL: no session holds either run's lock, wherever it ran.
        assert outcomes == ["interrupted", "interrupted"]
