"""The instance folder and every SQLite file the store keeps are owner-only, whatever the umask."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import create_app
from gateway.database import get_database
from gateway.store.migrate import ensure_schema
from gateway.store.models import District


@pytest.fixture
def permissive_umask():
    """The umask of a careless service manager: files 0644 and folders 0755 unless told."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """The mode of every file directly in ``folder``."""
    return {entry.name: mode(entry) for entry in folder.iterdir() if entry.is_file()}


def _use_default_store(instance: Path, district: str = "d1"):
    """An app on the default store (a SQLite file in ``instance``), migrated, with one write."""
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(instance), "DATABASE_URL": None})
    database = get_database(app)
    ensure_schema(database)
    with database.session_scope() as session:
        session.add(District(sourced_id=district, name=district))
    assert app.test_client().get("/healthz").status_code == 200
    return app


def test_create_app_and_first_use_make_the_instance_folder_and_store_owner_only(
        tmp_path, permissive_umask):
    instance = tmp_path / "instance"
    app = _use_default_store(instance)
    try:
        # The connection is still pooled: WAL mode's side files exist now, and are private too.
        assert mode(instance) == 0o700
        # The disclosure ledger's own file (gateway.store.ledger_database_path) too.
        assert modes(instance) == {"secret_key": 0o600, "gateway.sqlite3": 0o600,
                                   "gateway.sqlite3-wal": 0o600, "gateway.sqlite3-shm": 0o600,
                                   "gateway-ledger.sqlite3": 0o600,
                                   "gateway-ledger.sqlite3-wal": 0o600,
                                   "gateway-ledger.sqlite3-shm": 0o600}
    finally:
        get_database(app).dispose()


def test_an_install_made_readable_by_an_older_version_is_made_owner_only(
        tmp_path, permissive_umask):
    instance = tmp_path / "instance"
    get_database(_use_default_store(instance)).dispose()
    instance.chmod(0o755)
    for name in ("secret_key", "gateway.sqlite3", "gateway-ledger.sqlite3"):
        (instance / name).chmod(0o644)
    (instance / "gateway.sqlite3-journal").write_bytes(b"")
    (instance / "gateway.sqlite3-journal").chmod(0o644)

    app = _use_default_store(instance, "d2")
    try:
        assert mode(instance) == 0o700
        assert modes(instance)["secret_key"] == 0o600
        assert modes(instance)["gateway.sqlite3"] == 0o600
        assert modes(instance)["gateway.sqlite3-journal"] == 0o600
        assert modes(instance)["gateway.sqlite3-wal"] == 0o600
        assert modes(instance)["gateway-ledger.sqlite3"] == 0o600
    finally:
        get_database(app).dispose()


def test_quickstart_sets_up_an_owner_only_instance_folder(tmp_path):
    instance = tmp_path / "instance"
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("GATEWAY_")}
    env["GATEWAY_INSTANCE_PATH"] = str(instance)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "quickstart", "--no-serve", "--students", "20"],
        env=env, capture_output=True, text=True, timeout=300,
        preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr
    assert mode(instance) == 0o700
    files = modes(instance)
    assert files["gateway.sqlite3"] == 0o600 and files["secret_key"] == 0o600
    assert set(files.values()) == {0o600}, files
