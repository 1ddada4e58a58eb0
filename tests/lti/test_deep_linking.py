"""Deep linking: an instructor picks content in a tool; the tool's response is verified and its
items become resource links of the class, launched later as resource link requests."""
from __future__ import annotations

import time

import pytest
from markupsafe import escape
from sqlalchemy import select

from gateway.store.events import EVENTS
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


def deep_linking_request(client, sign_in, target: str, redirect_uri: str) -> dict:
    """Hoover (teacher of k1) starts deep linking with the one tool deployed; the id_token's
    claims, once the tool has answered the login with ``redirect_uri``."""
    sign_in("hoover")
    login = start_deep_linking(client)
    assert login["target_link_uri"] == target
    response = client.get("/lti/authorize", query_string=auth_request(login, redirect_uri))
    assert response.status_code == 200, response.get_data(as_text=True)
    return verify_platform_token(client, posted_form(response)["fields"]["id_token"])


@pytest.fixture
def request_claims(client, tool, sign_in):
    """Hoover (teacher of k1) starts deep linking; the id_token's claims."""
    return deep_linking_request(client, sign_in, f"{TOOL}/math/pick", f"{TOOL}/math/launch")


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
    # Launches open in a window; the platform's pages refuse to be framed.
    assert settings["accept_presentation_document_targets"] == ["window"]
    assert settings["accept_multiple"] is True and len(settings["data"]) >= 32


def test_content_items_become_resource_links_of_the_class(client, app, tool, request_claims,
                                                          database, sign_in):
    response = client.post("/lti/deep-linking/return",
                           data={"JWT": response_jwt(tool, request_claims, ITEMS)})

    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    assert "Adding fractions" in page and "Fraction game" in page
    assert ("<li>“Plain link” is a plain web link (https://example.com); this portal adds only "
            "activities that launch in the tool.</li>") in page
    with database.session_scope() as session:
        links = session.execute(select(ResourceLink).order_by(ResourceLink.id)).scalars().all()
        items = session.execute(select(LineItem)).scalars().all()
    assert [(l.title, l.class_sourced_id, l.source, l.created_by, l.url, l.custom) for l in links] == [
        ("Adding fractions", "k1", "deep_link", "t-hoover", f"{TOOL}/math/items/42", {"item": "42"}),
        ("Fraction game", "k1", "deep_link", "t-hoover", None, None)]
    [item] = items
    assert (item.title, item.result_value_max, item.tag, item.resource_link_id) == (
        "Fractions practice", 25.0, "practice", links[0].link_id)
    # The gradebook's new column is in the change feed, as one made through AGS is.
    with database.session_scope() as session:
        assert session.execute(select(EVENTS.c.entity, EVENTS.c.sourced_id, EVENTS.c.kind).where(
            EVENTS.c.entity == "lineItem")).all() == [("lineItem", item.sourced_id, "created")]

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


@pytest.fixture
def sites_tool(make_tool):
    """A tool registered at four origins: its target link URI's, its login URL's and its two
    redirect URIs' (one of them plain http on localhost, as in development)."""
    return make_tool(slug="sites", login_url="https://login.tool.example/start",
                     redirect_uris=["https://tool.example/cb", "http://localhost:8000/cb"],
                     target_link_uri="https://app.tool.example/launch",
                     deep_linking_uri="https://app.tool.example/pick")


@pytest.fixture
def sites_request(client, sites_tool, sign_in):
    return deep_linking_request(client, sign_in, "https://app.tool.example/pick",
                                "https://tool.example/cb")


def _link(url: str, title: str = "Item") -> dict:
    return {"type": "ltiResourceLink", "title": title, "url": url,
            "lineItem": {"scoreMaximum": 10, "label": title}}


def _stored(database) -> tuple[list, list]:
    with database.session_scope() as session:
        return (session.execute(select(ResourceLink.url).order_by(ResourceLink.id)).scalars().all(),
                session.execute(select(LineItem.title)).scalars().all())


SITES = "https://app.tool.example, https://login.tool.example, https://tool.example, http://localhost:8000"


@pytest.mark.parametrize("url, reason", [
    ("https://evil.example/items/1",
     f"the content item URL 'https://evil.example/items/1' is not on a site registered for this "
     f"tool ({SITES}), so it could never be launched"),
    ("http://app.tool.example/items/1",  # http where the tool is https
     "the content item URL must use https (http is allowed to localhost only): "
     "'http://app.tool.example/items/1'"),
    ("https://app.tool.example:8443/items/1",
     f"the content item URL 'https://app.tool.example:8443/items/1' is not on a site registered "
     f"for this tool ({SITES}), so it could never be launched"),
    ("https://other.app.tool.example/items/1",
     f"the content item URL 'https://other.app.tool.example/items/1' is not on a site registered "
     f"for this tool ({SITES}), so it could never be launched"),
    ("https://localhost:8000/items/1",
     f"the content item URL 'https://localhost:8000/items/1' is not on a site registered for this "
     f"tool ({SITES}), so it could never be launched"),
    ("https://app.tool.example:99999/items/1",
     f"the content item URL 'https://app.tool.example:99999/items/1' is not on a site registered "
     f"for this tool ({SITES}), so it could never be launched"),
    ("/items/1",
     "the content item URL must be an absolute https URL without fragment: '/items/1'"),
    ("https://app.tool.example/items/1#top",
     "the content item URL must be an absolute https URL without fragment: "
     "'https://app.tool.example/items/1#top'"),
    ("https://me:pw@app.tool.example/items/1",
     "the content item URL must not carry credentials: 'https://me:pw@app.tool.example/items/1'"),
])
def test_content_off_the_tools_sites_is_refused(client, sites_tool, sites_request, database, url,
                                                reason):
    items = [_link("https://app.tool.example/items/ok", "Fine"), _link(url, "Elsewhere")]
    response = client.post("/lti/deep-linking/return",
                           data={"JWT": response_jwt(sites_tool, sites_request, items)})

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'<p role="alert">{escape(f"Nothing was added: {reason}.")}</p>' in (
        response.get_data(as_text=True))
    assert _stored(database) == ([], [])
    # The request was not spent: the tool can still answer it with content it serves.
    accepted = client.post("/lti/deep-linking/return", data={
        "JWT": response_jwt(sites_tool, sites_request, items[:1])})
    assert accepted.status_code == 200
    assert _stored(database) == (["https://app.tool.example/items/ok"], ["Fine"])


def test_content_on_any_of_the_tools_sites_is_accepted(client, app, sites_tool, sites_request,
                                                       database, sign_in):
    urls = ["https://app.tool.example/items/1",
            "https://APP.tool.example:443/items/2?level=3",  # the same origin, spelled otherwise
            "https://login.tool.example/items/3", "https://tool.example/items/4",
            "http://localhost:8000/items/5"]
    items = [_link(url, f"Item {n}") for n, url in enumerate(urls, 1)]
    items.append({"type": "ltiResourceLink", "title": "Default"})  # launches the target link URI
    response = client.post("/lti/deep-linking/return",
                           data={"JWT": response_jwt(sites_tool, sites_request, items)})

    assert response.status_code == 200, response.get_data(as_text=True)
    assert _stored(database) == (urls + [None], [f"Item {n}" for n in range(1, 6)])
    # A student's launch of a stored item targets its URL.
    with database.session_scope() as session:
        link_id = session.execute(select(ResourceLink.link_id).where(
            ResourceLink.url == urls[1])).scalar_one()
    login = start_launch(sign_in("lisa", browser=app.test_client()), link_id)
    assert login["target_link_uri"] == urls[1]


def test_a_response_holding_a_nul_character_is_refused(client, tool, request_claims, database):
    for token in (response_jwt(tool, request_claims, [{**ITEMS[0], "title": "Adding\x00fractions"}]),
                  response_jwt(tool, request_claims, [{**ITEMS[0], "custom": {"item\x00": "42"}}]),
                  response_jwt(tool, request_claims, ITEMS, iss="x\x00"),
                  response_jwt(tool, request_claims, ITEMS, **{DL + "data": "\x00"})):
        response = client.post("/lti/deep-linking/return", data={"JWT": token})
        assert response.status_code == 400
        assert ("The deep linking response is not acceptable: it contains a NUL character."
                in response.get_data(as_text=True))
    assert _stored(database) == ([], [])


def test_items_that_are_not_tool_activities_are_left_out_by_name(client, tool, request_claims,
                                                                 database):
    items = [{"type": "ltiResourceLink", "title": "Adding fractions"},
             {"type": "link", "url": "https://example.com/fractions", "title": "Fractions wiki"},
             {"type": "file", "url": "https://tool.example/f.pdf", "title": "Worksheet"},
             {"type": "html", "html": "<p>Hi</p>"},
             {"type": "image", "url": "https://tool.example/i.png", "title": "Diagram"},
             {"type": "quiz", "title": "Mystery"}, "not an object",
             {"type": "ltiResourceLink", "title": "Bad custom", "custom": {"level": 3}}]
    response = client.post("/lti/deep-linking/return",
                           data={"JWT": response_jwt(tool, request_claims, items)})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<ul><li>Adding fractions</li></ul>" in page
    assert ('<p role="status">Not added:</p>\n<ul>'
            "<li>“Fractions wiki” is a plain web link (https://example.com/fractions); this portal "
            "adds only activities that launch in the tool.</li>"
            "<li>“Worksheet” is a file (https://tool.example/f.pdf); this portal adds only "
            "activities that launch in the tool.</li>"
            "<li>“Untitled” is an HTML fragment; this portal adds only activities that launch in "
            "the tool.</li>"
            "<li>“Diagram” is an image (https://tool.example/i.png); this portal adds only "
            "activities that launch in the tool.</li>"
            "<li>“Mystery”, of unknown type &#39;quiz&#39;.</li>"
            "<li>An item that is not a JSON object.</li>"
            "<li>“Bad custom”: custom parameter &#39;level&#39; must map a name to a string.</li>"
            "</ul>") in page
    assert _stored(database) == ([None], [])


def test_items_past_the_limit_are_left_out(client, tool, request_claims, database):
    items = [{"type": "link", "url": f"https://example.com/{n}"} for n in range(100)]
    items.append({"type": "ltiResourceLink", "title": "The 101st"})
    response = client.post("/lti/deep-linking/return",
                           data={"JWT": response_jwt(tool, request_claims, items)})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<p>Nothing was added.</p>" in page
    assert page.count("is a plain web link") == 100
    assert "<li>1 more item(s): a response may add at most 100.</li>" in page
    assert _stored(database) == ([], [])
