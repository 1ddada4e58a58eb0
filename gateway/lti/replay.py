"""Single-use values: message hints, nonces and client assertion ``jti``s are accepted once.

A value is recorded by inserting it under a unique key in the caller's transaction (inside a
savepoint, so a refusal leaves the transaction usable). Two concurrent uses of one value race on
that key: on PostgreSQL the second insert waits for the first transaction and then fails, so
exactly one request wins even across workers. Values are hashed (SHA-256 of kind, issuer and
value) so that long or hostile values store in a fixed width and are never echoed back.

Rows are kept until the value would be refused as expired anyway, then pruned.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.store.lti import UsedValue

HINT = "message_hint"
NONCE = "nonce"
JTI = "jti"
# One use in this many also prunes expired rows: bounded table, no extra statement per request.
_PRUNE_ONE_IN = 64


class Replayed(Exception):
    """The value has been used before."""


def _key(kind: str, issuer: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{issuer}\x00{value}".encode("utf-8")).hexdigest()


def use_once(session: Session, kind: str, issuer: str, value: str, *, expires_at: dt.datetime,
             now: dt.datetime) -> None:
    """Record ``value`` (from ``issuer``) as used; :class:`Replayed` if it already was."""
    try:
        with session.begin_nested():
            session.execute(insert(UsedValue).values(kind=kind, value=_key(kind, issuer, value),
                                                     expires_at=expires_at))
    except IntegrityError as error:
        raise Replayed(f"this {kind} has already been used") from error
    if secrets.randbelow(_PRUNE_ONE_IN) == 0:
        prune_used_values(session, now)


def was_used(session: Session, kind: str, issuer: str, value: str) -> bool:
    """Whether ``value`` (from ``issuer``) has been recorded as used: a check before the work
    whose end :func:`use_once` records it (which alone decides between concurrent uses)."""
    return session.execute(select(UsedValue.kind).where(
        UsedValue.kind == kind, UsedValue.value == _key(kind, issuer, value))).first() is not None


def prune_used_values(session: Session, now: dt.datetime) -> int:
    """Delete the records of values that have expired; returns how many."""
    return session.execute(delete(UsedValue).where(UsedValue.expires_at < now)).rowcount
