"""Settings: built-in defaults, overridden by ``GATEWAY_*`` environment variables, then by a dict."""
from __future__ import annotations

import os
from typing import Any, Mapping

DEFAULTS: dict[str, Any] = {
    # None means "a SQLite file in the instance folder", resolved by the store once the app exists.
    "DATABASE_URL": None,
    "SECRET_KEY": None,
    "ISSUER": "http://localhost:5000",
    # Bulk imports that would retire more than this share of a district's active users, classes
    # or enrollments are refused unless forced: a truncated SIS export must not wipe rosters.
    "MASS_CHANGE_THRESHOLD": 0.25,
    # How many row-level problems an import keeps in full; the rest are counted.
    "IMPORT_MAX_REPORTED_ERRORS": 1000,
    "ONEROSTER_DEFAULT_LIMIT": 100,
    "ONEROSTER_MAX_LIMIT": 10000,
    "TOKEN_LIFETIME_SECONDS": 3600,
}

# Settings that arrive from the environment as strings and must be converted.
_CONVERTERS = {
    "MASS_CHANGE_THRESHOLD": float,
    "IMPORT_MAX_REPORTED_ERRORS": int,
    "ONEROSTER_DEFAULT_LIMIT": int,
    "ONEROSTER_MAX_LIMIT": int,
    "TOKEN_LIFETIME_SECONDS": int,
}

ENV_PREFIX = "GATEWAY_"


def settings_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the known settings present in the environment, converted to their types."""
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for name in DEFAULTS:
        raw = environ.get(ENV_PREFIX + name)
        if raw is None or raw == "":
            continue
        convert = _CONVERTERS.get(name, str)
        try:
            found[name] = convert(raw)
        except ValueError as exc:
            raise ValueError(f"{ENV_PREFIX}{name}={raw!r} is not a valid {convert.__name__}") from exc
    return found


def build_settings(overrides: Mapping[str, Any] | None = None,
                   environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Merge defaults, then the environment, then explicit overrides (later wins)."""
    settings = dict(DEFAULTS)
    settings.update(settings_from_environment(environ))
    settings.update(overrides or {})
    return settings
