"""The guessing throttles as the HTTP layer uses them: the keys of a sign-in and of a token
request, with the rules from the settings, and the store in the request's session."""
from __future__ import annotations

import datetime as dt

from flask import current_app, request

from gateway.database import request_session, write_session
from gateway.store.accounts import SqlThrottleStore
from gateway.throttle import ThrottleKey, ThrottleRule


def _rule(max_failures_setting: str) -> ThrottleRule:
    config = current_app.config
    return ThrottleRule(max_failures=int(config[max_failures_setting]),
                        window=dt.timedelta(seconds=int(config["THROTTLE_WINDOW_SECONDS"])),
                        lockout=dt.timedelta(seconds=int(config["THROTTLE_LOCKOUT_SECONDS"])))


def account_keys(username: str) -> list[ThrottleKey]:
    """The key of a sign-in's account (none for an empty username)."""
    return [ThrottleKey("account", username, _rule("LOGIN_MAX_FAILURES_PER_ACCOUNT"))] \
        if username else []


def login_keys(username: str) -> list[ThrottleKey]:
    """The keys a sign-in counts against: its account and the client's address."""
    address = ThrottleKey("address", request.remote_addr or "",
                          _rule("LOGIN_MAX_FAILURES_PER_ADDRESS"))
    return account_keys(username) + [address]


def client_keys(client_id: str | None) -> list[ThrottleKey]:
    """The key a token request counts against: the client_id it presents (none without one)."""
    return [ThrottleKey("client", client_id, _rule("TOKEN_MAX_FAILURES_PER_CLIENT"))] \
        if client_id else []


def throttle_store(*, writing: bool = False) -> SqlThrottleStore:
    """The failure counters, in the request's session (``writing``: after committing its reads,
    see :func:`gateway.database.write_session`)."""
    return SqlThrottleStore(write_session() if writing else request_session())


def admin_login_keys(email: str) -> list[ThrottleKey]:
    """The keys a console sign-in counts against: the admin account (its own kind, so a portal
    username equal to an address is another counter) and the client's address."""
    address = ThrottleKey("address", request.remote_addr or "",
                          _rule("LOGIN_MAX_FAILURES_PER_ADDRESS"))
    account = [ThrottleKey("admin", email.strip().lower(),
                           _rule("LOGIN_MAX_FAILURES_PER_ACCOUNT"))] if email else []
    return account + [address]
