"""Fixtures for the OAuth tests: a district, an app connected to it, and ways to present credentials."""
from __future__ import annotations

import base64

import pytest

from gateway.oauth import service
from gateway.oneroster.vocabulary import ROSTERING_SCOPES
from gateway.store.models import District, utcnow


@pytest.fixture
def basic_auth():
    """Build an HTTP Basic Authorization header (RFC 6749 §2.3.1)."""
    def header(client_id: str, client_secret: str) -> dict[str, str]:
        raw = f"{client_id}:{client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return header


@pytest.fixture
def create_district(database):
    """Insert a district row and return its id."""
    def create(sourced_id: str = "district-1", name: str = "First District") -> int:
        with database.session_scope() as session:
            district = District(sourced_id=sourced_id, name=name)
            session.add(district)
            session.flush()
            return district.id
    return create


@pytest.fixture
def district_id(create_district) -> int:
    """The id of the district ``district-1``."""
    return create_district()


@pytest.fixture
def register_app(database, district_id):
    """Register an app on ``district-1`` (all rostering scopes unless told) and return its credentials."""
    def register(name: str = "Reading App", scopes=ROSTERING_SCOPES,
                 district: str = "district-1") -> service.AppCredentials:
        with database.session_scope() as session:
            return service.register_app(session, name=name, district_sourced_id=district,
                                        scopes=scopes, now=utcnow())
    return register


@pytest.fixture
def credentials(register_app) -> service.AppCredentials:
    """An app on ``district-1`` granted the three rostering scopes."""
    return register_app()


@pytest.fixture
def request_token(client, basic_auth):
    """POST to the token endpoint with HTTP Basic credentials and the given form fields."""
    def post(creds: service.AppCredentials, **form: str):
        form.setdefault("grant_type", "client_credentials")
        return client.post("/oauth/token", data=form,
                           headers=basic_auth(creds.client_id, creds.client_secret))
    return post
