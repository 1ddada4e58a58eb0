"""Shared fixtures: an app on a freshly migrated store, its test client and CLI runner.

SQLite by default (each test gets its own copy of a database migrated once per session);
PostgreSQL when GATEWAY_TEST_DATABASE_URL is set (migrated once, every table emptied after each
test), so the same suite proves both backends.
"""
from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway import create_app
from gateway.store import Database, ledger_database_path
from gateway.store.migrate import upgrade_database
from gateway.store.schema import metadata

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TEST_DATABASE_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Most tests revoke, suspend or change a policy and check the very next request: they run with
# every token looked up on every request (servers they start inherit it). The cache of checked
# tokens, on by default, has tests of its own (tests/oauth/test_grant_cache.py).
os.environ.setdefault("GATEWAY_TOKEN_RECHECK_SECONDS", "0")


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The committed fixture bundles."""
    return FIXTURES


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory) -> str:
    """A database at the newest schema: a SQLite template file, or the PostgreSQL test database."""
    if TEST_DATABASE_URL:
        # A schema of this session's own, so concurrent test runs on one server never collide.
        schema = f"gateway_test_{os.getpid()}"
        admin = Database(TEST_DATABASE_URL)
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in TEST_DATABASE_URL else "?"
        url = f"{TEST_DATABASE_URL}{separator}options=-csearch_path%3D{schema}"
        database = Database(url)
        upgrade_database(database)
        database.dispose()
        yield url
        with admin.engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
        return
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    database = Database(f"sqlite:///{path}")
    upgrade_database(database)
    database.dispose()
    yield str(path)


@pytest.fixture
def database_url(_migrated_template, tmp_path) -> str:
    """The URL of an empty, migrated database for this test."""
    if TEST_DATABASE_URL:
        yield _migrated_template
        database = Database(_migrated_template)
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        with database.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        database.dispose()
        return
    path = tmp_path / "gateway.sqlite3"
    shutil.copyfile(_migrated_template, path)
    # The ledger's own file goes along (gateway.store.ledger_database_path).
    shutil.copyfile(ledger_database_path(_migrated_template), ledger_database_path(str(path)))
    yield f"sqlite:///{path}"


@pytest.fixture
def app(database_url, tmp_path):
    """The application, configured for tests."""
    application = create_app({
        "TESTING": True,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "ISSUER": "http://gateway.test",
    })
    yield application
    application.extensions["gateway.db"].dispose()


@pytest.fixture
def second_app(app, database_url, tmp_path):
    """Another application on the same database, configured like ``app``: another worker, or
    another host, of the same gateway."""
    other = create_app({**{name: app.config[name] for name in ("TESTING", "SECRET_KEY", "ISSUER")},
                        "DATABASE_URL": database_url,
                        "INSTANCE_PATH": str(tmp_path / "instance-2")})
    yield other
    other.extensions["gateway.db"].dispose()


@pytest.fixture
def database(app) -> Database:
    """The app's :class:`Database`."""
    return app.extensions["gateway.db"]


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner bound to the app."""
    return app.test_cli_runner()


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis (``GATEWAY_TEST_REDIS_URL``, default 127.0.0.1:6379). Tests that need it
    are skipped when it does not answer, except on CI (``CI=true``), where it must."""
    if not _redis_answers(REDIS_URL):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {REDIS_URL} does not answer, and CI=true needs it")
        pytest.skip(f"Redis at {REDIS_URL} does not answer")
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url) -> str:
    """A key prefix of this test's own, so parallel runs on one Redis never collide; its keys
    are removed afterwards."""
    import redis

    prefix = f"gateway-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def closed_port_url() -> str:
    """A redis:// URL on a local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def make_app(database_url, tmp_path):
    """Another application on the test database with ``settings`` on top of the tests' own
    (limits, Redis, logging...); disposed of after the test."""
    made = []

    def make(**settings):
        application = create_app({"TESTING": True, "DATABASE_URL": database_url,
                                  "INSTANCE_PATH": str(tmp_path / f"instance-{len(made) + 10}"),
                                  "SECRET_KEY": "test-secret-key", "ISSUER": "http://gateway.test",
                                  **settings})
        made.append(application)
        return application
    yield make
    for application in made:
        application.extensions["gateway.db"].dispose()
