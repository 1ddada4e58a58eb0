"""Backups and restores, as an operator runs them: `gateway backup` of a SQLite instance while a
real server serves an app's sync and an import runs, `gateway restore` into an empty instance, the
ledger verified against the backup's heads and heads kept apart, and the restored instance served
to the same app, whose full sync must come back byte for byte (pseudonyms included, which need the
restored secret key). A damaged or altered archive is refused and leaves nothing. On PostgreSQL,
the README's pg_dump / pg_restore procedure as written, into a database of the test's own."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from gateway import create_app
from gateway.backup import LEDGER_NAME, MANIFEST_NAME, SECRET_NAME, STORE_NAME
from gateway.cli import cli
from gateway.store import Database
from gateway.store.migrate import head_revision, upgrade_database

from served import Served

TEST_DATABASE_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
README = Path(__file__).resolve().parents[2] / "README.md"
BASE = "/ims/oneroster/rostering/v1p2"
ISSUER = "http://gateway.test"
COLLECTIONS = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments")
# Pseudonymized ids and masked names: a restore that lost the secret key changes every id.
POLICY = {"schools": ["*"], "grades": ["*"], "classes": ["*"],
          "fields": {"user": ["*"], "demographics": []},
          "mask": {"user.familyName": "initial"}, "pseudonymize": ["user.sourcedId"]}

sqlite_only = pytest.mark.skipif(bool(TEST_DATABASE_URL),
                                 reason="gateway backup/restore copy the SQLite store; the "
                                        "PostgreSQL procedure is tested on PostgreSQL")


def _environment(instance: Path, **settings: str) -> dict[str, str]:
    """A `gateway` process's environment: the instance folder, its SQLite store and secret key
    file unless ``settings`` say otherwise, hrefs independent of the port served on."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("GATEWAY_DATABASE_URL", "GATEWAY_SECRET_KEY")}
    env.update(GATEWAY_INSTANCE_PATH=str(instance), GATEWAY_ISSUER=ISSUER,
               GATEWAY_APP_RATE_PER_SECOND="0", GATEWAY_LOG_FORMAT="text", **settings)
    return env


def _gateway(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


def _ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _set_up_district(env: dict[str, str], tmp_path: Path, students: int) -> dict:
    """The demo district imported and a pseudonymizing app connected; its credentials."""
    bundle = tmp_path / "bundle"
    _ok(_gateway(env, "demo-data", "--out", str(bundle), "--students", str(students)))
    _ok(_gateway(env, "import", str(bundle)))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    return json.loads(_ok(_gateway(env, "apps", "create", "--district", "district-1", "--name",
                                   "Sync", "--policy", str(policy), "--json")))


def _token(base: str, credentials: dict) -> str:
    response = requests.post(f"{base}/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(credentials["client_id"], credentials["client_secret"]),
                             timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def full_sync(base: str, credentials: dict) -> dict[str, list[bytes]]:
    """Every page of every rostering collection, as the bodies the app received."""
    headers = {"Authorization": f"Bearer {_token(base, credentials)}"}
    bodies: dict[str, list[bytes]] = {}
    with requests.Session() as http:
        for collection in COLLECTIONS:
            pages = bodies[collection] = []
            offset = 0
            while True:
                response = http.get(f"{base}{BASE}/{collection}", headers=headers, timeout=120,
                                    params={"limit": 500, "offset": offset})
                assert response.status_code == 200, (collection, response.text)
                pages.append(response.content)
                if len(response.json()[collection]) < 500:
                    break
                offset += 500
    assert bodies["users"][0].startswith(b'{"users":[{')
    # The policy's pseudonyms, which only the same secret key gives again.
    assert b'"sourcedId":"stu-' not in bodies["users"][0]
    return bodies


def _user_count(bodies: dict[str, list[bytes]]) -> int:
    return sum(len(json.loads(page)["users"]) for page in bodies["users"])


class Reader(threading.Thread):
    """An app syncing `/users` pages one after another until stopped."""

    def __init__(self, base: str, credentials: dict) -> None:
        super().__init__(daemon=True)
        self.base, self.token = base, _token(base, credentials)
        self.statuses: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with requests.Session() as http:
            offset = 0
            while not self.stopping.is_set():
                response = http.get(f"{self.base}{BASE}/users", timeout=120,
                                    params={"limit": 100, "offset": offset},
                                    headers={"Authorization": f"Bearer {self.token}"})
                self.statuses.append(response.status_code)
                offset = (offset + 100) % 300

    def stop(self) -> list[int]:
        self.stopping.set()
        self.join(timeout=150)
        return self.statuses


def _manifest(archive: Path) -> dict:
    with tarfile.open(archive, "r:gz") as tar:
        return json.loads(tar.extractfile(MANIFEST_NAME).read())


def _heads(verified: list[dict]) -> list[dict]:
    return [{"district": d["district"], "seq": d["head_seq"], "hash": d["head_hash"]}
            for d in verified if d["head_seq"]]


@sqlite_only
@pytest.mark.slow
def test_a_backup_taken_while_serving_and_importing_restores_to_the_same_sync(tmp_path):
    original, restored = tmp_path / "original", tmp_path / "restored"
    env = _environment(original)
    credentials = _set_up_district(env, tmp_path, students=300)
    nightly = tmp_path / "nightly"
    _ok(_gateway(env, "demo-data", "--out", str(nightly), "--students", "1500", "--seed", "2"))
    archive = tmp_path / "backups" / "gateway.tar.gz"
    archive.parent.mkdir()
    server = Served(env, ["serve", "--workers", "2"])
    try:
        before = full_sync(server.base, credentials)
        reader = Reader(server.base, credentials)
        reader.start()
        kept = tmp_path / "kept-heads.json"
        kept.write_text(_ok(_gateway(env, "ledger", "heads", "--json")))
        # The nightly import and the backup at once: the copy holds the import whole or not at all.
        importing = subprocess.Popen([sys.executable, "-m", "gateway", "import", str(nightly),
                                      "--force"], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        backup = _gateway(env, "backup", str(archive))
        import_output, _ = importing.communicate(timeout=300)
        statuses = reader.stop()
        after = full_sync(server.base, credentials)
    finally:
        server.stop()
    assert backup.returncode == 0, backup.stderr
    assert importing.returncode == 0, import_output
    assert len(statuses) >= 5 and set(statuses) == {200}, statuses
    assert _user_count(after) > _user_count(before)
    assert "copying the store" in backup.stderr and "store: 100%" in backup.stderr
    assert backup.stdout.startswith(f"backup written to {archive} (")
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    assert not [p for p in archive.parent.iterdir() if p != archive]
    manifest = _manifest(archive)
    assert manifest["migration_head"] == head_revision()
    assert manifest["secret_key"]["source"] == "instance-file"
    assert sorted(manifest["files"]) == [LEDGER_NAME, STORE_NAME, SECRET_NAME]
    [head] = manifest["ledger_heads"]
    assert head["district"] == "district-1" and head["seq"] >= len(before["users"])

    restoring = _gateway(_environment(restored), "restore", str(archive), "--json")
    outcome = json.loads(_ok(restoring))
    assert "verifying the ledger of district district-1" in restoring.stderr
    assert outcome["revision"] == head_revision() and outcome["migrated_from"] is None
    assert [(c["district"], c["head_seq"], c["head_hash"]) for c in outcome["ledgers"]] == [
        ("district-1", head["seq"], head["hash"])]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in restored.iterdir()} == {
        "gateway.sqlite3": "0o600", "gateway-ledger.sqlite3": "0o600", "secret_key": "0o600"}
    assert (restored / "secret_key").read_bytes() == (original / "secret_key").read_bytes()

    renv = _environment(restored)
    verified = json.loads(_ok(_gateway(renv, "ledger", "verify", "--json")))
    assert [d["ok"] for d in verified] == [True]
    assert _heads(verified) == manifest["ledger_heads"]
    checked = _gateway(renv, "ledger", "verify", "--heads", str(kept))
    assert checked.returncode == 0 and "every kept head in" in checked.stdout, checked.stderr

    server = Served(renv, ["serve"])
    try:
        again = full_sync(server.base, credentials)
    finally:
        server.stop()
    # The copy is the store before the import or after it, never a mix.
    assert again == (after if _user_count(again) == _user_count(after) else before)


def _instance_app(instance: Path, **settings):
    """An application on the instance's own SQLite store."""
    return create_app({"TESTING": True, "INSTANCE_PATH": str(instance), "ISSUER": ISSUER,
                       "DATABASE_URL": f"sqlite:///{instance / 'gateway.sqlite3'}", **settings})


@pytest.fixture
def small_backup(tmp_path):
    """A small instance with a few ledger entries, and its backup archive."""
    instance = tmp_path / "original"
    app = _instance_app(instance)
    runner = app.test_cli_runner()
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "30"]).exit_code == 0
    shown = runner.invoke(cli, ["demo-credentials", "--json"])
    credentials = json.loads(shown.stdout)
    client = app.test_client()
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(credentials["client_id"], credentials["client_secret"])).json
    for offset in (0, 10, 20):
        assert client.get(f"{BASE}/users?limit=10&offset={offset}", headers={
            "Authorization": f"Bearer {token['access_token']}"}).status_code == 200
    archive = tmp_path / "backup.tar.gz"
    made = runner.invoke(cli, ["backup", str(archive)])
    assert made.exit_code == 0, made.output
    app.extensions["gateway.db"].dispose()
    return archive


def _restore(target: Path, archive: Path, *args: str, **settings):
    app = _instance_app(target, **settings)
    try:
        return app.test_cli_runner().invoke(cli, ["restore", str(archive), *args])
    finally:
        app.extensions["gateway.db"].dispose()


def _rewrite(archive: Path, out: Path, change, *, fix_checksums: bool) -> Path:
    """A copy of ``archive`` whose extracted files ``change(folder)`` altered, with the manifest's
    checksums recomputed (an altered archive that is consistent) or left (a damaged one)."""
    folder = out.with_suffix(".d")
    folder.mkdir()
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(folder, filter="data")
    change(folder)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    if fix_checksums:
        for name in manifest["files"]:
            manifest["files"][name]["sha256"] = hashlib.sha256(
                (folder / name).read_bytes()).hexdigest()
    with tarfile.open(out, "w:gz") as tar:
        body = json.dumps(manifest).encode()
        member = tarfile.TarInfo(MANIFEST_NAME)
        member.size = len(body)
        tar.addfile(member, io.BytesIO(body))
        for name in manifest["files"]:
            tar.add(folder / name, arcname=name)
    return out


def _in_ledger(folder: Path, *statements: str) -> None:
    connection = sqlite3.connect(folder / LEDGER_NAME)
    with connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


def _change_a_name(folder: Path) -> None:
    connection = sqlite3.connect(folder / STORE_NAME)
    with connection:
        connection.execute("UPDATE users SET given_name = 'Mallory' WHERE id = 1")
    connection.close()


@sqlite_only
@pytest.mark.parametrize("damage, message", [
    ("truncated", "is damaged or truncated"),
    ("store changed", "gateway.sqlite3 in"),
    ("entry edited", "entry 2 was edited"),
    ("last entry removed", "the ledger ends at entry 2, before the kept head (entry 3)"),
    ("not a backup", "is not a gateway backup"),
])
def test_a_damaged_or_altered_archive_is_refused_and_leaves_nothing(small_backup, tmp_path,
                                                                    damage, message):
    if damage == "truncated":
        archive = tmp_path / "cut.tar.gz"
        archive.write_bytes(small_backup.read_bytes()[: small_backup.stat().st_size // 2])
    elif damage == "store changed":
        archive = _rewrite(small_backup, tmp_path / "x.tar.gz", _change_a_name, fix_checksums=False)
    elif damage == "entry edited":
        archive = _rewrite(small_backup, tmp_path / "x.tar.gz", lambda folder: _in_ledger(
            folder, "UPDATE ledger_entries SET record_count = 99 WHERE seq = 2"),
            fix_checksums=True)
    elif damage == "last entry removed":
        def cut(folder: Path) -> None:
            connection = sqlite3.connect(folder / LEDGER_NAME)
            previous = connection.execute(
                "SELECT hash FROM ledger_entries WHERE seq = 2").fetchone()[0]
            connection.close()
            _in_ledger(folder, "DELETE FROM ledger_pending WHERE seq = 3",
                       "DELETE FROM ledger_entries WHERE seq = 3",
                       f"UPDATE ledger_heads SET seq = 2, hash = '{previous}'")
        archive = _rewrite(small_backup, tmp_path / "x.tar.gz", cut, fix_checksums=True)
    else:
        archive = tmp_path / "other.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(README, arcname="README.md")
    target = tmp_path / "target"
    target.mkdir(mode=0o700)
    result = _restore(target, archive)
    assert result.exit_code == 1
    assert message in result.output and "Nothing was restored." in result.output, result.output
    # Only what the command's own start made (the secret key of an empty instance) is there.
    assert sorted(p.name for p in target.iterdir()) == ["secret_key"]


@sqlite_only
def test_the_manifest_records_the_chain_and_a_restore_checks_heads_kept_apart(small_backup,
                                                                             tmp_path):
    manifest = _manifest(small_backup)
    [head] = manifest["ledger_heads"]
    assert head["seq"] == 3
    kept = tmp_path / "heads.json"
    kept.write_text(json.dumps([{**head, "hash": "f" * 64}]))
    refused = _restore(tmp_path / "a", small_backup, "--heads", str(kept))
    assert refused.exit_code == 1
    assert ("district district-1: entry 3 has another hash than the kept head's"
            in refused.output), refused.output
    assert not (tmp_path / "a" / "gateway.sqlite3").exists()
    kept.write_text(json.dumps([{**head, "seq": 2, "hash": "0" * 64}]))
    assert "entry 2 has another hash" in _restore(tmp_path / "b", small_backup, "--heads",
                                                  str(kept)).output
    kept.write_text(json.dumps([head]))
    restored = _restore(tmp_path / "c", small_backup, "--heads", str(kept))
    assert restored.exit_code == 0, restored.output
    assert f"district district-1: 3 ledger entries, chain intact; head 3 {head['hash']}" in (
        restored.output)


@sqlite_only
def test_a_store_that_holds_data_is_replaced_only_when_forced(small_backup, tmp_path):
    target = tmp_path / "target"
    assert _restore(target, small_backup).exit_code == 0
    again = _restore(target, small_backup)
    assert again.exit_code == 1
    assert "is not empty: gateway.sqlite3 (" in again.output and "--force" in again.output
    forced = _restore(target, small_backup, "--force")
    assert forced.exit_code == 0, forced.output
    assert not [p for p in target.iterdir() if p.name.startswith(".gateway-restore-")]


@sqlite_only
def test_the_secret_key_in_effect_must_be_the_backups(tmp_path):
    instance = tmp_path / "original"
    app = _instance_app(instance, SECRET_KEY="kept-in-a-vault")
    runner = app.test_cli_runner()
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "10"]).exit_code == 0
    archive = tmp_path / "backup.tar.gz"
    made = runner.invoke(cli, ["backup", str(archive)])
    app.extensions["gateway.db"].dispose()
    assert made.exit_code == 0, made.output
    assert "the secret key comes from GATEWAY_SECRET_KEY and is not in the archive" in made.output
    assert SECRET_NAME not in _manifest(archive)["files"]
    # An instance with a key of its own (a fresh random one here) would change every pseudonym.
    refused = _restore(tmp_path / "fresh", archive)
    assert refused.exit_code == 1
    assert "made with GATEWAY_SECRET_KEY set" in refused.output
    assert not (tmp_path / "fresh" / "gateway.sqlite3").exists()
    assert _restore(tmp_path / "vault", archive, SECRET_KEY="kept-in-a-vault").exit_code == 0


@sqlite_only
def test_an_archive_from_an_older_schema_is_migrated_on_restore(tmp_path):
    instance = tmp_path / "original"
    instance.mkdir(mode=0o700)
    old = Database(f"sqlite:///{instance / 'gateway.sqlite3'}")
    upgrade_database(old, "0010")
    old.dispose()
    app = _instance_app(instance)
    archive = tmp_path / "old.tar.gz"
    made = app.test_cli_runner().invoke(cli, ["backup", str(archive), "--json"])
    app.extensions["gateway.db"].dispose()
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["migration_head"] == "0010"
    restored = _restore(tmp_path / "new", archive, "--json")
    assert restored.exit_code == 0, restored.output
    outcome = json.loads(restored.stdout)
    assert (outcome["migrated_from"], outcome["revision"]) == ("0010", head_revision())


def test_backup_on_postgresql_points_at_the_procedure(tmp_path):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path / "i"),
                      "DATABASE_URL": "postgresql+psycopg://gw:secret@db.example:5432/gateway"})
    result = app.test_cli_runner().invoke(cli, ["backup", str(tmp_path / "x.tar.gz")])
    assert result.exit_code == 1
    assert "pg_dump -Fc -f gateway-$(date +%F).dump 'postgresql://gw:***@db.example:5432/gateway'" \
        in result.output
    assert "gateway ledger heads --json" in result.output and "gw:secret@" not in result.output
    assert not (tmp_path / "x.tar.gz").exists()


# ------------------------------------------------------------------------------------ PostgreSQL

def _readme_postgresql_blocks() -> list[str]:
    """The README's PostgreSQL backup and restore commands, in order."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Backups"):]
    section = section[section.index("**PostgreSQL.**"):section.index("\n## ")]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


@pytest.mark.slow
def test_the_readme_postgresql_procedure_restores_a_verified_ledger_and_the_same_sync(
        database_url, tmp_path):
    if not TEST_DATABASE_URL:
        pytest.skip("the PostgreSQL procedure needs GATEWAY_TEST_DATABASE_URL")
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not on PATH: the README's procedure needs them")
    backup_block, restore_block = _readme_postgresql_blocks()
    schema = re.search(r"search_path%3D(\w+)", database_url).group(1)
    pgurl = database_url.replace("postgresql+psycopg://", "postgresql://")
    restored_db = f"test_restore_{os.getpid()}"
    restored_url = re.sub(r"/[^/?]+\?", f"/{restored_db}?", database_url, count=1)
    instance = tmp_path / "instance"
    env = _environment(instance, GATEWAY_DATABASE_URL=database_url)
    credentials = _set_up_district(env, tmp_path, students=300)
    heads_dir, backup_dir = tmp_path / "elsewhere", tmp_path / "backups"
    heads_dir.mkdir()
    backup_dir.mkdir()
    variables = dict(HEADS_DIR=str(heads_dir), BACKUP_DIR=str(backup_dir), PGURL=pgurl,
                     RESTORED_PGURL=restored_url.replace("postgresql+psycopg://", "postgresql://"),
                     RESTORED_URL=restored_url)

    def run(block: str) -> subprocess.CompletedProcess:
        # As written, with this interpreter's gateway, and the dump limited to this test run's
        # schema (the test database is shared with other runs).
        script = re.sub(r"(^|\" )gateway ", rf"\1{sys.executable} -m gateway ", block, flags=re.M)
        script = script.replace("pg_dump -Fc ", f"pg_dump -Fc --schema={schema} ")
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script], text=True,
                              capture_output=True, timeout=300, env={**env, **variables})

    admin = Database(TEST_DATABASE_URL)
    servers = [Served(env, ["serve", "--workers", "2"])]
    server = servers[0]
    try:
        before = full_sync(server.base, credentials)
        reader = Reader(server.base, credentials)
        reader.start()
        dumped = run(backup_block)
        statuses = reader.stop()
        assert dumped.returncode == 0, dumped.stderr
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {restored_db} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {restored_db}"))
        restoring = run(restore_block)
        assert restoring.returncode == 0, restoring.stdout + restoring.stderr
        assert f"every kept head in {heads_dir}/heads.json is in the ledger" in restoring.stdout
        assert "chain intact" in restoring.stdout
        [kept] = json.loads((heads_dir / "heads.json").read_text())
        assert kept["district"] == "district-1" and kept["seq"] >= len(before["users"])
        # The same app, the same secret key, on the restored database: the same answers.
        renv = _environment(instance, GATEWAY_DATABASE_URL=restored_url)
        servers.pop().stop()
        servers.append(Served(renv, ["serve"]))
        again = full_sync(servers[0].base, credentials)
        assert again == before
        # A ledger that does not reach the kept head, or differs there, fails the check.
        (heads_dir / "forged.json").write_text(json.dumps([{**kept, "hash": "a" * 64}]))
        forged = _gateway(renv, "ledger", "verify", "--heads", str(heads_dir / "forged.json"))
        assert forged.returncode == 1
        assert f"entry {kept['seq']} has another hash than the kept head's" in forged.stderr
    finally:
        for served in servers:
            served.stop()
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {restored_db} WITH (FORCE)"))
        admin.dispose()
    assert set(statuses) == {200}, statuses
