"""LTI Dynamic Registration: a tool registers itself with a one-time token and stays pending until
an admin approves it."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update

from gateway.cli import cli
from gateway.store.lti import RegistrationToken, Tool

from lti_support import client_assertion

TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


@pytest.fixture
def invite(runner, app_id):
    def invite() -> str:
        result = runner.invoke(cli, ["tools", "invite", "--app", str(app_id), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)["registration_token"]
    return invite


def metadata(**overrides) -> dict:
    body = {
        "application_type": "web", "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": "https://tool.example/login",
        "redirect_uris": ["https://tool.example/launch", "https://app.tool.example/launch"],
        "client_name": "Reading Tool", "jwks_uri": "https://tool.example/jwks",
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": f"{NRPS} {SCORE} https://example.com/unknown-scope",
        TOOL_CONFIG: {
            "domain": "tool.example", "target_link_uri": "https://tool.example/launch",
            "custom_parameters": {"level": "3"}, "claims": ["iss", "sub", "name"],
            "messages": [{"type": "LtiDeepLinkingRequest",
                          "target_link_uri": "https://tool.example/pick", "label": "Add"}]},
    }
    body.update(overrides)
    return body


def register(client, token: str | None, body) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/lti/register", data=json.dumps(body), headers=headers,
                       content_type="application/json")


def test_a_tool_registers_itself_and_waits_for_approval(client, invite, database, runner,
                                                        jwks_server):
    response = register(client, invite(), metadata())

    assert response.status_code == 200, response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    client_id = body["client_id"]
    deployment_id = body[TOOL_CONFIG]["deployment_id"]
    assert body["scope"] == f"{NRPS} {SCORE}"
    assert body["redirect_uris"] == metadata()["redirect_uris"]
    with database.session_scope() as session:
        tool = session.execute(select(Tool)).scalar_one()
        assert (tool.client_id, tool.status, tool.name, tool.deep_linking_uri, tool.custom) == (
            client_id, "pending", "Reading Tool", "https://tool.example/pick", {"level": "3"})
        assert tool.registration == metadata()

    # Pending: no service tokens.
    from lti_support import RegisteredTool, ToolKeyPair
    keys = ToolKeyPair.generate()
    jwks_server.documents["https://tool.example/jwks"] = keys.jwks
    registered = RegisteredTool(client_id, deployment_id, keys, "https://tool.example/jwks")
    form = {"grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    assert client.post("/lti/token", data={**form, "client_assertion": client_assertion(
        registered)}).status_code == 401
    listed = json.loads(runner.invoke(cli, ["tools", "list", "--json"]).output)
    assert [(t["client_id"], t["status"]) for t in listed] == [(client_id, "pending")]

    result = runner.invoke(cli, ["tools", "approve", client_id])
    assert result.exit_code == 0 and result.output == f"tool {client_id} (Reading Tool) approved\n"
    response = client.post("/lti/token", data={**form, "client_assertion": client_assertion(registered)})
    assert response.status_code == 200
    assert response.get_json()["scope"] == f"{NRPS} {SCORE}"


def test_a_registration_token_is_single_use(client, invite):
    token = invite()
    assert register(client, token, metadata()).status_code == 200
    response = register(client, token, metadata())
    assert response.status_code == 401
    assert response.get_json() == {"error": "invalid_token", "error_description":
                                   "The registration token is unknown, used or expired."}


def test_a_registration_token_is_required_and_expires(client, invite, database):
    assert register(client, None, metadata()).status_code == 401
    assert register(client, "made-up", metadata()).status_code == 401
    token = invite()
    with database.session_scope() as session:
        session.execute(update(RegistrationToken).values(expires_at=dt.datetime(2000, 1, 1)))
    assert register(client, token, metadata()).status_code == 401


@pytest.mark.parametrize("overrides, error, message", [
    ({"redirect_uris": []}, "invalid_redirect_uri", "redirect_uris must list at least one URI."),
    ({"redirect_uris": ["https://evil.example/launch"]}, "invalid_redirect_uri",
     "redirect URI 'https://evil.example/launch' is outside the tool's domain 'tool.example'."),
    ({"redirect_uris": ["http://tool.example/launch"]}, "invalid_client_metadata",
     "redirect URI must use https"),
    ({"jwks_uri": "https://evil.example/jwks"}, "invalid_client_metadata",
     "jwks_uri is outside the tool's domain"),
    ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata",
     "token_endpoint_auth_method must be private_key_jwt."),
    ({"grant_types": ["implicit"]}, "invalid_client_metadata",
     "grant_types must include implicit and client_credentials."),
    ({"response_types": ["code"]}, "invalid_client_metadata", "response_types must include id_token."),
    ({TOOL_CONFIG: None}, "invalid_client_metadata", f"{TOOL_CONFIG} is required."),
    ({"initiate_login_uri": None}, "invalid_client_metadata", "initiate_login_uri is required."),
])
def test_bad_metadata_is_refused(client, invite, database, overrides, error, message):
    token = invite()
    response = register(client, token, metadata(**overrides))
    assert response.status_code == 400
    assert response.get_json()["error"] == error
    assert response.get_json()["error_description"].startswith(message)
    with database.session_scope() as session:
        assert session.execute(select(Tool)).first() is None
    # A refused registration does not spend the token.
    assert register(client, token, metadata()).status_code == 200
