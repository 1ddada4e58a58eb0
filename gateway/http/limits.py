"""Rate limits as the HTTP channels apply them (:mod:`gateway.ratelimit` does the counting):

* **Per app**: every OneRoster REST call and every LTI service call (NRPS, AGS) counts against
  its app, once its bearer token has been checked (:func:`charge_app`, called where each channel
  checks its token): the app is known from the token, at no extra cost, and a request without a
  valid token costs nobody's budget.
* **Per client address**: POSTs to the OAuth token endpoint, the LTI token endpoint and the
  sign-in form, before anything else is done (each costs a scrypt hash or a signature check). These
  limit the volume of requests, successes included; the guessing throttles
  (:mod:`gateway.http.throttling`), which lock out failures, still apply as well.

Over the limit: 429 with ``Retry-After`` (whole seconds, rounded up) and the body of the channel:
the OneRoster error body (``server_busy``), the ``{"error", "error_description"}`` body of the
LTI services and token endpoints and of OAuth (RFC 6749 §5.2, ``temporarily_unavailable``: "try
again later"), or the sign-in page saying why.
"""
from __future__ import annotations

from flask import Flask, Response, current_app, render_template, request

from gateway.database import get_redis
from gateway.errors import TooManyRequests
from gateway.lti.platform.errors import OAuthError as LtiOAuthError
from gateway.lti.platform.errors import ServiceError
from gateway.metrics import count_rate_limited
from gateway.oauth.errors import TooManyFailedAttempts
from gateway.ratelimit import MemoryBuckets, Rate, RateLimits, RedisBuckets

LIMITS = "gateway.rate_limits"

# The endpoints limited per client address, and the family whose bucket each counts against
# (both token endpoints share one: a client address asking for tokens is one caller).
_ADDRESS_LIMITED = {"oauth.token": "token", "lti.token": "token", "portal.login": "login"}
LTI_BLUEPRINT = "lti"


def seconds(count: int) -> str:
    """``1 second``, ``2 seconds``."""
    return f"{count} second{'' if count == 1 else 's'}"


# The errors of the channels' own families that the limits raise. They belong with those
# families (gateway.oauth.errors, gateway.lti.platform.errors); they are kept here while other
# work on those packages is in progress.

class TokenRequestsTooFrequent(TooManyFailedAttempts):
    """Too many token requests from this client address: the token endpoint's 429, the same body
    and headers as the guessing throttle's (RFC 6749 §5.2, ``temporarily_unavailable``,
    ``Retry-After``), saying why."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.description = (f"Too many token requests from this address; try again in "
                            f"{seconds(retry_after)}.")


class LtiTokenRequestsTooFrequent(LtiOAuthError):
    """Too many requests to the LTI token endpoint from this client address (429,
    ``temporarily_unavailable``)."""

    status = 429
    error = "temporarily_unavailable"


class LtiServiceBusy(ServiceError):
    """The app has used up its rate limit for now (429, ``temporarily_unavailable``)."""

    status = 429
    error = "temporarily_unavailable"


def init_app(app: Flask) -> None:
    """Give ``app`` its limits (in Redis when ``GATEWAY_REDIS_URL`` is set, else in this
    process's memory) and limit the token and sign-in endpoints per client address."""
    config = app.config
    redis = get_redis(app)
    limits = RateLimits(
        RedisBuckets(redis) if redis is not None else MemoryBuckets(),
        app_rate=Rate(float(config["APP_RATE_PER_SECOND"]), int(config["APP_RATE_BURST"])),
        address_rate=Rate(float(config["IP_RATE_PER_SECOND"]), int(config["IP_RATE_BURST"])),
        prefix=str(config["REDIS_KEY_PREFIX"]))
    app.extensions[LIMITS] = limits
    if limits.address_rate.enabled:
        app.before_request(_limit_address)


def _limit_address() -> Response | None:
    family = _ADDRESS_LIMITED.get(request.endpoint)
    if family is None or request.method != "POST":
        return None
    retry_after = current_app.extensions[LIMITS].address_wait(family, request.remote_addr or "")
    if not retry_after:
        return None
    count_rate_limited("address")
    if request.endpoint == "oauth.token":
        raise TokenRequestsTooFrequent(retry_after)
    if request.endpoint == "lti.token":
        raise LtiTokenRequestsTooFrequent(
            f"Too many token requests from this address; try again in {seconds(retry_after)}.",
            headers={"Retry-After": str(retry_after)})
    # The form is not read: a refused request must cost nothing more.
    page = render_template("login.html", username="", districts=None,
                           error=f"Too many sign-in attempts from this network. Try again in "
                                 f"{seconds(retry_after)}.")
    return Response(page, status=429, mimetype="text/html",
                    headers={"Cache-Control": "no-store", "Retry-After": str(retry_after)})


def charge_app(app_id: int) -> None:
    """Count one request of app ``app_id`` against its rate limit; over it, raise the 429 of the
    request's channel (LTI services, else OneRoster)."""
    retry_after = current_app.extensions[LIMITS].app_wait(app_id)
    if not retry_after:
        return
    count_rate_limited("app")
    description = f"Too many requests from this app; try again in {seconds(retry_after)}."
    headers = {"Retry-After": str(retry_after)}
    if request.blueprint == LTI_BLUEPRINT:
        raise LtiServiceBusy(description, headers=headers)
    raise TooManyRequests(description, headers=headers)
