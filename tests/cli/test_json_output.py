"""Every command that prints a result prints it as JSON with --json (issue 13): a script drives
the gateway without parsing sentences. Each command below runs for real on a demo district."""
from __future__ import annotations

import json

from sqlalchemy import select

from gateway.cli import cli
from gateway.store.models import User


def as_json(runner, *args: str):
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_every_command_that_prints_a_result_speaks_json(runner, database, tmp_path):
    written = as_json(runner, "demo-data", "--out", str(tmp_path / "demo"), "--students", "20")
    assert written["students"] == 20 and written["rows"]["users.csv"] > 20
    assert written["total_rows"] == sum(written["rows"].values())
    assert as_json(runner, "db", "upgrade")["revision"] == as_json(runner, "db", "current")["revision"]
    imported = as_json(runner, "import", str(tmp_path / "demo"))
    assert imported["outcome"] == "applied" and imported["district"] == "district-1"
    assert imported["files"]["users"]["added"] == written["rows"]["users.csv"]
    assert imported["sharing_scopes_refreshed"] == 0
    with database.session_scope() as session:
        student = session.execute(select(User.username).where(User.sourced_id.like("stu-%"))
                                  .order_by(User.sourced_id)).scalars().first()

    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"schools": ["*"], "fields": {"user": ["*"]}}))
    app = as_json(runner, "apps", "create", "--district", "district-1", "--name", "Tool App",
                  "--policy", str(policy))
    changed = as_json(runner, "apps", "policy", app["client_id"], str(policy))
    assert (changed["app_id"], changed["district"], changed["revision"]) == (app["app_id"],
                                                                             "district-1", 2)
    assert changed["preview"]["students"]["before"] == changed["preview"]["students"]["after"]

    tool = as_json(runner, "tools", "register", "--app", str(app["app_id"]),
                   "--login-url", "https://tool.example/login",
                   "--redirect-uri", "https://tool.example/launch",
                   "--target-link-uri", "https://tool.example/launch",
                   "--jwks-url", "https://tool.example/jwks")
    assert as_json(runner, "tools", "approve", tool["client_id"]) == {
        "client_id": tool["client_id"], "name": "Tool App", "status": "approved"}
    deployed = as_json(runner, "tools", "deploy", tool["client_id"], "--district", "district-1")
    assert deployed["deployment_id"] == tool["deployment_id"]  # already deployed there
    rotated = as_json(runner, "keys", "rotate")
    assert set(rotated) == {"kid", "retired", "dropped"} and rotated["kid"]

    assert as_json(runner, "users", "set-password", student, "--password", "a long password") == {
        "username": student, "district": "Prairie Ridge Public Schools", "password_set": True}
    assert as_json(runner, "users", "revoke-sessions", student)["sessions_ended"] == 0
    [pruned] = as_json(runner, "ledger", "prune", "--older-than", "30")
    assert pruned.pop("cutoff").endswith("Z")
    assert pruned == {"district": "district-1", "removed": 0, "checkpoint_seq": None}
    assert as_json(runner, "apps", "revoke", str(app["app_id"])) == {
        "revoked_client_ids": [app["client_id"]], "revoked_tokens": 0}
