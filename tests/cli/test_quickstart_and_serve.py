"""The README's main command: quickstart loads a demo district once and the server answers over
real HTTP."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import requests
from sqlalchemy import func, select

from gateway.cli import cli
from gateway.store.apps import App
from gateway.store.models import District, User


def test_quickstart_loads_the_demo_once_and_prints_credentials(runner, database):
    result = runner.invoke(cli, ["quickstart", "--no-serve", "--students", "40"])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and "for district" in result.output
    assert "client_id=" in result.output and "client_secret=" in result.output
    assert "/ims/oneroster/rostering/v1p2/users?limit=5" in result.output
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(District)).scalar_one() == 1
        users = session.execute(select(func.count()).select_from(User)).scalar_one()
    assert users > 40

    again = runner.invoke(cli, ["quickstart", "--no-serve", "--students", "40"])
    assert again.exit_code == 0, again.output
    assert "already loaded; skipping the demo import" in again.output
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == users
        assert session.execute(select(func.count()).select_from(App)).scalar_one() == 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_over_http(runner, database_url, tmp_path):
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "20"]).exit_code == 0
    port = _free_port()
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    server = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None, "the server exited"
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.1)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        home = requests.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert home.status_code == 200
        assert "Demo" in home.text or "District" in home.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
