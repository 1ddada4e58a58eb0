"""Fixtures for the REST service tests: districts imported from bundles, apps with tokens, and a
client that calls the rostering service with a bearer token."""
from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Callable, Iterable

import pytest
from sqlalchemy import update

from gateway.oauth import service
from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.oneroster.vocabulary import ROSTERING_SCOPES
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import app_district_id, set_policy
from gateway.store.apps import AccessToken
from gateway.store.models import utcnow

from bundles import small_district, write_bundle
from rostering_api import Api, demo_with_terms

SHARE_EVERYTHING = share_everything_document()


@pytest.fixture
def load_bundle(database):
    """Import a bundle directory into the store (one transaction) and assert it was applied."""
    def load(path: Path, **options) -> None:
        with database.session_scope() as session:
            report = import_bundle(session, path, ImportOptions(force=True, **options))
            assert report.outcome == "applied", [str(p) for p in report.problems[:5]]
    return load


@pytest.fixture
def load_small(load_bundle, tmp_path):
    """Write and import a variant of :func:`bundles.small_district` (``edit`` changes the rows
    first; ``now`` is the import's clock); returns the rows imported."""
    counter = iter(range(1000))

    def load(edit: Callable[[dict], None] | None = None, *, now: dt.datetime | None = None,
             **bundle_options) -> dict:
        rows = small_district()
        if edit is not None:
            edit(rows)
        load_bundle(write_bundle(tmp_path / f"bundle-{next(counter)}", rows, **bundle_options),
                    now=now)
        return rows
    return load


@pytest.fixture
def demo_district(load_bundle, fixtures_dir, tmp_path) -> str:
    """The demo district (60 students), semesters typed as terms; returns its sourcedId."""
    load_bundle(demo_with_terms(fixtures_dir, tmp_path / "demo"))
    return "district-1"


@pytest.fixture
def connect_app(client, database):
    """Register an app (``name``) on a district and return its credentials and a bearer token
    with ``scopes`` (all rostering scopes by default). The app's policy shares the whole district
    unless ``policy`` says otherwise (None: no policy, so nothing is visible). ``on``: another
    gateway (a Flask app on a store of its own) to connect the app to instead of the test's."""
    def connect(district: str = "d1", scopes: Iterable[str] = ROSTERING_SCOPES,
                policy: dict | None = SHARE_EVERYTHING, name: str = "Test App", *,
                on=None) -> tuple[service.AppCredentials, str]:
        scopes = list(scopes)
        store = database if on is None else on.extensions["gateway.db"]
        http = client if on is None else on.test_client()
        with store.session_scope() as session:
            creds = service.register_app(session, name=name, district_sourced_id=district,
                                         scopes=scopes, now=utcnow())
            if policy is not None:
                set_policy(session, app_id=creds.app_id,
                           district_id=app_district_id(session, creds.app_id, district),
                           document=policy, now=utcnow())
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        response = http.post("/oauth/token", data={"grant_type": "client_credentials",
                                                    "scope": " ".join(scopes)},
                             headers={"Authorization": "Basic " + basic})
        assert response.status_code == 200, response.get_json()
        return creds, response.get_json()["access_token"]
    return connect


@pytest.fixture
def make_token(connect_app):
    """A bearer token of a new app (see ``connect_app``)."""
    def make(district: str = "d1", scopes: Iterable[str] = ROSTERING_SCOPES,
             policy: dict | None = SHARE_EVERYTHING) -> str:
        return connect_app(district, scopes, policy)[1]
    return make


@pytest.fixture
def expire_tokens(database):
    """Make every issued token expired."""
    def expire() -> None:
        with database.session_scope() as session:
            session.execute(update(AccessToken).values(
                expires_at=utcnow() - dt.timedelta(seconds=1)))
    return expire


@pytest.fixture
def api_for(client, make_token):
    """An :class:`Api` for a new app on ``district`` with ``scopes``."""
    def build(district: str = "d1", scopes: Iterable[str] = ROSTERING_SCOPES,
              policy: dict | None = SHARE_EVERYTHING) -> Api:
        return Api(client, make_token(district, scopes, policy))
    return build
