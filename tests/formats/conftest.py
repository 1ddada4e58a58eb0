"""Fixtures for the export-format tests: run ``gateway import`` on a folder, count what the store
holds, and call the rostering service as an app of the imported district."""
from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.cli import cli
from gateway.oauth import service
from gateway.oneroster.endpoints import BASE_PATH
from gateway.oneroster.vocabulary import ROSTERING_SCOPES
from gateway.sharing.policy import share_everything_document
from gateway.sharing.service import app_district_id, set_policy
from gateway.store.models import (AcademicSession, Class, Course, Demographics, District, Enrollment, Org,
                                  Role, User, utcnow)

MODELS = (Org, AcademicSession, Course, Class, User, Role, Enrollment, Demographics, District)


@pytest.fixture
def gateway_import(runner):
    """Run ``gateway import PATH ARGS...`` and return the click result."""
    def run(path: Path, *args: str):
        return runner.invoke(cli, ["import", str(path), *args])
    return run


@pytest.fixture
def store_counts(database):
    """How many records of each kind the store holds."""
    def counts() -> dict[str, int]:
        with database.session_scope() as session:
            return {m.__tablename__: session.execute(select(func.count()).select_from(m)).scalar_one()
                    for m in MODELS}
    return counts


@pytest.fixture
def copy_fixture(fixtures_dir, tmp_path):
    """A copy of a committed fixture folder that a test may break."""
    def copy(name: str) -> Path:
        return Path(shutil.copytree(fixtures_dir / name, tmp_path / name))
    return copy


class Rostering:
    """GETs on the rostering service with an app's bearer token."""

    def __init__(self, client, token: str) -> None:
        self.client, self.token = client, token

    def get(self, path: str, **params) -> dict:
        """The JSON body of a GET, asserting a 200."""
        response = self.client.get(BASE_PATH + path, query_string=params,
                                   headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def ids(self, path: str) -> list[str]:
        """The sourcedIds of a collection, sorted."""
        [records] = self.get(path, limit="1000").values()
        return sorted(record["sourcedId"] for record in records)


@pytest.fixture
def rostering(client, database):
    """A :class:`Rostering` for a new app of ``district`` sharing everything, every scope."""
    def connect(district: str) -> Rostering:
        with database.session_scope() as session:
            creds = service.register_app(session, name="Format test app", district_sourced_id=district,
                                         scopes=list(ROSTERING_SCOPES), now=utcnow())
            set_policy(session, app_id=creds.app_id, district_id=app_district_id(session, creds.app_id, district),
                       document=share_everything_document(), now=utcnow())
        basic = base64.b64encode(f"{creds.client_id}:{creds.client_secret}".encode()).decode()
        response = client.post("/oauth/token", headers={"Authorization": "Basic " + basic},
                               data={"grant_type": "client_credentials", "scope": " ".join(ROSTERING_SCOPES)})
        assert response.status_code == 200, response.get_json()
        return Rostering(client, response.get_json()["access_token"])
    return connect
