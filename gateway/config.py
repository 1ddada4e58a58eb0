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
    # SQLite: how long an import or another command that changes the store waits for the one
    # changing it now to finish (a nightly import of a large district can take minutes).
    "STORE_WRITE_WAIT_SECONDS": 600.0,
    # Bounds on what an import reads (gateway.oneroster.csv.limits): a bundle past one is refused
    # before it costs memory or time. A 1M-student district is under 1 GB uncompressed, and real
    # CSV exports compress less than 20 times.
    "IMPORT_MAX_BUNDLE_BYTES": 4 * 1024 ** 3,
    "IMPORT_MAX_COMPRESSION_RATIO": 100.0,
    "IMPORT_MAX_ENTRIES": 1000,
    "IMPORT_MAX_LINE_LENGTH": 1024 * 1024,
    "IMPORT_MAX_FIELD_LENGTH": 128 * 1024,
    "ONEROSTER_DEFAULT_LIMIT": 100,
    "ONEROSTER_MAX_LIMIT": 10000,
    # The title of the category the gateway gives every class (GATEWAY_DEFAULT_CATEGORY_TITLE):
    # gradebook clients take a class's first category, and a SIS often exports none.
    "DEFAULT_CATEGORY_TITLE": "Default",
    "TOKEN_LIFETIME_SECONDS": 3600,
    # How long a checked bearer token is trusted without looking it up again: the bound on how
    # late a revocation, a suspension, a new policy or a contract's end takes effect.
    "TOKEN_RECHECK_SECONDS": 1.0,
    # Largest body the token endpoint and the portal's forms read (413 beyond): they are a few
    # short fields, and reading megabytes to find a password only serves a denial of service.
    "FORM_MAX_BYTES": 16384,
    # A roster bundle uploaded in the admin console (a zip): the one form that carries a file.
    "UPLOAD_MAX_BYTES": 512 * 1024 ** 2,
    # Portal sessions end at sign-out, on a password change, on `gateway users revoke-sessions`,
    # and this long after sign-in at the latest.
    "PORTAL_SESSION_LIFETIME_SECONDS": 43200,
    # Guessing throttles: this many failed attempts within THROTTLE_WINDOW_SECONDS lock the
    # account, the client address, or the OAuth client_id for THROTTLE_LOCKOUT_SECONDS (a correct
    # secret is refused too meanwhile). Addresses get more room: a school's students may all
    # reach the gateway from one address.
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 100,
    "TOKEN_MAX_FAILURES_PER_CLIENT": 10,
    "THROTTLE_WINDOW_SECONDS": 900,
    "THROTTLE_LOCKOUT_SECONDS": 300,
    # Reverse proxies in front of the gateway whose X-Forwarded-For is trusted for the client
    # address (0: the address of the TCP peer). Set it behind a proxy, or every sign-in counts
    # against the proxy's address.
    "PROXY_COUNT": 0,
    # Days of disclosure-ledger entries `gateway ledger prune` keeps; None keeps them all.
    "LEDGER_RETENTION_DAYS": None,
    # Pulls from a SIS's OneRoster REST service (`gateway sources`): how long one request may
    # take, and how far before the last applied pull's start a delta asks from. The overlap
    # covers a SIS transaction that stamped records before that start but committed after the
    # pull read them (a large import does); records fetched twice change nothing.
    "SIS_PULL_TIMEOUT_SECONDS": 60.0,
    "SIS_PULL_OVERLAP_SECONDS": 3600,
    # LTI 1.3 platform. Every JWT time check allows this much clock skew and no more (small and
    # explicit; servers kept in time by NTP are well within it).
    "LTI_CLOCK_LEEWAY_SECONDS": 10,
    # Lifetime of the id_tokens the platform signs (Core §5.1.2 exp) and of the signed
    # lti_message_hint between the portal click and the tool's authentication request.
    "LTI_ID_TOKEN_LIFETIME_SECONDS": 300,
    "LTI_MESSAGE_HINT_LIFETIME_SECONDS": 300,
    # A tool's client assertion may be at most this old (iat) and live at most this long (exp-iat).
    "LTI_ASSERTION_MAX_AGE_SECONDS": 300,
    # Service access tokens issued to tools.
    "LTI_SERVICE_TOKEN_LIFETIME_SECONDS": 3600,
    # A tool's JWKS is cached this long, and refetched at most this often on an unknown kid.
    "LTI_JWKS_CACHE_SECONDS": 300,
    "LTI_JWKS_MIN_REFETCH_SECONDS": 5,
    "LTI_JWKS_FETCH_TIMEOUT_SECONDS": 5,
    # How long an instructor has to pick content in a tool (deep linking), and a registration
    # token to be used (dynamic registration).
    "LTI_DEEP_LINKING_LIFETIME_SECONDS": 3600,
    "LTI_REGISTRATION_TOKEN_LIFETIME_SECONDS": 86400,
    # NRPS and AGS page sizes.
    "LTI_DEFAULT_LIMIT": 100,
    "LTI_MAX_LIMIT": 1000,
    # Redis, for what every web process of every host must agree on (today the rate-limit
    # counters). Empty: embedded mode, one host, counters in each process's memory.
    "REDIS_URL": "",
    # Put before every key the gateway writes, so gateways (or test runs) sharing a Redis never
    # collide.
    "REDIS_KEY_PREFIX": "gateway:",
    # Rate limits (a token bucket: BURST requests at once, refilled at PER_SECOND; 0 disables).
    # Per app, over its OneRoster REST calls and its tools' LTI service calls together: a full
    # sync of a large district, one page after another, stays under 100 pages a second, and the
    # burst absorbs a few parallel streams.
    "APP_RATE_PER_SECOND": 100.0,
    "APP_RATE_BURST": 1000,
    # Per client address, at each of the token endpoints and at sign-in, successes counted too
    # (each costs a scrypt hash or a signature check). Room for a school behind one address
    # whose students sign in at the start of a class.
    "IP_RATE_PER_SECOND": 5.0,
    "IP_RATE_BURST": 150,
    # Background jobs (gateway.jobs), on queues in the Redis above; without it they run in the
    # command that starts them. One attempt of a job may run this long before its work horse is
    # killed (a bulk import of a 1M-student district takes well under an hour).
    "JOB_TIMEOUT_SECONDS": 4 * 3600,
    # Where a queued import's bundle waits for its worker; empty: spool/ in the instance folder.
    # With workers on other hosts: storage every host mounts at the same path.
    "SPOOL_DIR": "",
    # A score an LMS refused is tried again after this many seconds, then twice as long each
    # time (at most an hour), 8 attempts in all.
    "LMS_GRADE_FIRST_WAIT_SECONDS": 30,
    # The change feed (GET /events) keeps events this many days; a webhook delivery that fails
    # is tried again after WEBHOOK_FIRST_WAIT_SECONDS, doubled per failure (at most an hour); a
    # receiver has WEBHOOK_TIMEOUT_SECONDS to answer.
    "EVENTS_RETENTION_DAYS": 90,
    "WEBHOOK_FIRST_WAIT_SECONDS": 10,
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    # How many webhooks one delivery run sends to at once.
    "WEBHOOK_WORKERS": 8,
    # After gradebook writes, a process queues at most one delivery job per district this often
    # (writes in between are delivered by it).
    "WEBHOOK_TRIGGER_SPACING_SECONDS": 1.0,
    # Observability: Prometheus metrics at /metrics (and the per-request counting behind them),
    # a bearer token /metrics requires when set, the log format (json or text) and one access
    # line per request.
    "METRICS": True,
    "METRICS_TOKEN": "",
    "LOG_FORMAT": "json",
    "ACCESS_LOG": True,
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def boolean(raw: str) -> bool:
    """A yes/no setting from the environment: 1/true/yes/on or 0/false/no/off."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(raw)


# Settings that arrive from the environment as strings and must be converted.
_CONVERTERS = {
    "MASS_CHANGE_THRESHOLD": float,
    "IMPORT_MAX_REPORTED_ERRORS": int,
    "STORE_WRITE_WAIT_SECONDS": float,
    "IMPORT_MAX_BUNDLE_BYTES": int,
    "IMPORT_MAX_COMPRESSION_RATIO": float,
    "IMPORT_MAX_ENTRIES": int,
    "IMPORT_MAX_LINE_LENGTH": int,
    "IMPORT_MAX_FIELD_LENGTH": int,
    "ONEROSTER_DEFAULT_LIMIT": int,
    "ONEROSTER_MAX_LIMIT": int,
    "TOKEN_LIFETIME_SECONDS": int,
    "TOKEN_RECHECK_SECONDS": float,
    "FORM_MAX_BYTES": int,
    "UPLOAD_MAX_BYTES": int,
    "PORTAL_SESSION_LIFETIME_SECONDS": int,
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": int,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": int,
    "TOKEN_MAX_FAILURES_PER_CLIENT": int,
    "THROTTLE_WINDOW_SECONDS": int,
    "THROTTLE_LOCKOUT_SECONDS": int,
    "PROXY_COUNT": int,
    "LEDGER_RETENTION_DAYS": int,
    "SIS_PULL_TIMEOUT_SECONDS": float,
    "SIS_PULL_OVERLAP_SECONDS": int,
    "LTI_CLOCK_LEEWAY_SECONDS": int,
    "LTI_ID_TOKEN_LIFETIME_SECONDS": int,
    "LTI_MESSAGE_HINT_LIFETIME_SECONDS": int,
    "LTI_ASSERTION_MAX_AGE_SECONDS": int,
    "LTI_SERVICE_TOKEN_LIFETIME_SECONDS": int,
    "LTI_JWKS_CACHE_SECONDS": int,
    "LTI_JWKS_MIN_REFETCH_SECONDS": int,
    "LTI_JWKS_FETCH_TIMEOUT_SECONDS": int,
    "LTI_DEEP_LINKING_LIFETIME_SECONDS": int,
    "LTI_REGISTRATION_TOKEN_LIFETIME_SECONDS": int,
    "LTI_DEFAULT_LIMIT": int,
    "LTI_MAX_LIMIT": int,
    "APP_RATE_PER_SECOND": float,
    "APP_RATE_BURST": int,
    "IP_RATE_PER_SECOND": float,
    "IP_RATE_BURST": int,
    "JOB_TIMEOUT_SECONDS": int,
    "LMS_GRADE_FIRST_WAIT_SECONDS": int,
    "EVENTS_RETENTION_DAYS": int,
    "WEBHOOK_FIRST_WAIT_SECONDS": int,
    "WEBHOOK_TIMEOUT_SECONDS": float,
    "WEBHOOK_WORKERS": int,
    "WEBHOOK_TRIGGER_SPACING_SECONDS": float,
    "METRICS": boolean,
    "ACCESS_LOG": boolean,
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
