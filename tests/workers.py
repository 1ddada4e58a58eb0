"""Real `gateway worker` processes and the Redis keys of their queues, for the tests that run
jobs on a queue (tests/jobs, tests/cli/test_two_hosts.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from gateway.jobs import QUEUES


class WorkerProcess:
    """``python -m gateway worker`` in a process group of its own (its work horses with it),
    its output in ``log``."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        with open(log, "ab") as output:
            self.process = subprocess.Popen([sys.executable, "-m", "gateway", "worker", *args],
                                            env=env, stdout=output, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def output(self) -> str:
        """What the worker printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """End the worker and whatever work horse it has."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def remove_queues(redis_url: str, prefix: str) -> None:
    """Remove the queues under ``prefix``, their registries and their jobs from Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    # RQ keeps each queue's keys under rq:<what>:<queue name>, and its jobs under rq:job:<id>.
    for name in QUEUES:
        queue = prefix + name
        ids = set(client.lrange(f"rq:queue:{queue}", 0, -1))
        for registry in ("wip", "finished", "failed", "scheduled", "deferred"):
            ids.update(client.zrange(f"rq:{registry}:{queue}", 0, -1))
        for raw in ids:
            job_id = raw.decode().split(":", 1)[0]
            client.delete(f"rq:job:{job_id}", f"rq:results:{job_id}", f"rq:executions:{job_id}")
        keys = list(client.scan_iter(match=f"rq:*:{queue}"))
        if keys:
            client.delete(*keys)
        client.srem("rq:queues", f"rq:queue:{queue}")
    client.close()


def wait_until(condition: Callable[[], object], timeout: float = 60, what: str = "") -> object:
    """Poll ``condition`` until it is truthy (its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)
