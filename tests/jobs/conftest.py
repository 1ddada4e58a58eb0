"""Jobs on a real Redis, run by real `gateway worker` processes over the test's store."""
from __future__ import annotations

import os
from typing import Callable

import pytest

from workers import WorkerProcess, remove_queues


@pytest.fixture
def queue_settings(redis_url, redis_prefix, tmp_path) -> dict[str, str]:
    """The settings of an app with job queues of this test's own."""
    return {"REDIS_URL": redis_url, "REDIS_KEY_PREFIX": redis_prefix,
            "SPOOL_DIR": str(tmp_path / "spool")}


@pytest.fixture
def queue_env(queue_settings, database_url, tmp_path) -> dict[str, str]:
    """The environment of a `gateway` process on the test's store and queues."""
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url,
               GATEWAY_SECRET_KEY="test-secret-key", GATEWAY_LOG_FORMAT="text",
               GATEWAY_INSTANCE_PATH=str(tmp_path / "worker-instance"))
    env.update({f"GATEWAY_{name}": value for name, value in queue_settings.items()})
    return env


@pytest.fixture
def queued_app(make_app, queue_settings):
    """An app whose commands queue their jobs."""
    return make_app(**queue_settings)


@pytest.fixture
def start_worker(queue_env, tmp_path, redis_url, redis_prefix) -> Callable[..., WorkerProcess]:
    """Start `gateway worker` processes (``start_worker(*args)``); all are killed afterwards,
    and the test's jobs and queues removed from Redis."""
    started: list[WorkerProcess] = []

    def start(*args: str) -> WorkerProcess:
        worker = WorkerProcess(queue_env, tmp_path / f"worker-{len(started)}.log", *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
    remove_queues(redis_url, redis_prefix)
