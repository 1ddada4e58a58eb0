"""Deep linking: an instructor picks content in a tool; the tool's response is verified and its
items become resource links of the class, launched later as resource link requests."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from gateway.store.lti import LineItem, ResourceLink

from lti_support import (ISSUER, TOOL, ToolKeyPair, auth_request, forms, portal_csrf, posted_form,
                      start_launch, verify_platform_token)

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"


def start_deep_linking(client, class_id: str = "k1") -> dict[str, str]:
    page = client.get("/portal").get_data(as_text=True)
    [picker] = [f for f in forms(page) if f["action"] == "/portal/deep-linking"
                and f["fields"]["class"] == class_id]
    response = client.post("/portal/deep-linking", data=picker["fields"])
    assert response.status_code == 303, response.get_data(as_text=True)
    from urllib.parse import parse_qs, urlsplit
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


@pytest.fixture
def request_claims(client, tool, sign_in):
    """Hoover (teacher of k1) starts deep linking; the id_token's claims."""
    sign_in("hoover")
    login = start_deep_linking(client)
    assert login["target_link_uri"] == f"{TOOL}/math/pick"
    response = client.get("/lti/authorize", query_string=auth_request(login, f"{TOOL}/math/launch"))
    assert response.status_code == 200, response.get_data(as_text=True)
    return verify_platform_token(client, posted_form(response)["fields"]["id_token"])


def response_jwt(tool, request: dict, items: list, keys: ToolKeyPair | None = None, **overrides) -> str:
    now = int(time.time())
    claims = {"iss": tool.client_id, "aud": ISSUER, "iat": now, "exp": now + 600,
              "nonce": "dl-nonce", CLAIM + "message_type": "LtiDeepLinkingResponse",
              CLAIM + "version": "1.3.0", CLAIM + "deployment_id": tool.deployment_id,
              DL + "content_items": items,
              DL + "data": request[DL + "deep_linking_settings"]["data"]}
    claims.update(overrides)
    return (keys or tool.keys).sign({k: v for k, v in claims.items() if v is not None})


ITEMS = [
    {"type": "ltiResourceLink", "title": "Adding fractions", "text": "Practice set",
     "url": f"{TOOL}/math/items/42", "custom": {"item": "42"},
     "lineItem": {"scoreMaximum": 25, "label": "Fractions practice", "tag": "practice"}},
    {"type": "ltiResourceLink", "title": "Fraction game"},
    {"type": "link", "url": "https://example.com", "title": "Plain link"},
]


def test_deep_linking_request_claims(request_claims, tool):
    claims = request_claims
    assert claims[CLAIM + "message_type"] == "LtiDeepLinkingRequest"
    assert claims[CLAIM + "target_link_uri"] == f"{TOOL}/math/pick"
    assert CLAIM + "resource_link" not in claims
    assert claims[CLAIM + "context"]["id"] == "k1"
    settings = claims[DL + "deep_linking_settings"]
    assert settings["deep_link_return_url"] == f"{ISSUER}/lti/deep-linking/return"
    assert settings["accept_types"] == ["ltiResourceLink"]
    assert settings["accept_presentation_document_targets"] == ["window", "iframe"]
    assert settings["accept_multiple"] is True and len(settings["data"]) >= 32


def test_content_items_become_resource_links_of_the_class(client, app, tool, request_claims,
                                                          database, sign_in):
    response = client.post("/lti/deep-linking/return",
                           data={"JWT": response_jwt(tool, request_claims, ITEMS)})

    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "Adding fractions" in page and "Fraction game" in page
    assert "1 item(s) of a kind this portal does not take were left out." in page
    with database.session_scope() as session:
        links = session.execute(select(ResourceLink).order_by(ResourceLink.id)).scalars().all()
        items = session.execute(select(LineItem)).scalars().all()
    assert [(l.title, l.class_sourced_id, l.source, l.created_by, l.url, l.custom) for l in links] == [
        ("Adding fractions", "k1", "deep_link", "t-hoover", f"{TOOL}/math/items/42", {"item": "42"}),
        ("Fraction game", "k1", "deep_link", "t-hoover", None, None)]
    [item] = items
    assert (item.title, item.result_value_max, item.tag, item.resource_link_id) == (
        "Fractions practice", 25.0, "practice", links[0].link_id)

    # A student of the class sees the items and launches one as a resource link request.
    lisa = sign_in("lisa", browser=app.test_client())
    portal = lisa.get("/portal").get_data(as_text=True)
    assert "Adding fractions" in portal and "Fraction game" in portal
    login = start_launch(lisa, links[0].link_id)
    assert login["target_link_uri"] == f"{TOOL}/math/items/42"
    answer = lisa.get("/lti/authorize", query_string=auth_request(login, f"{TOOL}/math/launch"))
    claims = verify_platform_token(lisa, posted_form(answer)["fields"]["id_token"])
    assert claims[CLAIM + "message_type"] == "LtiResourceLinkRequest"
    assert claims[CLAIM + "target_link_uri"] == f"{TOOL}/math/items/42"
    assert claims[CLAIM + "resource_link"] == {"id": links[0].link_id, "title": "Adding fractions",
                                               "description": "Practice set"}
    assert claims[CLAIM + "custom"] == {"item": "42"}
    assert claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["lineitem"].endswith(
        "/" + item.sourced_id)


def test_a_response_can_be_used_once(client, tool, request_claims):
    token = response_jwt(tool, request_claims, ITEMS[:1])
    assert client.post("/lti/deep-linking/return", data={"JWT": token}).status_code == 200
    response = client.post("/lti/deep-linking/return", data={"JWT": token})
    assert response.status_code == 400
    assert "already been answered" in response.get_data(as_text=True)


def _refusals(tool, request, other):
    impostor = ToolKeyPair.generate()
    return [
        (response_jwt(tool, request, ITEMS, aud="https://other.example"), f"its aud must be exactly {ISSUER}"),
        (response_jwt(tool, request, ITEMS, aud=[ISSUER, "https://other.example"]), "its aud must be"),
        (response_jwt(tool, request, ITEMS, **{CLAIM + "message_type": "LtiResourceLinkRequest"}),
         "message type must be LtiDeepLinkingResponse"),
        (response_jwt(tool, request, ITEMS, **{CLAIM + "version": "1.1"}), "version must be 1.3.0"),
        (response_jwt(tool, request, ITEMS, nonce=None), "must carry a nonce"),
        (response_jwt(tool, request, ITEMS, iat=int(time.time()) - 1000), "issued more than"),
        (response_jwt(tool, request, ITEMS, exp=int(time.time()) - 60), "has expired"),
        (response_jwt(tool, request, ITEMS, **{DL + "data": "forged"}), "does not echo the data"),
        (response_jwt(tool, request, ITEMS, **{DL + "data": None}), "does not echo the data"),
        (response_jwt(tool, request, ITEMS, **{CLAIM + "deployment_id": "unregistered"}),
         "deployment that is not registered"),
        (response_jwt(tool, request, ITEMS, keys=impostor), "no key with kid"),
        # Another tool cannot answer this tool's request, even with the right data.
        (response_jwt(other, request, ITEMS), "does not echo the data of a request made to this tool"),
        ("", "carries no JWT"),
        ("a.b.c", "not a compact JWS"),
    ]


def test_bad_responses_are_refused(client, tool, make_tool, request_claims, database, app):
    other = make_tool(slug="other")
    app.extensions["gateway.lti"].tool_keys.clock = lambda: time.monotonic() + 6
    for token, message in _refusals(tool, request_claims, other):
        response = client.post("/lti/deep-linking/return", data={"JWT": token})
        assert response.status_code == 400, message
        assert message in response.get_data(as_text=True), (message, response.get_data(as_text=True))
    with database.session_scope() as session:
        assert session.execute(select(ResourceLink)).first() is None
    # The genuine answer still works: no refusal spent the request.
    assert client.post("/lti/deep-linking/return", data={
        "JWT": response_jwt(tool, request_claims, ITEMS[:1])}).status_code == 200


def test_hs256_responses_are_refused(client, tool, request_claims):
    from joserfc import jwt
    from joserfc.jwk import OctKey
    import json

    now = int(time.time())
    forged = jwt.encode({"alg": "HS256", "kid": tool.keys.kid},
                        {"iss": tool.client_id, "aud": ISSUER, "iat": now, "exp": now + 60},
                        OctKey.import_key(json.dumps(tool.keys.jwks["keys"][0]).encode()),
                        algorithms=["HS256"])
    response = client.post("/lti/deep-linking/return", data={"JWT": forged})
    assert response.status_code == 400
    assert "must be signed with RS256" in response.get_data(as_text=True)


def test_students_cannot_start_deep_linking(client, tool, sign_in, database):
    from gateway.store.lti import Deployment

    sign_in("lisa")
    with database.session_scope() as session:
        deployment = session.execute(select(Deployment.id)).scalar_one()
    response = client.post("/portal/deep-linking", data={
        "deployment": deployment, "class": "k1", "csrf_token": portal_csrf(client)})
    assert response.status_code == 403
    assert "Only the class&#39;s instructors may add content" in response.get_data(as_text=True)
