"""The request's context, one way for every blueprint: what an app may see in this request, the
LTI platform's runtime and settings, and the signed-in person. Blueprints ask here and never
import each other."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request, session

from gateway import sharing
from gateway.database import request_session
from gateway.lti.keys import KeyRing
from gateway.lti.platform.portal import PortalUser, session_user
from gateway.lti.platform.settings import LtiSettings
from gateway.lti.signed import JwksCache
from gateway.sharing.visibility import Visibility
from gateway.store.models import utcnow

POLICY_CACHE = "gateway.policy_cache"
LTI_RUNTIME = "gateway.lti"
SESSION_TOKEN = "portal_session"
"""The portal's session cookie key that holds the person's session token."""


def request_visibility(app_id: int, district_id: int,
                       policy_version: tuple[Any, ...] | None = None,
                       ledger: sharing.LedgerWriter | None = None) -> Visibility:
    """What app ``app_id`` may see of district ``district_id`` in this request, on every channel
    (REST, launch claims, NRPS, AGS, the portal's list): its district's sharing policy for it,
    made once per app and district per request, its disclosures recorded before the response
    leaves (:mod:`gateway.http.visibility`). ``policy_version``, when the caller has just read it
    (an access grant carries it), lets the parsed policy be reused instead of read again.
    ``ledger``: the deferred writer to note disclosures in, when the visibility is made here (a
    CSV download's spooled one); it is appended like any other."""
    made = g.setdefault("visibilities", {})
    found = made.get((app_id, district_id))
    if found is None:
        found = made[(app_id, district_id)] = sharing.visibility_for(
            request_session(), app_id=app_id, district_id=district_id,
            secret_key=current_app.config["SECRET_KEY"], policy_version=policy_version,
            cache=current_app.extensions[POLICY_CACHE], deferred_ledger=True, ledger=ledger)
    return found


@dataclass(frozen=True)
class LtiRuntime:
    """The per-application state of the platform: its key ring and the tools' key cache."""

    keyring: KeyRing
    tool_keys: JwksCache


def lti_runtime() -> LtiRuntime:
    """The current application's :class:`LtiRuntime`."""
    return current_app.extensions[LTI_RUNTIME]


def lti_settings() -> LtiSettings:
    """The platform settings of the current application."""
    return LtiSettings.from_config(current_app.config)


def signed_in_user() -> PortalUser | None:
    """The person signed in to the portal, or None (also when their account may no longer sign
    in, or their session has ended on any worker)."""
    if "portal_user" not in g:
        token = session.get(SESSION_TOKEN)
        g.portal_user = (session_user(request_session(), token, utcnow())
                         if isinstance(token, str) else None)
    return g.portal_user


LMS_RUNTIME = "gateway.lms"
LMS_LAUNCH_COOKIE = "gateway_lms_launch"
"""The cookie that carries an LMS-brokered launch's short session to the authorization endpoint
(and nowhere else: its path is that endpoint's)."""


def lms_launch_user() -> PortalUser | None:
    """The person an LMS launch in this browser was brokered for, while its short session lasts."""
    token = request.cookies.get(LMS_LAUNCH_COOKIE)
    return session_user(request_session(), token, utcnow()) if token else None


def lms_origins() -> str:
    """The origins of every registered LMS (``frame-ancestors`` of pages shown in their frames),
    or ``'none'``."""
    from urllib.parse import urlsplit

    from sqlalchemy import select

    from gateway.store.lms import LmsPlatform

    origins = sorted({f"{p.scheme}://{p.netloc}" for p in (
        urlsplit(url) for url in request_session().execute(select(LmsPlatform.auth_url)).scalars())})
    return " ".join(origins) or "'none'"


@dataclass(frozen=True)
class LmsRuntime:
    """The per-application state of the tool role: service tokens from LMSs, the HTTP client."""

    tokens: Any
    http: Any


def lms_runtime(app: Any = None) -> LmsRuntime:
    """The application's :class:`LmsRuntime`, made on first use."""
    app = app or current_app
    runtime = app.extensions.get(LMS_RUNTIME)
    if runtime is None:
        import requests

        from gateway.lti.tool.grades import ServiceTokens

        runtime = app.extensions[LMS_RUNTIME] = LmsRuntime(ServiceTokens(), requests.Session())
    return runtime


def forward_grades_after(response: Any, forward_ids: list[int]) -> None:
    """Send queued grades to their LMS once ``response`` has gone out and the request's
    transaction is committed: the app's score request never waits on the LMS. With Redis, each
    is an ``lms-grades`` job (retried by the queue); without, it is sent from here and a failure
    stays queued for ``gateway lms retry-grades``."""
    from gateway.database import get_database
    from gateway.lti.tool import grades

    app = current_app._get_current_object()

    def send() -> None:
        try:
            with app.app_context():
                if app.config.get("REDIS_URL"):
                    queue_grade_jobs(app, forward_ids)
                    return
                runtime, keyring = lms_runtime(app), app.extensions[LTI_RUNTIME].keyring
                grades.forward_due(get_database(app), runtime.http, keyring, runtime.tokens,
                                   utcnow, forward_ids,
                                   first_wait=app.config["LMS_GRADE_FIRST_WAIT_SECONDS"])
        except Exception:  # noqa: BLE001 -- nobody is waiting: log it, the row stays queued
            logging.getLogger("gateway.lms").exception("forwarding grades to the LMS failed")
    response.call_on_close(send)


def queue_grade_jobs(app: Any, forward_ids: list[int]) -> list[str]:
    """Queue an ``lms-grades`` job for each score (its retries waiting as the app's
    ``LMS_GRADE_FIRST_WAIT_SECONDS`` says); the jobs' ids."""
    from gateway.jobs.queue import connect_queue_redis, enqueue_job
    from gateway.lti.tool import grades
    from gateway.lti.tool.grade_jobs import KIND, grade_params

    first_wait = app.config["LMS_GRADE_FIRST_WAIT_SECONDS"]
    redis = connect_queue_redis(app.config["REDIS_URL"])
    try:
        return [enqueue_job(redis, app.config["REDIS_KEY_PREFIX"], KIND,
                            grade_params(forward_id, first_wait),
                            default_timeout=app.config["JOB_TIMEOUT_SECONDS"],
                            retry_intervals=grades.retry_waits(first_wait))
                for forward_id in forward_ids]
    finally:
        redis.close()
