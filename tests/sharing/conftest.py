"""Fixtures for the sharing tests: the small district in the store, and visibilities built on it."""
from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlalchemy import select

from gateway.oauth import service as oauth_service
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.sharing import LedgerWriter, PolicyVisibility, Pseudonymizer, parse_policy
from gateway.store.models import District, utcnow

from bundles import small_district, write_bundle
from sharing_data import SECRET


@pytest.fixture
def small(database, tmp_path) -> int:
    """The small district (tests/bundles.py) imported; returns its district id."""
    path = write_bundle(tmp_path / "small", small_district())
    with database.session_scope() as session:
        report = import_bundle(session, path, ImportOptions())
        assert report.outcome == "applied"
        return session.execute(select(District.id).where(District.sourced_id == "d1")).scalar_one()


@pytest.fixture
def session(database):
    """A session whose work is rolled back at the end of the test."""
    with database.sessionmaker() as session:
        yield session
        session.rollback()


@pytest.fixture
def visibility(session, small):
    """Build a :class:`PolicyVisibility` on the small district from a policy document (None: no
    policy), for app 1 unless told, writing the ledger in ``session``."""
    def build(document: dict[str, Any] | None, app_id: int = 1, district_id: int | None = None,
              clock=utcnow) -> PolicyVisibility:
        district_id = small if district_id is None else district_id
        policy = None if document is None else parse_policy(document)
        return PolicyVisibility(policy, session=session, app_id=app_id, district_id=district_id,
                                pseudonyms=Pseudonymizer(SECRET, app_id, district_id),
                                ledger=LedgerWriter(session, app_id=app_id, district_id=district_id,
                                                    clock=clock))
    return build


@pytest.fixture
def register(database, small):
    """Register an app on the small district; returns its credentials."""
    def create(name: str = "Reading App") -> oauth_service.AppCredentials:
        with database.session_scope() as session:
            return oauth_service.register_app(session, name=name, district_sourced_id="d1",
                                              scopes=None, now=utcnow())
    return create


@pytest.fixture
def basic_auth():
    """An HTTP Basic Authorization header for client credentials (RFC 6749 §2.3.1)."""
    def header(client_id: str, client_secret: str) -> dict[str, str]:
        raw = f"{client_id}:{client_secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return header
