"""`gateway jobs` lists each job once, even when it catches a job moving between RQ's lists:
the lists are read one after another while a worker or the scheduler moves jobs between them
(a CI run once listed one retrying grade job three times)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import redis as redis_py

from gateway.jobs.queue import _queue, enqueue_job, list_jobs

from workers import remove_queues


def enqueue_snapshots(client, prefix: str, district: str) -> str:
    return enqueue_job(client, prefix, "snapshots", {"district": district}, default_timeout=60)


def test_a_job_caught_in_two_lists_is_listed_once_in_the_state_its_record_holds(
        redis_url, redis_prefix):
    client = redis_py.Redis.from_url(redis_url)
    try:
        moving = enqueue_snapshots(client, redis_prefix, "moving")
        settled = enqueue_snapshots(client, redis_prefix, "settled")
        queue = _queue(client, redis_prefix, "default")
        job = queue.fetch_job(moving)
        # Halfway through a move: the scheduler has put it in the scheduled list and marked its
        # record, but has not yet taken it off the queue's list.
        queue.scheduled_job_registry.schedule(job, datetime.now(timezone.utc) + timedelta(60))
        job.set_status("scheduled")

        listed = list_jobs(client, redis_prefix, queues=["default"])

        assert sorted(entry["id"] for entry in listed) == sorted([moving, settled])
        by_id = {entry["id"]: entry for entry in listed}
        assert by_id[moving]["status"] == "scheduled"
        assert by_id[settled]["status"] == "queued"
        # The states stay in their listing order: queued before scheduled.
        assert [entry["id"] for entry in listed] == [settled, moving]
    finally:
        remove_queues(redis_url, redis_prefix)


def test_a_job_whose_record_names_no_listed_state_goes_in_the_last_list_it_was_found_in(
        redis_url, redis_prefix):
    client = redis_py.Redis.from_url(redis_url)
    try:
        moving = enqueue_snapshots(client, redis_prefix, "moving")
        queue = _queue(client, redis_prefix, "default")
        job = queue.fetch_job(moving)
        queue.scheduled_job_registry.schedule(job, datetime.now(timezone.utc) + timedelta(60))
        job.set_status("deferred")

        [listed] = list_jobs(client, redis_prefix, queues=["default"])

        assert (listed["id"], listed["status"]) == (moving, "scheduled")
    finally:
        remove_queues(redis_url, redis_prefix)
