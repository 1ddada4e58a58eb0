"""The gateway's Redis client, for what every web process of every host must agree on (the
rate-limit counters). No web framework here. Optional: without ``GATEWAY_REDIS_URL`` the gateway
runs in embedded mode and never imports the client library."""
from __future__ import annotations

from typing import Any

TIMEOUT_SECONDS = 0.25
"""Connect and read timeout. Redis answers in well under a millisecond on a LAN: a Redis that
takes longer is treated as down (the callers fall back, see :mod:`gateway.ratelimit`) instead of
holding a request for seconds."""


def connect_redis(url: str) -> Any:
    """A client for the Redis at ``url`` (``redis://HOST:PORT/DB``, ``rediss://`` for TLS,
    ``unix://PATH``). It connects on first use, and again after a fork (its pool checks the
    process id), so it can be made before gunicorn forks its workers."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS,
                                socket_connect_timeout=TIMEOUT_SECONDS)


def redis_reachable(client: Any) -> bool:
    """Whether the Redis behind ``client`` answers a PING now."""
    from redis.exceptions import RedisError

    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
