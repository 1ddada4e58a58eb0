"""The README's main command: quickstart loads a demo district once and the server answers over
real HTTP."""
from __future__ import annotations

import os

import requests
from sqlalchemy import func, select

from gateway.cli import cli
from gateway.oauth.credentials import verify_client_secret
from gateway.store.apps import App, AppClient
from gateway.store.models import District, User

from served import Served


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

    first_id = client_id(result.output)
    again = runner.invoke(cli, ["quickstart", "--no-serve", "--students", "40"])
    assert again.exit_code == 0, again.output
    assert "already loaded; skipping the demo import" in again.output
    assert "demo app 1 already exists: it gets a new client secret" in again.output
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(User)).scalar_one() == users
        # No second whole-district app: the same one, its client with a new secret.
        assert session.execute(select(func.count()).select_from(App)).scalar_one() == 1
        client = session.execute(select(AppClient)).scalar_one()
    assert client.client_id == client_id(again.output) == first_id
    assert verify_client_secret(client_secret(again.output), client.client_secret_hash)
    assert not verify_client_secret(client_secret(result.output), client.client_secret_hash)


def client_id(output: str) -> str:
    return output.split("client_id=", 1)[1].split()[0]


def client_secret(output: str) -> str:
    return output.split("client_secret=", 1)[1].split()[0]


def test_demo_credentials_prints_a_working_pair_for_eval(runner, client):
    assert runner.invoke(cli, ["demo-credentials"]).output == (
        "Error: no district is loaded yet: run `gateway quickstart` first\n")
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "20"]).exit_code == 0
    result = runner.invoke(cli, ["demo-credentials", "--shell"])
    assert result.exit_code == 0, result.output
    exports = dict(line.removeprefix("export ").split("=", 1) for line in result.output.splitlines())
    assert list(exports) == ["CLIENT_ID", "CLIENT_SECRET"]
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(exports["CLIENT_ID"], exports["CLIENT_SECRET"]))
    assert token.status_code == 200, token.get_json()


def test_serve_answers_over_http(runner, database_url, tmp_path):
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "20"]).exit_code == 0
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    server = Served(env, ["serve"], timeout=30)
    try:
        assert server.health.status_code == 200 and server.health.json() == {"status": "ok"}
        home = requests.get(f"{server.base}/", timeout=5)
        assert home.status_code == 200
        assert "Demo" in home.text or "District" in home.text
    finally:
        server.stop()
