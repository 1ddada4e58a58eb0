"""Password guessing at /login is throttled per account and per client address, with counters in
the store shared by every worker; unknown usernames cost the same scrypt work as known ones."""
from __future__ import annotations

import datetime as dt
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor

import pytest
from sqlalchemy import select, update

import gateway.passwords
from gateway import create_app
from gateway.store import Database
from gateway.store.accounts import AuthThrottle, SqlThrottleStore
from gateway.store.models import User, utcnow
from gateway.throttle import ThrottleKey, ThrottleRule

from lti_support import PASSWORD, csrf_of

WRONG = "Unknown username or wrong password."


def attempt(browser, username: str, password: str, address: str = "10.0.0.1", **extra):
    token = csrf_of(browser.get("/login").get_data(as_text=True))
    return browser.post("/login", data={"username": username, "password": password,
                                        "csrf_token": token, **extra},
                        environ_base={"REMOTE_ADDR": address})


def assert_wrong(response) -> None:
    assert response.status_code == 200
    assert WRONG in response.get_data(as_text=True)


def assert_throttled(response) -> int:
    """The 429 page; returns its Retry-After."""
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 300
    assert (f"Too many failed sign-in attempts for this account or from this network. Try again "
            f"in {retry_after} seconds.") in response.get_data(as_text=True)
    return retry_after


def test_the_right_password_is_refused_after_too_many_wrong_ones(client, passwords):
    for _ in range(5):
        assert_wrong(attempt(client, "lisa", "wrong password"))

    assert_throttled(attempt(client, "lisa", PASSWORD))
    # Another account from another address is not concerned.
    assert attempt(client, "bart", PASSWORD, address="10.0.0.2").status_code == 303


def test_the_account_is_throttled_from_every_address(client, passwords):
    for n in range(5):
        assert_wrong(attempt(client, "lisa", "wrong password", address=f"10.0.1.{n}"))

    assert_throttled(attempt(client, "lisa", PASSWORD, address="10.0.2.1"))


def test_the_address_is_throttled_for_every_account(app, client, passwords):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for username in ("lisa", "bart", "nobody"):
        assert_wrong(attempt(client, username, "wrong password"))

    assert_throttled(attempt(client, "milhouse", PASSWORD))
    assert attempt(client, "lisa", PASSWORD, address="10.0.0.9").status_code == 303


def test_a_success_clears_the_account_count_not_the_address_count(app, client, passwords):
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 8
    for _ in range(4):
        assert_wrong(attempt(client, "lisa", "wrong password"))
    assert attempt(client, "lisa", PASSWORD).status_code == 303
    client.delete_cookie("session")
    for _ in range(4):
        assert_wrong(attempt(client, "lisa", "wrong password"))
    # Four after the success: the account is not locked, but the address has its eight.
    assert_throttled(attempt(client, "lisa", PASSWORD))
    assert attempt(client, "lisa", PASSWORD, address="10.0.0.3").status_code == 303


def lock_lisa_then_end_the_lockout(client, database) -> None:
    """Five wrong passwords for lisa, then her lockout has run out (the window has not)."""
    for _ in range(5):
        assert_wrong(attempt(client, "lisa", "wrong password"))
    assert_throttled(attempt(client, "lisa", PASSWORD))
    with database.session_scope() as session:
        session.execute(update(AuthThrottle).values(
            locked_until=utcnow() - dt.timedelta(seconds=1)))


def test_a_lockout_ends(client, passwords, database):
    lock_lisa_then_end_the_lockout(client, database)

    assert attempt(client, "lisa", PASSWORD).status_code == 303


def test_a_failure_after_a_lockout_locks_again_while_the_window_lasts(client, passwords, database):
    lock_lisa_then_end_the_lockout(client, database)
    assert_wrong(attempt(client, "lisa", "wrong password"))

    assert_throttled(attempt(client, "lisa", PASSWORD))


def test_a_window_that_ran_out_starts_counting_again(client, passwords, database):
    for _ in range(4):
        assert_wrong(attempt(client, "lisa", "wrong password"))
    with database.session_scope() as session:
        session.execute(update(AuthThrottle).values(
            window_started_at=utcnow() - dt.timedelta(seconds=901)))
    assert_wrong(attempt(client, "lisa", "wrong password"))

    assert attempt(client, "lisa", PASSWORD).status_code == 303


def test_the_thresholds_and_lockout_are_settings(app, client, passwords):
    app.config.update(LOGIN_MAX_FAILURES_PER_ACCOUNT=2, THROTTLE_LOCKOUT_SECONDS=40)
    for _ in range(2):
        assert_wrong(attempt(client, "lisa", "wrong password"))

    retry_after = assert_throttled(attempt(client, "lisa", PASSWORD))
    assert 39 <= retry_after <= 40


def test_the_counters_are_shared_by_every_worker(client, passwords, second_app):
    other_client = second_app.test_client()
    for browser in (client, other_client, client, other_client, client):
        assert_wrong(attempt(browser, "lisa", "wrong password"))

    assert_throttled(attempt(other_client, "lisa", PASSWORD))
    assert_throttled(attempt(client, "lisa", PASSWORD))


_RULE = ThrottleRule(max_failures=1000, window=dt.timedelta(minutes=15),
                     lockout=dt.timedelta(minutes=5))


def _fail_ten_times(database_url: str) -> None:
    """Ten failures against lisa's account, each its own transaction (run in another process)."""
    database = Database(database_url)
    try:
        for _ in range(10):
            with database.session_scope() as session:
                SqlThrottleStore(session).record_failure(
                    ThrottleKey("account", "lisa", _RULE).digest, _RULE, utcnow())
    finally:
        database.dispose()


def test_concurrent_failures_on_several_workers_all_count(database_url, database):
    with ProcessPoolExecutor(max_workers=4, mp_context=multiprocessing.get_context("spawn")) as pool:
        for done in [pool.submit(_fail_ten_times, database_url) for _ in range(4)]:
            done.result()

    with database.session_scope() as session:
        assert session.execute(select(AuthThrottle.failures)).scalar_one() == 40


@pytest.fixture
def scrypt_calls(monkeypatch):
    """Count the scrypt computations (the real ones still run)."""
    calls = []
    real = gateway.passwords._scrypt

    def counting(*args, **kwargs):
        calls.append(args[2:])  # (n, r, p, length): the work done
        return real(*args, **kwargs)

    monkeypatch.setattr(gateway.passwords, "_scrypt", counting)
    return calls


@pytest.mark.parametrize("username", ["nobody", "lisa", "bart"])
def test_every_failed_sign_in_costs_one_full_scrypt(client, passwords, database, scrypt_calls,
                                                    username):
    # bart has no password (imported without one): he used to answer at once.
    with database.session_scope() as session:
        session.execute(update(User).where(User.username == "bart").values(password_hash=None))
    page = client.get("/login").get_data(as_text=True)
    scrypt_calls.clear()

    response = client.post("/login", data={"username": username, "password": "wrong password",
                                           "csrf_token": csrf_of(page)})

    assert_wrong(response)
    assert scrypt_calls == [(2 ** 14, 8, 1, 32)]


def test_a_throttled_attempt_checks_no_password(client, passwords, scrypt_calls):
    for _ in range(5):
        assert_wrong(attempt(client, "lisa", "wrong password"))
    scrypt_calls.clear()

    assert_throttled(attempt(client, "lisa", PASSWORD))
    assert scrypt_calls == []


def test_no_username_or_address_is_kept_in_clear(client, passwords, database):
    assert_wrong(attempt(client, "lisa", "wrong password", address="10.9.8.7"))
    with database.session_scope() as session:
        keys = session.execute(select(AuthThrottle.key)).scalars().all()
    assert len(keys) == 2
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for key in keys)


def test_behind_a_proxy_the_forwarded_address_is_counted(app, client, passwords, database_url,
                                                         tmp_path):
    def guess_from_two_forwarded_addresses(browser):
        """Two wrong guesses forwarded for one address, then a sign-in forwarded for another,
        all through the proxy at 10.0.0.1; the response to the sign-in."""
        for username in ("lisa", "bart"):
            assert_wrong(attempt(browser, username, "wrong password",
                                 headers={"X-Forwarded-For": "203.0.113.5"}))
        return attempt(browser, "milhouse", PASSWORD, headers={"X-Forwarded-For": "203.0.113.6"})

    def attempt(browser, username, password, headers):
        token = csrf_of(browser.get("/login").get_data(as_text=True))
        return browser.post("/login", data={"username": username, "password": password,
                                            "csrf_token": token},
                            headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.1"})

    proxied = create_app({**{name: app.config[name] for name in ("TESTING", "SECRET_KEY", "ISSUER")},
                          "DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "proxied"),
                          "PROXY_COUNT": 1, "LOGIN_MAX_FAILURES_PER_ADDRESS": 2})
    try:
        assert guess_from_two_forwarded_addresses(proxied.test_client()).status_code == 303
    finally:
        proxied.extensions["gateway.db"].dispose()
    # Without PROXY_COUNT the header is not trusted: everything counts against the proxy.
    app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 2
    assert_throttled(guess_from_two_forwarded_addresses(client))
