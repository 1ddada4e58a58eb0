"""The webhook delivery trigger of gradebook writes (gateway.events.trigger): one run at a time per
district, one more run for every burst of commits during a run (never one per commit), none for a
write rolled back or a district without webhooks."""
from __future__ import annotations

import threading
import time

from sqlalchemy import text

from gateway.events.trigger import DeliveryTrigger
from gateway.store import Database
from gateway.store.events import note_changed


def wait_idle(trigger: DeliveryTrigger, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not trigger.idle():
        assert time.monotonic() < deadline, "the trigger never went idle"
        time.sleep(0.01)


class BlockingDelivery:
    """A delivery run that holds until released, counting runs per district."""

    def __init__(self) -> None:
        self.runs: list[int] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, district_id: int) -> threading.Thread:
        self.runs.append(district_id)
        self.started.set()
        thread = threading.Thread(target=self.release.wait, args=(10,))
        thread.start()
        return thread


def test_commits_during_a_run_ask_for_one_more_run_not_one_each():
    delivery = BlockingDelivery()
    trigger = DeliveryTrigger(delivery)
    trigger.changed([7])
    assert delivery.started.wait(5)
    for _ in range(50):
        trigger.changed([7])
    assert not trigger.idle()
    delivery.release.set()
    wait_idle(trigger)
    # The first run, and one run after it for the 50 commits made while it ran.
    assert delivery.runs == [7, 7]


def test_districts_run_apart_and_a_district_without_webhooks_starts_nothing():
    delivery = BlockingDelivery()
    delivery.release.set()
    trigger = DeliveryTrigger(delivery, wanted=lambda district_id: district_id != 3)
    trigger.changed([1, 2, 3])
    wait_idle(trigger)
    assert sorted(delivery.runs) == [1, 2]


def test_a_queued_job_keeps_the_district_busy_for_the_spacing():
    queued: list[float] = []

    def enqueue(district_id: int) -> str:
        queued.append(time.monotonic())
        return f"job-{len(queued)}"

    trigger = DeliveryTrigger(enqueue, spacing=0.3)
    trigger.changed([1])
    time.sleep(0.05)
    for _ in range(20):
        trigger.changed([1])
    wait_idle(trigger)
    assert len(queued) == 2
    assert queued[1] - queued[0] >= 0.29


def test_a_failing_start_is_logged_and_the_district_is_released(caplog):
    def broken(district_id: int):
        raise RuntimeError("redis is down")

    trigger = DeliveryTrigger(broken)
    trigger.changed([4])
    wait_idle(trigger)
    assert "starting the webhook deliveries of district 4 failed" in caplog.text


def test_only_a_committed_session_that_appended_events_triggers(tmp_path):
    # A store of the test's own: the app's store already has the app's trigger, which would
    # take the noted districts first.
    database = Database(f"sqlite:///{tmp_path / 'trigger.sqlite3'}")
    delivery = BlockingDelivery()
    delivery.release.set()
    trigger = DeliveryTrigger(delivery)
    trigger.install(database.sessionmaker)

    # As a write does: its transaction appends the events, and is marked.
    with database.sessionmaker() as session:
        session.execute(text("SELECT 1"))
        note_changed(session, 11)
        session.rollback()
        session.commit()  # nothing noted any more
    with database.sessionmaker() as session:
        session.commit()  # a commit with no events
    wait_idle(trigger)
    assert delivery.runs == []

    with database.sessionmaker() as session:
        session.execute(text("SELECT 1"))
        note_changed(session, 12)
        note_changed(session, 12)
        session.commit()
    wait_idle(trigger)
    assert delivery.runs == [12]
    database.dispose()
