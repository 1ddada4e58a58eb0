"""Grades back to the LMS on the job queue: with Redis configured, each score queued for an LMS
(:func:`gateway.lti.tool.grades.queue_score`) is sent by an ``lms-grades`` job that a ``gateway
worker`` runs, retried by the queue with the waits of :func:`~gateway.lti.tool.grades.retry_waits`
(a worker's RQ scheduler queues each retry when due), so no cron is needed. An attempt the LMS
refuses raises: ``gateway jobs`` lists the job as scheduled for its retry, or failed with the
LMS's answer once given up; ``gateway lms grades --failed`` shows the same from the store.

The score's row stays the record (attempts, last error, sent or failed) whichever way it is sent,
and a job finds nothing to do for a row that is no longer pending (sent by ``retry-grades``
meanwhile). No web framework here.
"""
from __future__ import annotations

from typing import Any, Mapping

from gateway.jobs import DEFAULT_QUEUE, JobContext, JobKind, register_kind
from gateway.lti.keys import KeyRing
from gateway.lti.tool import grades
from gateway.store.lms import FORWARD_PENDING, LmsGradeForward
from gateway.store.models import utcnow

KIND = "lms-grades"


class GradeNotTaken(Exception):
    """An attempt the LMS did not take; the message is its answer (the job's failure reason)."""


def grade_params(forward_id: int, first_wait: int) -> dict[str, Any]:
    """The parameters of the job that sends queued score ``forward_id``, its retries waiting
    from ``first_wait`` seconds (the queuing host's ``GATEWAY_LMS_GRADE_FIRST_WAIT_SECONDS``)."""
    return {"forward_id": forward_id, "first_wait": first_wait}


def lms_grades_job(context: JobContext, params: Mapping[str, Any]) -> dict[str, Any]:
    """Send one queued score to its LMS (see :func:`gateway.lti.tool.grades.forward_due`);
    :class:`GradeNotTaken` when the LMS did not take it, so that the queue retries it."""
    import requests

    forward_id, first_wait = int(params["forward_id"]), int(params["first_wait"])
    keyring = KeyRing(context.settings["SECRET_KEY"])
    # A token per job: a work horse is a fresh process, with no token cache to share.
    with requests.Session() as http:
        sent, failed = grades.forward_due(context.database, http, keyring, grades.ServiceTokens(),
                                          utcnow, [forward_id], first_wait=first_wait,
                                          on_queue=True)
    if failed:
        with context.database.session_scope() as session:
            row = session.get(LmsGradeForward, forward_id)
            left = "retried later" if row.status == FORWARD_PENDING else "given up"
            raise GradeNotTaken(f"grade forward {forward_id}, attempt {row.attempts} ({left}): "
                                f"{row.last_error}")
    return {"forward_id": forward_id, "sent": bool(sent),
            "note": None if sent else "not pending any more (sent or given up meanwhile)"}


register_kind(JobKind(KIND, lms_grades_job, queue=DEFAULT_QUEUE, timeout_seconds=120,
                      retries=grades.MAX_ATTEMPTS - 1,
                      retry_intervals=tuple(grades.retry_waits()),
                      describe=lambda params: f"send grade {params['forward_id']} to its LMS"))
