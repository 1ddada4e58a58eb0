"""Webhook deliveries after writes that are not imports: a gradebook write through the REST
service or LTI AGS appends its events (:func:`gateway.store.events.note_changed` marks its
session) and, once that session commits, its district's webhooks are delivered, without the
write waiting for them. No flask here.

Why a trigger of its own: an import starts deliveries itself when it has committed, once per
import. Gradebook writes come by the hundred (a Google Classroom sync PUTs every result), so one
delivery run per write would flood the queue or the process with threads. Per district, the
trigger runs at most one delivery start at a time in this process; writes committed meanwhile
ask for one more run after it, never one each. A run reads every event up to the head when it
starts, so a write is always followed by a run that sees it.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.store import Database
from gateway.store.events import CHANGED_DISTRICTS, WEBHOOKS

logger = logging.getLogger(__name__)


class DeliveryTrigger:
    """Starts ``deliver(district_id)`` after a committed write, coalesced per district.

    ``deliver`` returns a thread to wait for (deliveries in this process), or anything else (a
    queued job's id); after a queued job the district stays busy ``spacing`` seconds, so that a
    burst of writes queues about one job per ``spacing`` instead of one per write. ``wanted``
    says, in the committing thread, whether the district has a webhook at all (most have none:
    no thread is started for them).
    """

    def __init__(self, deliver: Callable[[int], Any], spacing: float = 1.0,
                 wanted: Callable[[int], bool] = lambda district_id: True) -> None:
        self._deliver = deliver
        self._wanted = wanted
        self._spacing = spacing
        self._lock = threading.Lock()
        # district id -> whether another run was asked for while one is going on.
        self._busy: dict[int, bool] = {}

    def install(self, sessions: sessionmaker) -> None:
        """Watch the commits (and rollbacks) of every session ``sessions`` makes."""
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_soft_rollback", self._after_rollback)

    def _after_commit(self, session: Session) -> None:
        districts = session.info.pop(CHANGED_DISTRICTS, None)
        if districts:
            self.changed(districts)

    @staticmethod
    def _after_rollback(session: Session, previous_transaction: Any) -> None:
        # The events rolled back with the write: nothing to deliver. (Every rollback() call,
        # with a transaction begun or not.)
        session.info.pop(CHANGED_DISTRICTS, None)

    def changed(self, district_ids: Iterable[int]) -> None:
        """Deliver the districts' events soon (now, or after the run already going on)."""
        for district_id in district_ids:
            if not self._wanted(district_id):
                continue
            with self._lock:
                if district_id in self._busy:
                    self._busy[district_id] = True
                    continue
                self._busy[district_id] = False
            threading.Thread(target=self._run, args=(district_id,), daemon=True,
                             name=f"gateway-webhooks-trigger-{district_id}").start()

    def idle(self) -> bool:
        """Whether no district has a run going on or asked for (tests wait for it)."""
        with self._lock:
            return not self._busy

    def _run(self, district_id: int) -> None:
        while True:
            try:
                started = self._deliver(district_id)
                if isinstance(started, threading.Thread):
                    started.join()
                elif started is not None:
                    time.sleep(self._spacing)
            except Exception:  # noqa: BLE001 -- nobody waits on this thread: log it
                logger.exception("starting the webhook deliveries of district %s failed",
                                 district_id)
            with self._lock:
                if not self._busy.get(district_id):
                    del self._busy[district_id]
                    return
                self._busy[district_id] = False


def install_delivery_trigger(database: Database, settings: Mapping[str, Any]) -> DeliveryTrigger:
    """A :class:`DeliveryTrigger` on ``database``'s sessions that starts deliveries as an import
    does (:func:`gateway.events.jobs.start_deliveries`: a ``webhooks`` job with Redis, else a
    thread of this process)."""
    from gateway.events.jobs import start_deliveries

    def wanted(district_id: int) -> bool:
        with database.engine.connect() as conn:
            return conn.execute(select(WEBHOOKS.c.id).where(
                WEBHOOKS.c.district_id == district_id).limit(1)).first() is not None

    trigger = DeliveryTrigger(lambda district_id: start_deliveries(database, settings, district_id),
                              spacing=float(settings["WEBHOOK_TRIGGER_SPACING_SECONDS"]),
                              wanted=wanted)
    trigger.install(database.sessionmaker)
    if database.writer_sessionmaker is not database.sessionmaker:
        trigger.install(database.writer_sessionmaker)
    return trigger
