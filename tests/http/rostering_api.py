"""Helpers for the REST service tests: a client for the rostering service, the error body, the
demo bundle with terms."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

from gateway.oneroster.endpoints import BASE_PATH

ISSUER = "http://gateway.test"
"""The ``ISSUER`` of the test app (tests/conftest.py): every href and Link starts with it."""
SERVICE = ISSUER + BASE_PATH


def demo_with_terms(fixtures_dir: Path, target: Path) -> Path:
    """A copy of the demo bundle whose semesters are typed ``term``: the demo district has no
    session of type term, and the /terms paths need some to serve."""
    shutil.copytree(fixtures_dir / "demo", target)
    path = target / "academicSessions.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        if row[4] == "semester":
            row[4] = "term"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return target


class Api:
    """Calls the rostering service with a bearer token; paths are relative to the service base."""

    def __init__(self, client, token: str | None) -> None:
        self.client = client
        self.token = token

    def get(self, path: str, token: str | None = None, **params):
        """GET ``BASE_PATH + path`` with ``params`` as the query string."""
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.get(BASE_PATH + path, query_string=params, headers=headers)

    def records(self, path: str, **params) -> list[dict]:
        """The records of a collection GET, asserting a 200."""
        response = self.get(path, **params)
        assert response.status_code == 200, response.get_json()
        [records] = response.get_json().values()
        return records

    def ids(self, path: str, **params) -> list[str]:
        """The sourcedIds of a collection GET, in the order served."""
        return [record["sourcedId"] for record in self.records(path, **params)]


def error_body(code_minor: str, description: str, code_major: str = "failure") -> dict:
    """The binding's error body (imsx_StatusInfo fields at the top level)."""
    return {"imsx_codeMajor": code_major, "imsx_severity": "error",
            "imsx_description": description,
            "imsx_CodeMinor": {"imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem",
                 "imsx_codeMinorFieldValue": code_minor}]}}
