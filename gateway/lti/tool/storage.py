"""Where launches in progress keep their values (state, nonces, launch data): in the store, or in
Redis when ``GATEWAY_REDIS_URL`` is set, so that the OIDC login and the launch it leads to may be
served by different workers or hosts.

Both are caches with the ``get`` / ``set(key, value, exp)`` interface pylti1p3's
:class:`~pylti1p3.launch_data_storage.cache.CacheDataStorage` expects, plus ``pop`` (read and
delete at once) for the values the gateway itself uses once. No web framework here.
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Any, Callable

import orjson
from pylti1p3.launch_data_storage.cache import CacheDataStorage
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.store.lms import LmsLaunchValue

# Without an expiry from pylti1p3, a value lives as long as a launch can take.
DEFAULT_SECONDS = 7200
_PRUNE_ONE_IN = 64


class StoreCache:
    """Launch values in the ``lms_launch_values`` table, in the caller's transaction."""

    def __init__(self, session: Session, now: Callable[[], dt.datetime]) -> None:
        self.session = session
        self.now = now

    def get(self, key: str) -> Any:
        """The value under ``key``, None if absent or expired."""
        row = self.session.get(LmsLaunchValue, key[:255])
        if row is None or row.expires_at <= self.now():
            return None
        return row.value

    def set(self, key: str, value: Any, exp: int | None = None) -> None:
        """Store ``value`` under ``key`` for ``exp`` seconds."""
        expires = self.now() + dt.timedelta(seconds=exp or DEFAULT_SECONDS)
        row = self.session.get(LmsLaunchValue, key[:255])
        if row is None:
            self.session.add(LmsLaunchValue(key=key[:255], value=value, expires_at=expires))
        else:
            row.value, row.expires_at = value, expires
        self.session.flush()
        if secrets.randbelow(_PRUNE_ONE_IN) == 0:
            self.session.execute(delete(LmsLaunchValue).where(LmsLaunchValue.expires_at < self.now()))

    def pop(self, key: str) -> Any:
        """The value under ``key``, deleted; None if absent or expired. Of two concurrent pops
        one deletes the row and the other finds none (PostgreSQL) or waits (SQLite)."""
        row = self.session.execute(select(LmsLaunchValue).where(
            LmsLaunchValue.key == key[:255])).scalar_one_or_none()
        if row is None:
            return None
        deleted = self.session.execute(delete(LmsLaunchValue).where(
            LmsLaunchValue.key == key[:255])).rowcount
        if not deleted or row.expires_at <= self.now():
            return None
        return row.value


class RedisCache:
    """Launch values in Redis under a prefix, expiring by Redis's own clock."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix + "lms:"

    def get(self, key: str) -> Any:
        """The value under ``key``, None if absent."""
        raw = self.client.get(self.prefix + key)
        return None if raw is None else orjson.loads(raw)

    def set(self, key: str, value: Any, exp: int | None = None) -> None:
        """Store ``value`` under ``key`` for ``exp`` seconds."""
        self.client.set(self.prefix + key, orjson.dumps(value), ex=exp or DEFAULT_SECONDS)

    def pop(self, key: str) -> Any:
        """The value under ``key``, deleted atomically (GETDEL); None if absent."""
        raw = self.client.getdel(self.prefix + key)
        return None if raw is None else orjson.loads(raw)


class LaunchStorage(CacheDataStorage):
    """pylti1p3's launch data storage over a :class:`StoreCache` or :class:`RedisCache`."""

    def __init__(self, cache: StoreCache | RedisCache) -> None:
        super().__init__()
        self._cache = cache

    def get_session_cookie_name(self) -> None:
        """None: values are keyed by their own random names, not by a pylti1p3 session cookie,
        which a browser blocking third-party cookies in an LMS iframe would never send back
        (the state cookie pylti1p3 also sets still binds the launch to the browser)."""
        return None

    @property
    def cache(self) -> StoreCache | RedisCache:
        """The cache the values are kept in."""
        return self._cache
