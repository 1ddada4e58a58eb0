"""Fixtures for the LTI platform tests: the small district imported, an app connected to it, tools
with their own key pairs, signed-in browsers, launches and service tokens."""
from __future__ import annotations

import uuid

import pytest

from gateway.lti.platform import registration
from gateway.lti.platform.portal import set_password
from gateway.oauth import service
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import set_policy
from gateway.store.models import utcnow

from bundles import small_district, write_bundle
from lti_support import (PASSWORD, TOOL, JwksServer, MaskingVisibility, RegisteredTool,
                         ToolKeyPair, auth_request, client_assertion, csrf_of, posted_form,
                         start_launch, verify_platform_token)


@pytest.fixture
def district(database, tmp_path) -> dict:
    """The small district (sourcedId d1) imported; returns its rows."""
    rows = small_district()
    with database.session_scope() as session:
        report = import_bundle(session, write_bundle(tmp_path / "bundle", rows),
                               ImportOptions(force=True))
        assert report.outcome == "applied"
    return rows


@pytest.fixture
def passwords(database, district) -> None:
    """Every user of the small district gets the password :data:`PASSWORD`."""
    with database.session_scope() as session:
        for user in district["users"]:
            set_password(session, user["username"], PASSWORD)


@pytest.fixture
def app_id(database, district) -> int:
    """An app connected to d1, whose policy there shares the whole district."""
    with database.session_scope() as session:
        created = service.register_app(session, name="Math Tool", district_sourced_id="d1",
                                       scopes=None, now=utcnow())
        set_policy(session, app_id=created.app_id, district_id=1,
                   document=share_everything_document(), now=utcnow())
        return created.app_id


@pytest.fixture
def jwks_server(app) -> JwksServer:
    """Tools' JWKS documents by URL, fetched by the platform instead of over the network."""
    server = JwksServer()
    app.extensions["gateway.lti"].tool_keys.fetch = server
    return server


@pytest.fixture
def make_tool(database, app_id, jwks_server):
    """Register a tool for the app (approved, deployed in d1) and publish its JWKS."""
    def make(**options) -> RegisteredTool:
        keys = ToolKeyPair.generate()
        name = options.pop("slug", uuid.uuid4().hex[:8])
        jwks_url = f"{TOOL}/{name}/jwks"
        jwks_server.documents[jwks_url] = keys.jwks
        settings = dict(app=app_id, district=None, name=options.pop("name", "Math Tool"),
                        login_url=f"{TOOL}/{name}/login", redirect_uris=[f"{TOOL}/{name}/launch"],
                        target_link_uri=f"{TOOL}/{name}/launch", jwks_url=jwks_url)
        settings.update(options)
        with database.session_scope() as session:
            registered = registration.register_tool(session, now=utcnow(), **settings)
        return RegisteredTool(registered.client_id, registered.deployment_id, keys, jwks_url)
    return make


@pytest.fixture
def tool(make_tool) -> RegisteredTool:
    """An approved tool with deep linking."""
    return make_tool(slug="math", deep_linking_uri=f"{TOOL}/math/pick")


@pytest.fixture
def place(database):
    """Place a tool in a class; returns the resource link id."""
    def place(client_id: str, class_id: str = "k1", **options) -> str:
        with database.session_scope() as session:
            return registration.place_tool(session, client_id=client_id, class_sourced_id=class_id,
                                           district=None, title=options.pop("title", "Fractions"),
                                           now=utcnow(), **options).link_id
    return place


@pytest.fixture
def sign_in(client, passwords):
    """Sign a browser (default: the test client) in as ``username``."""
    def sign_in(username: str, browser=None, password: str = PASSWORD):
        browser = browser or client
        page = browser.get("/login").get_data(as_text=True)
        response = browser.post("/login", data={"username": username, "password": password,
                                                "csrf_token": csrf_of(page)})
        assert response.status_code == 303, response.get_data(as_text=True)
        return browser
    return sign_in


@pytest.fixture
def launch(client, tool, place, sign_in):
    """Sign in as ``username`` and launch a link: the id_token's verified claims."""
    def launch(username: str = "lisa", link_id: str | None = None, registered=None, **overrides):
        registered = registered or tool
        link_id = link_id or place(registered.client_id)
        sign_in(username)
        login = start_launch(client, link_id)
        redirect_uri = overrides.pop("redirect_uri", f"{TOOL}/math/launch")
        response = client.get("/lti/authorize", query_string=auth_request(login, redirect_uri,
                                                                           **overrides))
        assert response.status_code == 200, response.get_data(as_text=True)
        return verify_platform_token(client, posted_form(response)["fields"]["id_token"])
    return launch


@pytest.fixture
def service_token(client):
    """A service token for ``registered`` with ``scope`` (default: all it may have)."""
    def token(registered: RegisteredTool, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": client_assertion(registered)}
        if scope:
            form["scope"] = scope
        response = client.post("/lti/token", data=form)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["access_token"]
    return token


@pytest.fixture
def policy(monkeypatch) -> MaskingVisibility:
    """Make every app see the district through :class:`MaskingVisibility`."""
    visibility = MaskingVisibility()
    monkeypatch.setattr("gateway.http.context.request_visibility",
                        lambda app_id, district_id, policy_version=None: visibility)
    return visibility
