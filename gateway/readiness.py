"""Readiness: whether this gateway process can serve now, for a load balancer's ``/readyz``
probe. No web framework here. Liveness (``/healthz``) needs no check at all: a process that
answers is alive.

Each check says ``ok`` or what is wrong, and nothing more: the answer is public (load balancers
do not authenticate), so it carries no address, no credentials and no personal data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from gateway.redis_client import redis_reachable
from gateway.store import Database
from gateway.store.migrate import current_revision, head_revision, known_revision

OK = "ok"


@dataclass(frozen=True)
class Readiness:
    """The outcome of each check, by name."""

    checks: dict[str, str]

    @property
    def failed(self) -> list[str]:
        """The names of the checks that did not pass."""
        return [name for name, outcome in self.checks.items() if outcome not in (OK, "not configured")]

    @property
    def ready(self) -> bool:
        """Whether every check passed."""
        return not self.failed


def check_readiness(database: Database, redis_client: Any | None) -> Readiness:
    """Check that the database answers, that its schema is at this code's newest migration
    (requests would otherwise fail on missing tables or columns), and that Redis answers when
    one is configured (``redis_client`` None: embedded mode, nothing to check)."""
    checks: dict[str, str] = {}
    try:
        revision = current_revision(database)
    except SQLAlchemyError:
        checks["database"], checks["migrations"] = "unreachable", "unknown"
    else:
        checks["database"] = OK
        if revision == head_revision():
            checks["migrations"] = OK
        elif revision is None or known_revision(revision):
            checks["migrations"] = "behind"
        else:
            checks["migrations"] = "unknown revision (migrated by newer code)"
    if redis_client is None:
        checks["redis"] = "not configured"
    else:
        checks["redis"] = OK if redis_reachable(redis_client) else "unreachable"
    return Readiness(checks)
