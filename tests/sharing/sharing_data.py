"""Constants shared by the sharing tests."""
from __future__ import annotations

from typing import Any

SECRET = "test-secret-key"
"""The SECRET_KEY of the test app (tests/conftest.py)."""

MINIMUM_POLICY: dict[str, Any] = {
    "schools": ["*"], "grades": ["*"], "classes": ["*"],
    "fields": {"user": ["*"], "demographics": []},
    "mask": {"user.familyName": "initial"},
    "pseudonymize": ["user.sourcedId"],
    "scopes": ["https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"],
    "contract": {"start": "2026-08-01", "end": "2027-07-31"},
}
"""The policy document of issue 4, verbatim."""
