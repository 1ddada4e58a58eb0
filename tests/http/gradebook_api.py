"""Helpers for the gradebook service tests: a client for the service with a bearer token, and
the official gradebook OpenAPI document's validators."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from gateway.gradebook.endpoints import BASE_PATH
from gateway.oneroster.vocabulary import GRADEBOOK_SCOPES, ROSTERING_SCOPES

from rostering_api import ISSUER

SERVICE = ISSUER + BASE_PATH
ALL_SCOPES = ROSTERING_SCOPES + GRADEBOOK_SCOPES
"""An app that reads the roster and reads and writes grades."""

OFFICIAL_DOCUMENT = (Path(__file__).resolve().parents[3] / "shared" / "specs" / "oneroster"
                     / "onerosterv1p2gradebookservice_openapi3_v1p0.json")
"""The official 1EdTech gradebook OpenAPI document (reference data kept outside the project)."""


class GradebookApi:
    """Calls the gradebook service with a bearer token; paths are relative to its base."""

    def __init__(self, client, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params):
        """GET ``BASE_PATH + path`` with ``params`` as the query string."""
        return self.client.get(BASE_PATH + path, query_string=params, headers=self._headers())

    def put(self, path: str, body):
        """PUT a JSON body."""
        return self.client.put(BASE_PATH + path, json=body, headers=self._headers())

    def post(self, path: str, body):
        """POST a JSON body."""
        return self.client.post(BASE_PATH + path, json=body, headers=self._headers())

    def delete(self, path: str):
        """DELETE."""
        return self.client.delete(BASE_PATH + path, headers=self._headers())

    def records(self, path: str, **params) -> list[dict]:
        """The records of a collection GET, asserting a 200."""
        response = self.get(path, **params)
        assert response.status_code == 200, response.get_json()
        [records] = response.get_json().values()
        return records


@lru_cache(maxsize=1)
def _read_official() -> dict:
    return json.loads(OFFICIAL_DOCUMENT.read_text(encoding="utf-8"))


def official_document() -> dict:
    """The official gradebook OpenAPI document, parsed: missing fails under CI=true, skips the
    test elsewhere (as tests/oneroster/test_endpoints.py does)."""
    if not OFFICIAL_DOCUMENT.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"official OneRoster document missing: {OFFICIAL_DOCUMENT}")
        pytest.skip(f"official OneRoster document not available at {OFFICIAL_DOCUMENT}")
    return _read_official()


def official_validator(schema_name: str) -> Draft7Validator:
    """A validator for one of the official document's component schemas."""
    uri = "urn:oneroster:gradebook"
    registry = Registry().with_resource(uri, DRAFT7.create_resource(official_document()))
    return Draft7Validator({"$ref": f"{uri}#/components/schemas/{schema_name}"},
                           registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER)


def ref(sourced_id: str) -> dict:
    """A reference as Google Classroom sends it: only the sourcedId."""
    return {"sourcedId": sourced_id}
