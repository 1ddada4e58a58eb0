"""Rate limits: how many requests an app, or a client address at a sign-in or token endpoint, may
make. No web framework here.

Each limit is a token bucket, computed as GCRA (the generic cell rate algorithm, ITU-T I.371):
one number per key, the "theoretical arrival time" (TAT) at which the bucket would be full again.
A request at ``now`` is allowed when ``max(TAT, now) + interval - burst * interval <= now``, and
then moves the TAT on by one interval. So ``burst`` requests pass at once from a full bucket,
and after that one per ``interval`` (``1 / per_second``); a refused request changes nothing and
learns how long to wait.

Where the TATs live:

* :class:`RedisBuckets`: in Redis, shared by every worker of every host. One Lua script per
  round trip, on Redis's own clock, so hosts whose clocks differ still agree. Keys expire when
  their bucket is full again. A round trip costs the worker some 40 microseconds of CPU, a
  OneRoster page about a millisecond: so a worker takes a few requests at once from a large
  bucket (a lease: one hundredth of the burst, at most :data:`MAX_LEASE`) and spends them over
  the next :data:`LEASE_SECONDS`. Leased requests are taken from the shared bucket, so the limit
  is never exceeded; unspent ones are lost when the lease ends, so an app may be refused a little
  early (by less than a lease per worker). Small buckets (a burst under 200, as the per-address
  limits have) lease one request at a time: exact.
* :class:`MemoryBuckets`: in this process's memory (embedded mode, one host: each worker has its
  own buckets, so the limits there are per worker).

If Redis fails, the limits fall back to this process's memory until Redis answers again (checked
every :data:`REDIS_RETRY_SECONDS`), with one warning per outage: rate limits protect capacity, and
refusing every request while Redis is down would turn a cache outage into a full outage. The
guessing throttles (:mod:`gateway.throttle`), which protect secrets, are in the database and do
not depend on Redis.
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

logger = logging.getLogger(__name__)

REDIS_RETRY_SECONDS = 5.0
"""After Redis fails, how long the limits use this process's memory before trying Redis again
(so an unreachable Redis costs one failed call per process per period, not one per request)."""

MAX_LEASE = 20
"""The most requests a worker takes from a Redis bucket in one round trip."""

LEASE_SECONDS = 1.0
"""How long a worker may spend the requests it took at once (afterwards they are dropped, so a
worker cannot save them up beyond the burst)."""

MEMORY_PRUNE_SIZE = 10_000
"""Keys a :class:`MemoryBuckets` holds before it forgets those whose bucket is full again."""


@dataclass(frozen=True)
class Rate:
    """``burst`` requests at once, refilled at ``per_second``; disabled when ``per_second`` is 0."""

    per_second: float
    burst: int

    @property
    def enabled(self) -> bool:
        """Whether this rate limits anything."""
        return self.per_second > 0

    @property
    def interval_us(self) -> int:
        """Microseconds between two requests at the sustained rate (at least 1)."""
        return max(1, round(1_000_000 / self.per_second))

    @property
    def span_us(self) -> int:
        """Microseconds of requests the full bucket holds."""
        return self.interval_us * max(1, self.burst)


class Buckets(Protocol):
    """Where the buckets' TATs live."""

    def take(self, key: str, rate: Rate) -> float:
        """Take one request from ``key``'s bucket: 0 when allowed, else the seconds to wait."""


class MemoryBuckets:
    """Buckets in this process's memory (thread-safe); ``clock`` gives seconds, monotonic."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._prune_at = MEMORY_PRUNE_SIZE

    def take(self, key: str, rate: Rate) -> float:
        """Take one request from ``key``'s bucket: 0 when allowed, else the seconds to wait."""
        interval, span = rate.interval_us / 1e6, rate.span_us / 1e6
        with self._lock:
            now = self._clock()
            tat = self._tats.get(key, now)
            next_tat = (tat if tat > now else now) + interval
            wait = next_tat - span - now
            if wait > 0:
                return wait
            if len(self._tats) >= self._prune_at:
                # A key whose bucket is full again is the same as no key: many client addresses
                # must not grow the dict for ever. The next prune waits until the dict has
                # doubled, so a flood of new keys costs amortized constant time.
                self._tats = {k: t for k, t in self._tats.items() if t > now}
                self._prune_at = max(MEMORY_PRUNE_SIZE, 2 * len(self._tats))
            self._tats[key] = next_tat
            return 0.0

    def __len__(self) -> int:
        return len(self._tats)


# KEYS[1]: the bucket; ARGV: interval and burst span in microseconds, and how many requests to
# take. Takes as many of them as the bucket holds now (at least one), moving the TAT on by that
# many intervals; returns {taken, 0}, or {0, microseconds to wait} when it holds none. Times are
# integers of microseconds (exact in Lua's doubles until the year 2255); '%.0f' keeps them out
# of exponent notation when stored.
_GCRA_SCRIPT = """
local interval = tonumber(ARGV[1])
local span = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local room = math.floor((now + span - tat) / interval)
if room < 1 then return {0, tat + interval - span - now} end
local taken = math.min(wanted, room)
local next_tat = tat + taken * interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX',
           math.ceil((next_tat - now) / 1000))
return {taken, 0}
"""


def lease_size(rate: Rate) -> int:
    """How many requests a worker takes at once from a Redis bucket of ``rate``."""
    return max(1, min(MAX_LEASE, rate.burst // 100))


class RedisBuckets:
    """Buckets in Redis, shared by every process and host; this process's memory while Redis
    fails (see the module's documentation)."""

    def __init__(self, client: Any, *, clock: Callable[[], float] = time.monotonic) -> None:
        from redis.exceptions import RedisError

        self._script = client.register_script(_GCRA_SCRIPT)
        self._errors = (RedisError, OSError)
        self._fallback = MemoryBuckets(clock)
        self._clock = clock
        self._down_until: float | None = None
        # key -> (requests taken from Redis and not yet spent, until when they may be spent)
        self._leases: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: Rate) -> float:
        """Take one request from ``key``'s bucket: 0 when allowed, else the seconds to wait."""
        down_until = self._down_until
        if down_until is not None:
            if self._clock() < down_until:
                return self._fallback.take(key, rate)
        wanted = lease_size(rate)
        if wanted > 1 and self._spend_lease(key):
            return 0.0
        try:
            taken, wait_us = self._script(keys=[key], args=[rate.interval_us, rate.span_us, wanted])
        except self._errors as error:
            if self._down_until is None:
                logger.warning("rate limits: Redis failed (%s: %s); counting in this process "
                               "until it answers again", type(error).__name__, error)
            self._down_until = self._clock() + REDIS_RETRY_SECONDS
            return self._fallback.take(key, rate)
        if down_until is not None:
            self._down_until = None
            logger.warning("rate limits: Redis answers again; counting there")
        if not taken:
            return int(wait_us) / 1e6
        if taken > 1:
            now = self._clock()
            with self._lock:
                if len(self._leases) >= MEMORY_PRUNE_SIZE:
                    self._leases = {k: lease for k, lease in self._leases.items()
                                    if lease[1] > now}
                self._leases[key] = (int(taken) - 1, now + LEASE_SECONDS)
        return 0.0

    def _spend_lease(self, key: str) -> bool:
        with self._lock:
            left, until = self._leases.get(key, (0, 0.0))
            if left <= 0:
                return False
            if self._clock() >= until:
                del self._leases[key]
                return False
            self._leases[key] = (left - 1, until)
            return True


def retry_after(wait: float) -> int:
    """``Retry-After`` for a wait of ``wait`` seconds: whole seconds, rounded up, at least 1
    (RFC 9110 §10.2.3 delay-seconds)."""
    return max(1, math.ceil(wait))


class RateLimits:
    """The gateway's limits over one :class:`Buckets`: per app, and per client address at each
    family of endpoints. Keys start with ``prefix``; addresses are stored hashed."""

    def __init__(self, buckets: Buckets, *, app_rate: Rate, address_rate: Rate,
                 prefix: str = "") -> None:
        self.buckets = buckets
        self.app_rate = app_rate
        self.address_rate = address_rate
        self._app_prefix = f"{prefix}rate:app:"
        self._address_prefix = f"{prefix}rate:ip:"

    def app_wait(self, app_id: int) -> int:
        """Count one request of app ``app_id``: 0 when allowed, else ``Retry-After`` seconds."""
        if not self.app_rate.enabled:
            return 0
        wait = self.buckets.take(f"{self._app_prefix}{app_id}", self.app_rate)
        return retry_after(wait) if wait > 0 else 0

    def address_wait(self, family: str, address: str) -> int:
        """Count one request from ``address`` at the endpoints of ``family`` (``token``,
        ``login``): 0 when allowed, else ``Retry-After`` seconds."""
        if not self.address_rate.enabled:
            return 0
        # Hashed, as the guessing throttles store theirs: no client address in clear in Redis.
        digest = hashlib.sha256(address.encode("utf-8")).hexdigest()[:32]
        wait = self.buckets.take(f"{self._address_prefix}{family}:{digest}", self.address_rate)
        return retry_after(wait) if wait > 0 else 0
