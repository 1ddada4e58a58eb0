"""An import killed in the middle of writing leaves the store exactly as it was."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from bundles import small_district, write_bundle
from gateway.cli import cli
from gateway.store.models import Enrollment, Role, User

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
    while not _writing_started(database, database_url):
        if process.poll() is not None:
            output = process.stdout.read().decode()
            process.stdout.close()
            raise AssertionError("the import ended before it could be interrupted: " + output)
        assert time.monotonic() < deadline, "the import never reached its merge"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL

    assert _snapshot(database) == before

    # And the store is still usable: the same bundle imports cleanly afterwards.
    result = runner.invoke(cli, ["import", str(bundle)])
    assert result.exit_code == 0, result.output
    assert _snapshot(database)[1] == [before[1][0] + EXTRA_STUDENTS, before[1][1] + EXTRA_STUDENTS]
