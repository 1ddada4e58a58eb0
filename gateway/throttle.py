"""Throttling of guessed secrets: passwords at the portal's sign-in, client secrets at the token
endpoint. No web framework here.

Each attempt names its keys, e.g. the account and the client address of a sign-in. A key that has
collected ``max_failures`` failed attempts within ``window`` is locked for ``lockout``: every
attempt naming it is refused before any secret is checked, a correct one too (otherwise the
answer to a correct guess would still tell the guesser). Each further failure after the lockout,
while the window lasts, locks it again. A success clears the keys it is told to (the account, not
the address, which a guesser holding one valid account could otherwise keep clearing).

The counters live behind :class:`ThrottleStore`, shared by every worker and host serving the
gateway: the database today (:class:`gateway.store.accounts.SqlThrottleStore`); a Redis store
implementing the same three methods could replace it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence


@dataclass(frozen=True)
class ThrottleRule:
    """How many failures within how long lock a key, and for how long."""

    max_failures: int
    window: dt.timedelta
    lockout: dt.timedelta


@dataclass(frozen=True)
class ThrottleKey:
    """One thing attempts are counted against: a ``kind`` (account, address, client) and a value,
    with the rule for that kind."""

    kind: str
    value: str
    rule: ThrottleRule

    @property
    def digest(self) -> str:
        """The key as stored: hex SHA-256 of kind and value (fixed size, nothing in clear)."""
        return hashlib.sha256(f"{self.kind}\x00{self.value}".encode("utf-8")).hexdigest()


class ThrottleStore(Protocol):
    """Failure counters shared by every worker."""

    def locked_until(self, digests: Sequence[str], now: dt.datetime) -> dt.datetime | None:
        """The latest end of a lockout still running on any of ``digests``, or None."""

    def record_failure(self, digest: str, rule: ThrottleRule, now: dt.datetime) -> None:
        """Count one failure against ``digest`` (atomically: workers race), locking it when it
        reaches the rule's maximum within the window."""

    def clear(self, digests: Sequence[str]) -> None:
        """Forget the failures counted against ``digests``."""


class Throttled(Exception):
    """Too many failed attempts: refused without checking the secret, for ``retry_after``
    seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed attempts; retry after {retry_after} s")
        self.retry_after = retry_after


def check_attempt(store: ThrottleStore, keys: Iterable[ThrottleKey], now: dt.datetime) -> None:
    """Raise :class:`Throttled` if any of ``keys`` is locked at ``now``."""
    digests = [key.digest for key in keys]
    until = store.locked_until(digests, now) if digests else None
    if until is not None:
        # Whole seconds, rounded up (RFC 9110 §10.2.3 Retry-After is delay-seconds).
        raise Throttled(max(1, math.ceil((until - now).total_seconds())))


def record_failure(store: ThrottleStore, keys: Iterable[ThrottleKey], now: dt.datetime) -> None:
    """Count a failed attempt against every one of ``keys``."""
    for key in keys:
        store.record_failure(key.digest, key.rule, now)


def record_success(store: ThrottleStore, keys: Iterable[ThrottleKey]) -> None:
    """Forget the failures of ``keys`` after a successful attempt."""
    digests = [key.digest for key in keys]
    if digests:
        store.clear(digests)
