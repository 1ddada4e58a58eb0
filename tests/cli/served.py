"""Real `gateway` server processes for the tests that talk to one over HTTP."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import requests


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """``python -m gateway ARGS --port P`` in a process group of its own, answering /healthz."""

    def __init__(self, env: dict[str, str], args: Sequence[str], *, timeout: float = 60,
                 log: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        # ``log``: the server's standard error (its log lines) goes to that file.
        with open(log or os.devnull, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *args, "--port", str(self.port)], env=env,
                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
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


def csrf_token(page: str) -> str:
    """The CSRF token in a served page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def portal_sign_in(base: str, username: str, password: str,
                   origin: str | None = None) -> tuple[requests.Session, requests.Response]:
    """A browser's sign-in at ``base``: the form, then its post (with the page's ``Origin``, as
    browsers send it, when given); the browser and the answer to the post."""
    browser = requests.Session()
    csrf = csrf_token(browser.get(f"{base}/login", timeout=10).text)
    headers = {"Origin": origin, "Referer": f"{base}/login"} if origin else {}
    response = browser.post(f"{base}/login", allow_redirects=False, timeout=30, headers=headers,
                            data={"username": username, "password": password, "csrf_token": csrf})
    return browser, response
