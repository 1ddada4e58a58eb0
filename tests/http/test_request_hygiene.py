"""Requests carrying a NUL character are refused with each spec's 400 body on both backends (a NUL
used to reach PostgreSQL, which cannot store or compare one, and end as a 500), and the token
endpoint and the portal's forms read bounded bodies (413 beyond)."""
from __future__ import annotations

import base64
import io

import pytest

from gateway import create_app
from gateway.oneroster.endpoints import BASE_PATH

from rostering_api import error_body


@pytest.fixture
def api(load_small, api_for):
    load_small()
    return api_for("d1")


def nul_refused(where: str) -> dict:
    return error_body("invaliddata", f"The {where} contains a NUL character, which is not allowed.")


@pytest.mark.parametrize("path, params, where", [
    ("/users", {"filter": "givenName='Li\x00sa'"}, "query parameter 'filter'"),
    ("/users", {"fields": "sourcedId,\x00givenName"}, "query parameter 'fields'"),
    ("/users", {"sort": "givenName\x00"}, "query parameter 'sort'"),
    ("/users", {"orderBy": "asc\x00"}, "query parameter 'orderBy'"),
    ("/users", {"limit\x00": "5"}, "query parameter 'limit?'"),
    ("/users/u1%00", {}, "path"),
    ("/classes/k1%00/students", {"filter": "status='active'"}, "path"),
    ("/users/u1", {"fields": "\x00"}, "query parameter 'fields'"),
])
def test_rest_refuses_a_nul_with_the_binding_body(api, path, params, where):
    response = api.get(path, **params)

    assert response.status_code == 400
    assert response.mimetype == "application/json"
    assert response.get_json() == nul_refused(where)


def test_rest_serves_the_same_request_without_the_nul(api):
    assert api.ids("/users", filter="givenName='Lisa'") == ["u1"]
    assert api.get("/users/u1").status_code == 200


@pytest.fixture
def oauth_client(client, database):
    """An app with credentials, and the test client."""
    from gateway.oauth import service
    from gateway.store.models import District, utcnow

    with database.session_scope() as session:
        session.add(District(sourced_id="d1", name="One"))
        session.flush()
        credentials = service.register_app(session, name="App", district_sourced_id="d1",
                                           scopes=None, now=utcnow())
    return client, credentials


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def assert_oauth_error(response, status: int, description: str) -> None:
    assert response.status_code == status
    assert response.get_json() == {"error": "invalid_request", "error_description": description}
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"


@pytest.mark.parametrize("kind", ["client_id", "secret", "quoted client_id"])
def test_token_endpoint_refuses_a_nul_in_basic_credentials(oauth_client, kind):
    client, credentials = oauth_client
    client_id, secret = credentials.client_id, credentials.client_secret
    if kind == "client_id":
        client_id += "\x00"
    elif kind == "secret":
        secret = "\x00" + secret
    else:
        # RFC 6749 §2.3.1: each part is form-urlencoded before the Basic encoding.
        client_id += "%00"
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=basic(client_id, secret))

    assert_oauth_error(response, 400, "The Authorization header contains a NUL character, which "
                                      "is not allowed.")


@pytest.mark.parametrize("field", ["client_id", "client_secret", "grant_type", "scope"])
def test_token_endpoint_refuses_a_nul_in_a_form_field(oauth_client, field):
    client, credentials = oauth_client
    form = {"grant_type": "client_credentials", "client_id": credentials.client_id,
            "client_secret": credentials.client_secret, "scope": "x"}
    form[field] += "\x00"
    response = client.post("/oauth/token", data=form)

    assert_oauth_error(response, 400, f"The form field {field!r} contains a NUL character, which "
                                      "is not allowed.")


def test_token_endpoint_still_issues_to_the_same_client_without_the_nul(oauth_client):
    client, credentials = oauth_client
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=basic(credentials.client_id, credentials.client_secret))
    assert response.status_code == 200


def login_page(client) -> str:
    import re

    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("field", ["username", "password", "district", "csrf_token"])
def test_login_refuses_a_nul_with_a_page(client, field):
    form = {"username": "lisa", "password": "a password", "district": "d1",
            "csrf_token": login_page(client)}
    form[field] += "\x00"
    response = client.post("/login", data=form)

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert (f"The form field {field!r} contains a NUL character, which is not allowed."
            .replace("'", "&#39;") in response.get_data(as_text=True))


# -- bounded bodies ---------------------------------------------------------------------------

def test_token_endpoint_refuses_an_oversize_body(oauth_client):
    client, credentials = oauth_client
    response = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "scope": "x" * 16384},
                           headers=basic(credentials.client_id, credentials.client_secret))

    assert_oauth_error(response, 413, "The request body is larger than 16384 bytes.")


def test_token_endpoint_refuses_an_oversize_body_of_undeclared_length(oauth_client):
    client, credentials = oauth_client
    body = b"grant_type=client_credentials&scope=" + b"x" * 20000
    # A chunked request as gunicorn hands it over: no Content-Length, the stream ends the body.
    response = client.post("/oauth/token", input_stream=io.BytesIO(body),
                           content_type="application/x-www-form-urlencoded",
                           environ_overrides={"wsgi.input_terminated": True},
                           headers={"Transfer-Encoding": "chunked",
                                    **basic(credentials.client_id, credentials.client_secret)})

    assert response.request.content_length is None
    assert_oauth_error(response, 413, "The request body is larger than 16384 bytes.")


def test_login_refuses_an_oversize_body_with_a_page(client):
    response = client.post("/login", data={"username": "lisa", "password": "p" * 17000,
                                           "csrf_token": login_page(client)})

    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "The request body is larger than 16384 bytes." in response.get_data(as_text=True)


def test_the_cap_is_a_setting(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "k",
                      "INSTANCE_PATH": str(tmp_path / "instance"), "FORM_MAX_BYTES": 100})
    try:
        client = app.test_client()

        def post(body: bytes, chunked: bool):
            if not chunked:
                return client.post("/oauth/token", data=body,
                                   content_type="application/x-www-form-urlencoded")
            return client.post("/oauth/token", input_stream=io.BytesIO(body),
                               content_type="application/x-www-form-urlencoded",
                               environ_overrides={"wsgi.input_terminated": True},
                               headers={"Transfer-Encoding": "chunked"})

        exactly = b"grant_type=client_credentials&scope=" + b"x" * 64
        assert len(exactly) == 100
        for chunked in (False, True):
            # Read whole and answered: no client credentials.
            assert post(exactly, chunked).status_code == 401
            assert_oauth_error(post(exactly + b"x", chunked), 413,
                               "The request body is larger than 100 bytes.")
        assert client.post("/logout", data={"csrf_token": "x" * 100}).status_code == 413
    finally:
        app.extensions["gateway.db"].dispose()
