"""A contract window that has ended (or not started) closes every LTI channel, as it closes the
REST service: no service token, no NRPS or AGS with a token issued earlier, no tool in the portal,
no launch or deep linking begun, no id_token for a launch begun in time, no deep linking response
stored. Each case starts from a working channel, so the refusal is the window's doing."""
from __future__ import annotations

import datetime as dt
import html

import pytest
from sqlalchemy import func, select

from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store.lti import ResourceLink
from gateway.store.models import utcnow

from lti_support import TOOL, auth_request, client_assertion, portal_csrf, start_launch
from test_deep_linking import ITEMS, request_claims, response_jwt, start_deep_linking  # noqa: F401

NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
TODAY = utcnow().date()
ENDED = (TODAY - dt.timedelta(days=300), TODAY - dt.timedelta(days=1))
NOT_STARTED = (TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=300))


def ended_message(window) -> str:
    start, end = window
    if end < TODAY:
        return f"The district's contract with this app ended on {end.isoformat()}."
    return f"The district's contract with this app starts on {start.isoformat()}."


def text(response) -> str:
    """The response body as a person reads it (HTML entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture(params=[ENDED, NOT_STARTED], ids=["ended", "not-started"])
def close_contract(request, database, app_id):
    """Give the app's policy a contract window that excludes today; returns the window."""
    def close():
        document = {**share_everything_document(),
                    "contract": {"start": request.param[0].isoformat(),
                                 "end": request.param[1].isoformat()}}
        with database.session_scope() as session:
            set_policy(session, app_id=app_id, district_id=1, document=document, now=utcnow())
        return request.param
    return close


def test_no_service_token_outside_the_window(client, tool, service_token, close_contract):
    service_token(tool)  # issued while the contract is in force
    window = close_contract()
    response = client.post("/lti/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion(tool)})
    assert response.status_code == 400
    suffix = "after it" if window is ENDED else "before then"
    assert response.get_json() == {
        "error": "unauthorized_client",
        "error_description": ended_message(window).removesuffix(".")
        + f"; no access tokens are issued {suffix}."}


def test_nrps_and_ags_refuse_a_token_issued_before_the_window_closed(client, tool, service_token,
                                                                    close_contract):
    token = service_token(tool)
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/lti/deployments/{tool.deployment_id}/contexts/k1"
    assert client.get(base + "/memberships", headers=headers).status_code == 200
    assert client.get(base + "/lineitems", headers=headers).status_code == 200
    window = close_contract()
    for path in ("/memberships", "/lineitems"):
        response = client.get(base + path, headers=headers)
        assert response.status_code == 401, path
        assert ended_message(window) in text(response)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="lti", error="invalid_token"'
        assert "Bart" not in response.get_data(as_text=True)


def test_the_portal_lists_no_tool_and_no_launch_begins(client, tool, place, sign_in,
                                                        close_contract):
    link_id = place(tool.client_id, "k1", title="Fractions")
    sign_in("lisa")
    assert "Fractions" in client.get("/portal").get_data(as_text=True)
    window = close_contract()
    assert "Fractions" not in client.get("/portal").get_data(as_text=True)
    response = client.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 403
    assert ended_message(window) in text(response)


def test_a_launch_begun_in_time_gets_no_id_token(client, tool, place, sign_in, close_contract):
    link_id = place(tool.client_id, "k1")
    sign_in("lisa")
    login = start_launch(client, link_id)
    window = close_contract()
    response = client.get("/lti/authorize",
                          query_string=auth_request(login, f"{TOOL}/math/launch"))
    assert response.status_code == 403
    page = text(response)
    assert ended_message(window) in page and "id_token" not in page


def test_no_deep_linking_outside_the_window(client, tool, sign_in, close_contract, database):
    sign_in("hoover")
    assert "/portal/deep-linking" in client.get("/portal").get_data(as_text=True)
    close_contract()
    # The content picker is gone with the tool.
    assert "/portal/deep-linking" not in client.get("/portal").get_data(as_text=True)


def test_a_deep_linking_response_after_the_window_closed_is_refused(client, tool, request_claims,  # noqa: F811
                                                                    close_contract, database):
    window = close_contract()
    response = client.post("/lti/deep-linking/return",
                           data={"JWT": response_jwt(tool, request_claims, ITEMS[:1])})
    assert response.status_code == 400
    assert ended_message(window) in text(response)
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(ResourceLink)).scalar() == 0
