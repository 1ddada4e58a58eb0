"""Real `gateway` server processes for the tests that talk to one over HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Sequence

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """``python -m gateway ARGS --port P`` in a process group of its own, answering /healthz."""

    def __init__(self, env: dict[str, str], args: Sequence[str], *, timeout: float = 60) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *args, "--port", str(self.port)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.health = requests.get(f"{self.base}/healthz", timeout=2)
                return
            except requests.ConnectionError:
                assert self.process.poll() is None, f"gateway {args[0]} exited"
                assert time.monotonic() < deadline, f"gateway {args[0]} never answered"
                time.sleep(0.1)

    def stop(self) -> None:
        """End the server and its workers."""
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)
