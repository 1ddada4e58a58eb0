"""A busy district: an app syncs through `gateway serve` while the district imports and changes the
app's policy, each a real process. Readers may slow down, never fail; the import and the policy
changes never fail for them; every page served is in the ledger. And two imports of one district
at once take turns, each with an exact report."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import func, select

from gateway.cli import cli
from gateway.store.models import ImportRun, User
from gateway.store.sharing import LedgerEntry

from served import Served

BASE = "/ims/oneroster/rostering/v1p2"
SECRET_KEY = "test-secret-key"


def _environment(database_url: str, tmp_path: Path) -> dict[str, str]:
    # The reader reads as fast as it can for as long as the writes take: the app's rate limit
    # (tested apart, tests/http/test_rate_limits.py) is off so that every read is a real one.
    return dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY=SECRET_KEY,
                GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"), GATEWAY_APP_RATE_PER_SECOND="0")


def _gateway(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gateway", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class Reader(threading.Thread):
    """An app syncing: `/users` pages, one after the other as fast as they come, until stopped."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, token
        self.statuses: list[int] = []
        self.disclosing = 0  # pages that carried people's records
        self.stopping = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        offset = 0
        while not self.stopping.is_set():
            response = session.get(f"{self.base}{BASE}/users",
                                   params={"limit": 100, "offset": offset},
                                   headers={"Authorization": f"Bearer {self.token}"}, timeout=120)
            self.statuses.append(response.status_code)
            if response.status_code == 200 and response.json()["users"]:
                self.disclosing += 1
            offset = (offset + 100) % 1000

    def stop(self) -> list[int]:
        self.stopping.set()
        self.join(timeout=150)
        return self.statuses


def _policy_file(tmp_path: Path, name: str, grades: list[str]) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"schools": ["*"], "grades": grades,
                                "fields": {"user": ["*"], "demographics": []}}))
    return path


def _count(database, model) -> int:
    with database.session_scope() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_imports_and_policy_changes_succeed_while_an_app_reads(runner, database, database_url,
                                                               tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert runner.invoke(cli, ["demo-data", "--out", str(first), "--students", "300"]).exit_code == 0
    # The next night's export: a larger district, so the import runs for a while.
    assert runner.invoke(cli, ["demo-data", "--out", str(second), "--students", "6000",
                               "--seed", "2"]).exit_code == 0
    assert runner.invoke(cli, ["import", str(first)]).exit_code == 0
    created = runner.invoke(cli, ["apps", "create", "--district", "district-1", "--name", "Sync",
                                  "--policy", str(_policy_file(tmp_path, "p0", ["05", "06"])),
                                  "--json"])
    assert created.exit_code == 0, created.output
    credentials = json.loads(created.stdout)

    env = _environment(database_url, tmp_path)
    server = Served(env, ["serve", "--workers", "2"])
    try:
        token = requests.post(f"{server.base}/oauth/token", data={"grant_type": "client_credentials"},
                              auth=(credentials["client_id"], credentials["client_secret"]),
                              timeout=30).json()["access_token"]
        readers = [Reader(server.base, token), Reader(server.base, token)]
        for reader in readers:
            reader.start()
        time.sleep(1)
        changes = []
        for n, grades in enumerate((["03"], ["04", "05"], ["05", "06", "07"])):
            changes.append(_gateway(env, "apps", "policy", str(credentials["app_id"]),
                                    str(_policy_file(tmp_path, f"p{n + 1}", grades))))
            changes[-1].communicate(timeout=120)
            time.sleep(0.5)
        importing = _gateway(env, "import", str(second), "--force")
        import_output, _ = importing.communicate(timeout=300)
        time.sleep(1)
        statuses = [status for reader in readers for status in reader.stop()]
    finally:
        server.stop()

    assert [change.returncode for change in changes] == [0, 0, 0]
    assert importing.returncode == 0, import_output
    assert "import applied" in import_output
    assert len(statuses) >= 10 and set(statuses) == {200}, statuses
    # The new data is in, and every page the app received was recorded before it left.
    assert _count(database, User) > 6000
    disclosing = sum(reader.disclosing for reader in readers)
    assert disclosing >= 10
    assert _count(database, LedgerEntry) == disclosing


def test_two_imports_of_a_district_at_once_take_turns(runner, database, database_url, tmp_path):
    bundle = tmp_path / "bundle"
    assert runner.invoke(cli, ["demo-data", "--out", str(bundle), "--students", "2000"]).exit_code == 0
    env = _environment(database_url, tmp_path)
    assert runner.invoke(cli, ["db", "upgrade"]).exit_code == 0
    both = [_gateway(env, "import", str(bundle)), _gateway(env, "import", str(bundle))]
    outputs = [process.communicate(timeout=300)[0] for process in both]
    assert [process.returncode for process in both] == [0, 0], outputs
    with database.session_scope() as session:
        runs = session.execute(select(ImportRun).order_by(ImportRun.finished_at)).scalars().all()
        users = session.execute(select(func.count()).select_from(User)).scalar_one()
    assert [run.outcome for run in runs] == ["applied", "applied"]
    # The first created everything; the second, counted after the first committed, changed nothing.
    first, second = (run.counts["users"] for run in runs)
    assert first["added"] == users and first["unchanged"] == 0
    assert second["added"] == 0 and second["changed"] == 0 and second["unchanged"] == users
