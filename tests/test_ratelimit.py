"""The rate limits' buckets: GCRA in memory (on a fake clock) and in a real Redis, the fall back
to memory while Redis is down, and the Retry-After arithmetic."""
from __future__ import annotations

import logging
import time

import pytest
import redis

from gateway import ratelimit
from gateway.ratelimit import MemoryBuckets, Rate, RateLimits, RedisBuckets, retry_after


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_the_burst_through_then_one_per_interval():
    clock = Clock()
    buckets, rate = MemoryBuckets(clock), Rate(per_second=2, burst=3)
    assert [buckets.take("k", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", rate) == pytest.approx(0.5)
    clock.now += 0.25
    # Refused requests change nothing: the wait only shrinks with time.
    assert buckets.take("k", rate) == pytest.approx(0.25)
    clock.now += 0.25
    assert buckets.take("k", rate) == 0.0
    assert buckets.take("k", rate) == pytest.approx(0.5)
    clock.now += 10
    assert [buckets.take("k", rate) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k", rate) > 0


def test_keys_have_buckets_of_their_own():
    buckets, rate = MemoryBuckets(Clock()), Rate(per_second=1, burst=1)
    assert buckets.take("a", rate) == 0.0
    assert buckets.take("a", rate) > 0
    assert buckets.take("b", rate) == 0.0


def test_memory_buckets_forget_keys_whose_bucket_is_full_again(monkeypatch):
    monkeypatch.setattr(ratelimit, "MEMORY_PRUNE_SIZE", 10)
    clock = Clock()
    buckets, rate = MemoryBuckets(clock), Rate(per_second=1, burst=5)
    for n in range(10):
        buckets.take(f"old{n}", rate)
    clock.now += 2
    buckets.take("new", rate)
    assert len(buckets) == 1


@pytest.mark.parametrize("wait, seconds", [(0.001, 1), (0.5, 1), (1.0, 1), (1.2, 2), (59.01, 60)])
def test_retry_after_is_whole_seconds_rounded_up(wait, seconds):
    assert retry_after(wait) == seconds


def test_a_zero_rate_limits_nothing():
    limits = RateLimits(MemoryBuckets(Clock()), app_rate=Rate(0, 1), address_rate=Rate(0, 0))
    assert all(limits.app_wait(1) == 0 for _ in range(100))
    assert all(limits.address_wait("login", "10.0.0.1") == 0 for _ in range(100))


def test_apps_and_addresses_count_apart():
    limits = RateLimits(MemoryBuckets(Clock()), app_rate=Rate(1, 1), address_rate=Rate(1, 1))
    assert limits.app_wait(1) == 0
    assert limits.app_wait(1) == 1
    assert limits.app_wait(2) == 0
    assert limits.address_wait("login", "10.0.0.1") == 0
    assert limits.address_wait("login", "10.0.0.1") == 1
    assert limits.address_wait("token", "10.0.0.1") == 0
    assert limits.address_wait("login", "10.0.0.2") == 0


# -- Redis -------------------------------------------------------------------------------------

@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_redis_buckets_share_one_bucket_between_clients(redis_client, redis_url, redis_prefix):
    rate = Rate(per_second=1, burst=3)
    first = RedisBuckets(redis_client)
    second = RedisBuckets(redis.Redis.from_url(redis_url))
    key = redis_prefix + "shared"
    assert [first.take(key, rate), second.take(key, rate), first.take(key, rate)] == [0, 0, 0]
    assert 0.9 < second.take(key, rate) <= 1.0
    assert 0.9 < first.take(key, rate) <= 1.0


def test_a_redis_bucket_refills_and_its_key_expires(redis_client, redis_prefix):
    rate = Rate(per_second=20, burst=2)
    buckets, key = RedisBuckets(redis_client), redis_prefix + "refill"
    assert [buckets.take(key, rate), buckets.take(key, rate)] == [0, 0]
    wait = buckets.take(key, rate)
    assert 0 < wait <= 0.05
    time.sleep(wait + 0.005)
    assert buckets.take(key, rate) == 0
    # The key lives until its bucket would be full again (at most burst intervals), no longer.
    assert 0 < redis_client.pttl(key) <= 100
    time.sleep(0.15)
    assert redis_client.exists(key) == 0


def test_addresses_are_stored_hashed(redis_client, redis_prefix):
    limits = RateLimits(RedisBuckets(redis_client), app_rate=Rate(1, 1), address_rate=Rate(1, 5),
                        prefix=redis_prefix)
    limits.address_wait("login", "203.0.113.9")
    limits.app_wait(42)
    keys = sorted(key.decode() for key in redis_client.scan_iter(match=redis_prefix + "*"))
    assert len(keys) == 2
    assert keys[0] == f"{redis_prefix}rate:app:42"
    assert keys[1].startswith(f"{redis_prefix}rate:ip:login:")
    assert "203.0.113.9" not in keys[1]


def test_without_redis_the_limits_count_in_memory_and_say_so_once(closed_port_url, caplog):
    clock = Clock()
    buckets = RedisBuckets(redis.Redis.from_url(closed_port_url, socket_connect_timeout=0.25),
                           clock=clock)
    rate = Rate(per_second=1, burst=2)
    with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
        assert [buckets.take("k", rate) for _ in range(2)] == [0.0, 0.0]
        assert buckets.take("k", rate) == pytest.approx(1.0)
        clock.now += ratelimit.REDIS_RETRY_SECONDS + 1
        # Tried again after the retry period, failed again: still one warning for the outage.
        assert buckets.take("k", rate) == 0.0
    warnings = [r.getMessage() for r in caplog.records if r.name == "gateway.ratelimit"]
    assert len(warnings) == 1
    assert warnings[0].startswith("rate limits: Redis failed (ConnectionError")


def test_the_limits_go_back_to_redis_when_it_answers_again(redis_client, redis_prefix, caplog):
    clock = Clock()
    buckets, rate = RedisBuckets(redis_client, clock=clock), Rate(per_second=1, burst=1)
    real = buckets._script
    calls = []

    def failing(**kwargs):
        calls.append(kwargs)
        raise redis.ConnectionError("down")

    buckets._script = failing
    with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
        assert buckets.take(redis_prefix + "k", rate) == 0.0
        assert buckets.take(redis_prefix + "k", rate) > 0      # memory, Redis not asked
        assert len(calls) == 1
        buckets._script = real
        clock.now += ratelimit.REDIS_RETRY_SECONDS
        assert buckets.take(redis_prefix + "k", rate) == 0.0   # Redis's own, fresh bucket
        assert buckets.take(redis_prefix + "k", rate) > 0
    assert [r.getMessage() for r in caplog.records][-1] == \
        "rate limits: Redis answers again; counting there"


class CountingScript:
    """Stands in for a RedisBuckets' script: runs the real one, counting the round trips."""

    def __init__(self, buckets: RedisBuckets) -> None:
        self.real, self.calls = buckets._script, 0
        buckets._script = self

    def __call__(self, **kwargs):
        self.calls += 1
        return self.real(**kwargs)


def test_a_large_redis_bucket_is_taken_a_few_requests_per_round_trip(redis_client, redis_prefix):
    rate = Rate(per_second=1, burst=1000)
    assert ratelimit.lease_size(rate) == 10
    buckets, key = RedisBuckets(redis_client), redis_prefix + "leased"
    script = CountingScript(buckets)
    assert all(buckets.take(key, rate) == 0 for _ in range(25))
    assert script.calls == 3
    # The shared bucket gave 30 requests: its TAT is 30 intervals ahead.
    assert 29_000 < redis_client.pttl(key) <= 30_000


def test_leases_never_let_more_than_the_burst_through(redis_client, redis_url, redis_prefix):
    rate = Rate(per_second=0.001, burst=300)
    assert ratelimit.lease_size(rate) == 3
    workers = [RedisBuckets(redis_client), RedisBuckets(redis.Redis.from_url(redis_url))]
    key, allowed = redis_prefix + "lease-burst", 0
    for n in range(1000):
        if workers[n % 2].take(key, rate) == 0:
            allowed += 1
    assert allowed == 300


def test_an_unspent_lease_ends(redis_client, redis_prefix):
    clock = Clock()
    rate = Rate(per_second=1, burst=1000)
    buckets, key = RedisBuckets(redis_client, clock=clock), redis_prefix + "lease-ends"
    script = CountingScript(buckets)
    assert buckets.take(key, rate) == 0 and buckets.take(key, rate) == 0
    assert script.calls == 1
    clock.now += ratelimit.LEASE_SECONDS
    assert buckets.take(key, rate) == 0
    assert script.calls == 2
