"""Rate limits on the LTI channels: a tool's service calls count against its app's limit, with
the OneRoster calls of that app, and are refused with the services' own error body; the LTI
token endpoint is limited per client address with the token endpoints' body."""
from __future__ import annotations

import pytest

from gateway import create_app
from gateway.oauth import service
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store.models import utcnow

from lti_support import client_assertion

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
USERS = "/ims/oneroster/rostering/v1p2/users"


@pytest.fixture
def app(database_url, tmp_path):
    """The test app with small limits: an app's burst of 3, 2 token requests per client
    address, each refilled at one per 10 seconds (slow enough that no test sees a refill)."""
    application = create_app({
        "TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key",
        "INSTANCE_PATH": str(tmp_path / "instance"), "ISSUER": "http://gateway.test",
        "APP_RATE_PER_SECOND": 0.1, "APP_RATE_BURST": 3,
        "IP_RATE_PER_SECOND": 0.1, "IP_RATE_BURST": 2})
    yield application
    application.extensions["gateway.db"].dispose()


@pytest.fixture
def credentials(database, district) -> service.AppCredentials:
    """The app connected to d1 (sharing everything), with its OneRoster client credentials."""
    with database.session_scope() as session:
        created = service.register_app(session, name="Math Tool", district_sourced_id="d1",
                                       scopes=None, now=utcnow())
        set_policy(session, app_id=created.app_id, district_id=1,
                   document=share_everything_document(), now=utcnow())
    return created


@pytest.fixture
def app_id(credentials) -> int:
    """The app the tools belong to (replaces the LTI fixtures' own)."""
    return credentials.app_id


def memberships(client, tool, token: str):
    return client.get(f"/lti/deployments/{tool.deployment_id}/contexts/k2/memberships",
                      headers={"Authorization": f"Bearer {token}"})


def assert_service_busy(response) -> None:
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "10"
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": "Too many requests from this app; try again in 10 seconds."}


def test_service_calls_over_the_apps_burst_get_the_services_429(client, tool, service_token):
    token = service_token(tool, NRPS)
    assert [memberships(client, tool, token).status_code for _ in range(3)] == [200] * 3
    assert_service_busy(memberships(client, tool, token))


def test_an_apps_rest_calls_and_its_tools_service_calls_share_one_limit(client, tool,
                                                                       service_token, credentials):
    token = service_token(tool, NRPS)
    issued = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(credentials.client_id, credentials.client_secret))
    bearer = {"Authorization": f"Bearer {issued.get_json()['access_token']}"}
    assert memberships(client, tool, token).status_code == 200
    assert client.get(USERS, headers=bearer).status_code == 200
    assert memberships(client, tool, token).status_code == 200

    assert_service_busy(memberships(client, tool, token))
    refused = client.get(USERS, headers=bearer)
    assert refused.status_code == 429
    assert refused.get_json()["imsx_CodeMinor"]["imsx_codeMinorField"][0][
        "imsx_codeMinorFieldValue"] == "server_busy"


def test_lti_token_requests_from_one_address_are_limited(client, tool):
    def ask():
        return client.post("/lti/token", data={
            "grant_type": "client_credentials", "scope": NRPS,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client_assertion(tool)})

    assert [ask().status_code, ask().status_code] == [200, 200]
    refused = ask()
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "10"
    assert refused.headers["Cache-Control"] == "no-store"
    assert refused.get_json() == {
        "error": "temporarily_unavailable",
        "error_description": "Too many token requests from this address; try again in 10 seconds."}
    # Both token endpoints count against one bucket per address.
    assert client.post("/oauth/token", data={"grant_type": "client_credentials"}
                       ).status_code == 429
