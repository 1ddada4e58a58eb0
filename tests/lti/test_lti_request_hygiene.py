"""The LTI platform's endpoints and the portal's forms refuse a NUL character with their spec's
400 (a page for browsers, RFC 6749 bodies for the token and registration endpoints, JSON errors for
the services), the same on both backends."""
from __future__ import annotations

import json

import pytest

from lti_support import TOOL, auth_request, portal_csrf, start_launch

NUL_MESSAGE = "The {} contains a NUL character, which is not allowed."
LINEITEM = "application/vnd.ims.lis.v2.lineitem+json"


def assert_page(response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert message.replace("'", "&#39;") in response.get_data(as_text=True)


def assert_json_error(response, status: int, error: str, description: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": error, "error_description": description}


def test_authorization_requests_with_a_nul_get_a_page(client, tool, place, sign_in):
    sign_in("lisa")
    login = start_launch(client, place(tool.client_id))
    params = auth_request(login, f"{TOOL}/math/launch")
    params["nonce"] += "\x00"

    assert_page(client.get("/lti/authorize", query_string=params), 400,
                NUL_MESSAGE.format("query parameter 'nonce'"))
    assert_page(client.post("/lti/authorize", data=params), 400,
                NUL_MESSAGE.format("form field 'nonce'"))
    # The same request without the NUL is a launch.
    params["nonce"] = params["nonce"].rstrip("\x00")
    assert client.get("/lti/authorize", query_string=params).status_code == 200


def test_a_deep_linking_response_with_a_nul_gets_a_page(client):
    assert_page(client.post("/lti/deep-linking/return", data={"JWT": "a.b\x00.c"}), 400,
                NUL_MESSAGE.format("form field 'JWT'"))


def test_portal_forms_and_paths_with_a_nul_get_a_page(client, tool, place, sign_in):
    sign_in("lisa")
    link_id = place(tool.client_id)
    token = portal_csrf(client)

    assert_page(client.post(f"/portal/launch/{link_id}%00", data={"csrf_token": token}), 400,
                NUL_MESSAGE.format("path"))
    assert_page(client.post("/portal/deep-linking",
                            data={"csrf_token": token, "deployment": "1", "class": "k1\x00"}),
                400, NUL_MESSAGE.format("form field 'class'"))
    assert_page(client.post("/logout", data={"csrf_token": token + "\x00"}), 400,
                NUL_MESSAGE.format("form field 'csrf_token'"))
    # Still signed in: the refused sign-out changed nothing.
    assert client.get("/portal").status_code == 200


def test_the_service_token_endpoint_refuses_a_nul_with_an_oauth_body(client, tool):
    response = client.post("/lti/token", data={
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "a.b.c\x00"})
    assert_json_error(response, 400, "invalid_request",
                      NUL_MESSAGE.format("form field 'client_assertion'"))


def test_services_refuse_a_nul_in_the_path_or_the_body(client, tool, service_token):
    token = service_token(tool)
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/lti/deployments/{tool.deployment_id}/contexts"

    assert_json_error(client.get(f"{base}/k1%00/memberships", headers=headers), 400,
                      "invalid_request", NUL_MESSAGE.format("path"))
    assert_json_error(client.get(f"{base}/k1/memberships", headers=headers,
                                 query_string={"role": "Learner\x00"}),
                      400, "invalid_request", NUL_MESSAGE.format("query parameter 'role'"))
    response = client.post(f"{base}/k1/lineitems", headers=headers, content_type=LINEITEM,
                           data=json.dumps({"scoreMaximum": 10, "label": "Quiz\x00 1"}))
    assert_json_error(response, 400, "invalid_request",
                      "The body contains a NUL character, which is not allowed.")
    response = client.post(f"{base}/k1/lineitems", headers=headers, content_type=LINEITEM,
                           data=json.dumps({"scoreMaximum": 10, "label": "Quiz 1",
                                            "tag\x00": "x"}))
    assert_json_error(response, 400, "invalid_request",
                      "The body contains a NUL character, which is not allowed.")
    response = client.post(f"{base}/k1/lineitems", headers=headers, content_type=LINEITEM,
                           data=json.dumps({"scoreMaximum": 10, "label": "Quiz 1"}))
    assert response.status_code == 201


def test_dynamic_registration_refuses_a_nul_in_the_metadata(client):
    response = client.post("/lti/register", content_type="application/json",
                           data=json.dumps({"client_name": "Reading\x00 Tool",
                                            "redirect_uris": [["deep\x00"]]}),
                           headers={"Authorization": "Bearer whatever"})
    assert_json_error(response, 400, "invalid_client_metadata",
                      "The body contains a NUL character, which is not allowed.")


def test_a_deeply_nested_body_is_checked_without_recursion(client, tool, service_token):
    token = service_token(tool)
    # Deeper than Python's recursion limit (json.dumps could not even write it).
    nested = "[" * 1020 + '"x\\u0000"' + "]" * 1020
    response = client.post(f"/lti/deployments/{tool.deployment_id}/contexts/k1/lineitems",
                           headers={"Authorization": f"Bearer {token}"}, content_type=LINEITEM,
                           data='{"scoreMaximum": 10, "label": "Quiz", "tag": ' + nested + "}")
    assert_json_error(response, 400, "invalid_request",
                      "The body contains a NUL character, which is not allowed.")
