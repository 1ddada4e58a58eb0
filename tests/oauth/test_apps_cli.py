"""``gateway apps create | list | revoke``."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select, text

from gateway.cli import cli
from gateway.oauth.credentials import verify_client_secret
from gateway.oauth.scopes import GRANTABLE_SCOPES
from gateway.oneroster.vocabulary import (ROSTERING_SCOPES, SCOPE_ROSTER, SCOPE_ROSTER_CORE,
                                          SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.store.apps import AccessToken, App, AppClient

ONCE_WARNING = ("Warning: the client secret is shown only this once and cannot be recovered; "
                "store it now.\n")
NO_POLICY_NOTE = ("Note: no sharing policy is set, so app 1 sees nothing of district district-1 "
                  "until you set one: gateway apps policy 1 POLICY.json\n")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def run(runner, *args):
    return runner.invoke(cli, ["apps", *args])


def create_json(runner, *args) -> dict:
    result = run(runner, "create", "--district", "district-1", "--name", "Reading App", "--json",
                 *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def list_json(runner) -> list[dict]:
    result = run(runner, "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_create_json_prints_exactly_the_credentials(runner, database, district_id):
    result = run(runner, "create", "--district", "district-1", "--name", "Reading App", "--json")

    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert list(created) == ["app_id", "client_id", "client_secret"]
    assert result.stderr == ONCE_WARNING + NO_POLICY_NOTE
    with database.session_scope() as session:
        app = session.get(App, created["app_id"])
        client = session.execute(select(AppClient)).scalar_one()
        assert app.name == "Reading App"
        assert (client.app_id, client.district_id, client.client_id) == (
            app.id, district_id, created["client_id"])
        assert client.scope == " ".join(ROSTERING_SCOPES)
        assert verify_client_secret(created["client_secret"], client.client_secret_hash)


def test_create_prints_the_credentials_and_warns(runner, district_id):
    result = run(runner, "create", "--district", "district-1", "--name", "Reading App")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["app_id", "client_id", "client_secret"]
    assert lines[0] == "app_id:        1"
    assert result.stderr == ONCE_WARNING + NO_POLICY_NOTE


def test_the_secret_is_not_stored_in_clear(runner, database, district_id):
    created = create_json(runner)

    with database.engine.connect() as conn:
        rows = [tuple(row) for table in ("apps", "app_clients", "access_tokens")
                for row in conn.execute(text(f"SELECT * FROM {table}"))]
    assert rows
    assert not any(created["client_secret"] in str(value) for row in rows for value in row)


def test_create_with_chosen_scopes(runner, district_id):
    create_json(runner, "--scope", SCOPE_ROSTER_DEMOGRAPHICS, "--scope", SCOPE_ROSTER_CORE,
                "--scope", SCOPE_ROSTER_CORE)

    [listed] = list_json(runner)
    assert listed["scopes"] == [SCOPE_ROSTER_DEMOGRAPHICS, SCOPE_ROSTER_CORE]


def test_create_with_an_unknown_scope(runner, database, district_id):
    result = run(runner, "create", "--district", "district-1", "--name", "X",
                 "--scope", "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.write")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unknown scope 'https://purl.imsglobal.org/spec/or/v1p2/scope/roster.write'; "
        f"grantable scopes: {', '.join(GRANTABLE_SCOPES)}\n")
    assert list_json(runner) == []


def test_create_for_an_unknown_district_lists_the_known_ones(runner, create_district):
    create_district("district-b", "B")
    create_district("district-a", "A")

    result = run(runner, "create", "--district", "nowhere", "--name", "X")

    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unknown district 'nowhere'; known districts: district-a, district-b\n")


def test_create_when_there_are_no_districts(runner):
    result = run(runner, "create", "--district", "nowhere", "--name", "X")

    assert result.exit_code == 1
    assert result.stderr == "Error: unknown district 'nowhere'; no districts exist yet\n"


def test_create_with_a_blank_name(runner, district_id):
    result = run(runner, "create", "--district", "district-1", "--name", "  ")

    assert result.exit_code == 1
    assert result.stderr == "Error: invalid app name '': give 1 to 255 characters\n"


def test_list_json(runner, create_district, district_id):
    create_district("district-2", "Second District")
    first = create_json(runner)
    second = create_json(runner, "--scope", SCOPE_ROSTER)
    result = run(runner, "create", "--district", "district-2", "--name", "Math App", "--json")
    third = json.loads(result.stdout)

    listed = list_json(runner)

    assert [(a["app_id"], a["name"], a["district"], a["client_id"], a["scopes"], a["revoked_at"])
            for a in listed] == [
        (first["app_id"], "Reading App", "district-1", first["client_id"], list(ROSTERING_SCOPES),
         None),
        (second["app_id"], "Reading App", "district-1", second["client_id"], [SCOPE_ROSTER], None),
        (third["app_id"], "Math App", "district-2", third["client_id"], list(ROSTERING_SCOPES),
         None),
    ]
    assert all(ISO_UTC.fullmatch(a["created_at"]) for a in listed)


def test_list_table(runner, district_id):
    created = create_json(runner, "--scope", SCOPE_ROSTER_CORE, "--scope", SCOPE_ROSTER)

    result = run(runner, "list")

    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["APP", "NAME", "DISTRICT", "CLIENT_ID", "SCOPES", "CREATED", "REVOKED"]
    assert row.startswith("1    Reading App  district-1  " + created["client_id"]
                          + "  roster-core.readonly,roster.readonly  ")
    assert row.endswith("  -")


def test_list_when_empty(runner):
    result = run(runner, "list")
    assert result.exit_code == 0
    assert result.stdout == "no apps yet: add one with `gateway apps create`\n"
    assert list_json(runner) == []


def test_revoke_by_client_id(runner, client, basic_auth, database, district_id):
    created = create_json(runner)
    other = create_json(runner)
    headers = basic_auth(created["client_id"], created["client_secret"])
    form = {"grant_type": "client_credentials"}
    assert client.post("/oauth/token", data=form, headers=headers).status_code == 200

    result = run(runner, "revoke", created["client_id"])

    assert result.exit_code == 0, result.output
    assert result.stdout == f"revoked client(s) {created['client_id']} and 1 live token(s)\n"
    listed = {a["client_id"]: a for a in list_json(runner)}
    assert ISO_UTC.fullmatch(listed[created["client_id"]]["revoked_at"])
    assert listed[other["client_id"]]["revoked_at"] is None
    with database.session_scope() as session:
        assert session.execute(select(AccessToken.revoked_at)).scalar_one() is not None
    assert client.post("/oauth/token", data=form, headers=headers).status_code == 401


def test_revoke_by_app_id(runner, create_district, district_id):
    create_json(runner)
    created = create_json(runner)

    result = run(runner, "revoke", str(created["app_id"]))

    assert result.exit_code == 0, result.output
    assert result.stdout == f"revoked client(s) {created['client_id']} and 0 live token(s)\n"
    assert [a["revoked_at"] is None for a in list_json(runner)] == [True, False]


def test_revoke_twice(runner, district_id):
    created = create_json(runner)
    run(runner, "revoke", created["client_id"])

    result = run(runner, "revoke", created["client_id"])

    assert result.exit_code == 0
    assert result.stdout == f"{created['client_id']} was already revoked: nothing changed\n"


@pytest.mark.parametrize("argument", ["999", "no-such-client"])
def test_revoke_unknown(runner, district_id, argument):
    create_json(runner)

    result = run(runner, "revoke", argument)

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: no app id or client_id '{argument}'; see `gateway apps list`\n")
