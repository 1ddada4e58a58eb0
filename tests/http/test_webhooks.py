"""Webhooks end to end: a receiver on localhost (a real HTTP server) that checks the signature
with its own HMAC code, an import run by the CLI, a 500 retried after its backoff, a replay from a
cursor, and the delivery job on the Redis queue."""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from sqlalchemy import select

from gateway.cli import cli
from gateway.events.webhooks import deliver_due
from gateway.store.apps import AppClient
from gateway.store.events import Webhook
from gateway.store.models import utcnow

from bundles import small_district, write_bundle


class Receiver:
    """A webhook receiver: verifies each delivery as the README tells receivers to (HMAC-SHA256
    of ``t + "." + body``, timestamp within 5 minutes), keeps the verified bodies, and answers
    ``statuses`` in turn (then 200)."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.bodies: list[dict] = []
        self.rejected: list[str] = []
        self.statuses: list[int] = []
        # How long the receiver takes to answer (a slow app).
        self.slow_seconds = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(receiver.slow_seconds)
                status = receiver.receive(self.headers.get("X-Gateway-Signature", ""), body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, header: str, body: bytes) -> int:
        parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
        expected = hmac.new(self.secret.encode(), parts.get("t", "").encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v1", "")) or \
                abs(time.time() - int(parts.get("t", "0"))) > 300:
            self.rejected.append(header)
            return 401
        if self.statuses:
            status = self.statuses.pop(0)
            if status != 200:
                return status
        self.bodies.append(json.loads(body))
        return 200

    def events(self) -> list[dict]:
        """Every event received (verified and accepted), in order."""
        return [event for body in self.bodies for event in body["events"]]

    def wait_for(self, count: int, seconds: float = 15) -> list[dict]:
        """The events, once at least ``count`` have arrived."""
        deadline = time.monotonic() + seconds
        while len(self.events()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events()


@pytest.fixture
def receiver():
    """A receiver listening on localhost."""
    found = Receiver()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def hooked_app(load_small, make_token, runner, database, receiver):
    """The small district, an app sharing it whole, and its webhook at the receiver; the app's id."""
    load_small()
    make_token()
    with database.session_scope() as session:
        app_id = session.execute(select(AppClient.app_id)).scalar_one()
    result = runner.invoke(cli, ["webhooks", "add", "--app", str(app_id), "--url", receiver.url,
                                 "--json"])
    assert result.exit_code == 0, result.output
    added = json.loads(result.stdout.splitlines()[0])
    assert added["secret"].startswith("whsec_")
    receiver.secret = added["secret"]
    return app_id


@contextlib.contextmanager
def hooked_receiver(runner, app_id: int):
    """A receiver of its own, with a webhook of app ``app_id`` added by the CLI."""
    found = Receiver()
    try:
        added = runner.invoke(cli, ["webhooks", "add", "--app", str(app_id), "--url", found.url,
                                    "--json"])
        assert added.exit_code == 0, added.output
        found.secret = json.loads(added.stdout.splitlines()[0])["secret"]
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


def edit_two_users(tmp_path, name: str):
    rows = small_district()
    for user in rows["users"]:
        if user["sourcedId"] in ("u1", "u2"):
            user["familyName"] = name
    return write_bundle(tmp_path / name, rows)


def deliver(app, **kwargs):
    """What ``gateway webhooks deliver`` does, with a clock of our own."""
    with requests.Session() as http:
        return deliver_due(app.extensions["gateway.db"], secret_key=app.config["SECRET_KEY"],
                           post=http.post, settings=app.config, **kwargs)


def test_an_import_is_delivered_signed_after_its_commit(hooked_app, runner, receiver, tmp_path):
    result = runner.invoke(cli, ["import", str(edit_two_users(tmp_path, "Flanders")), "--force"])
    assert result.exit_code == 0, result.output
    events = receiver.wait_for(2)
    assert sorted((e["entity"], e["sourcedId"], e["type"]) for e in events) == [
        ("user", "u1", "updated"), ("user", "u2", "updated")]
    assert receiver.rejected == []
    body = receiver.bodies[-1]
    assert body["app"] == hooked_app and body["district"] == "d1"
    assert body["next"] == events[-1]["cursor"] and body["more"] is False


def test_a_forged_or_stale_signature_fails_the_receiver_s_check(receiver):
    receiver.secret = "whsec_x"
    body = b'{"events": []}'
    stale = int(time.time()) - 301
    mac = hmac.new(b"whsec_x", f"{stale}.".encode() + body, hashlib.sha256).hexdigest()
    assert requests.post(receiver.url, data=body,
                         headers={"X-Gateway-Signature": f"t={stale},v1={mac}"}).status_code == 401
    now = int(time.time())
    assert requests.post(receiver.url, data=body,
                         headers={"X-Gateway-Signature": f"t={now},v1={mac}"}).status_code == 401
    assert len(receiver.rejected) == 2


def test_a_500_is_retried_after_an_exponential_backoff(hooked_app, app, database, receiver,
                                                        tmp_path, runner):
    from gateway.importing import run_import
    from gateway.oneroster.csv.importer import ImportOptions

    run_import(database, edit_two_users(tmp_path, "Burns"), ImportOptions(force=True))
    receiver.statuses = [500, 500]
    start = utcnow()
    [first] = deliver(app, clock=lambda: start)
    assert first.error == "HTTP 500" and receiver.events() == []
    with database.session_scope() as session:
        hook = session.execute(select(Webhook)).scalar_one()
        assert (hook.failures, hook.next_attempt_at) == (1, start + dt.timedelta(seconds=10))
    # Not due before its backoff has passed: no request is made.
    assert deliver(app, clock=lambda: start + dt.timedelta(seconds=9)) == []
    [second] = deliver(app, clock=lambda: start + dt.timedelta(seconds=10))
    assert second.error == "HTTP 500"
    with database.session_scope() as session:
        hook = session.execute(select(Webhook)).scalar_one()
        # Doubled: 20 s after the second failure.
        assert hook.next_attempt_at == start + dt.timedelta(seconds=30)
    listed = runner.invoke(cli, ["webhooks", "list", "--json"])
    assert json.loads(listed.output)[0]["failures"] == 2
    [third] = deliver(app, clock=lambda: start + dt.timedelta(seconds=30))
    assert third.error is None and third.events == 2
    assert sorted(e["sourcedId"] for e in receiver.events()) == ["u1", "u2"]
    with database.session_scope() as session:
        hook = session.execute(select(Webhook)).scalar_one()
        assert (hook.failures, hook.next_attempt_at, hook.cursor) == (
            0, None, int(receiver.events()[-1]["cursor"]))
    # Caught up: nothing more is sent.
    assert deliver(app)[0].events == 0


def test_replay_from_a_cursor_delivers_those_events_again(hooked_app, app, database, receiver,
                                                          tmp_path, runner):
    from gateway.importing import run_import
    from gateway.oneroster.csv.importer import ImportOptions

    run_import(database, edit_two_users(tmp_path, "Skinner"), ImportOptions(force=True))
    run_import(database, edit_two_users(tmp_path, "Wiggum"), ImportOptions(force=True))
    deliver(app)
    delivered = receiver.events()
    assert len(delivered) == 4
    middle = delivered[1]["cursor"]
    result = runner.invoke(cli, ["webhooks", "replay", "--app", str(hooked_app), "--from", middle])
    assert result.exit_code == 0, result.output
    assert receiver.events()[4:] == delivered[2:]
    # A cursor before the events kept is refused.
    with database.session_scope() as session:
        from gateway.events.feed import prune_events
        prune_events(session, utcnow() + dt.timedelta(days=1))
    refused = runner.invoke(cli, ["webhooks", "replay", "--app", str(hooked_app), "--from", "0"])
    assert refused.exit_code == 1 and "expired" in refused.output


def test_remove_stops_deliveries(hooked_app, app, database, receiver, tmp_path, runner):
    from gateway.importing import run_import
    from gateway.oneroster.csv.importer import ImportOptions

    with database.session_scope() as session:
        hook_id = session.execute(select(Webhook.id)).scalar_one()
    assert runner.invoke(cli, ["webhooks", "remove", str(hook_id)]).exit_code == 0
    run_import(database, edit_two_users(tmp_path, "Nahasapeemapetilon"), ImportOptions(force=True))
    assert deliver(app) == [] and receiver.events() == []


def test_with_redis_an_import_queues_the_delivery_job(hooked_app, app, database, receiver,
                                                      redis_url, redis_prefix, tmp_path):
    from gateway.events.jobs import start_deliveries
    from gateway.jobs import JobContext, run_job
    from gateway.jobs.queue import connect_queue_redis
    from gateway.importing import run_import
    from gateway.oneroster.csv.importer import ImportOptions

    run_import(database, edit_two_users(tmp_path, "Lovejoy"), ImportOptions(force=True))
    settings = {**app.config, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": redis_prefix}
    job_id = start_deliveries(database, settings, 1)
    redis = connect_queue_redis(redis_url)
    from gateway.jobs.queue import fetch_job
    job = fetch_job(redis, job_id)
    assert job.meta["kind"] == "webhooks" and job.retries_left == 10
    # What the worker runs: the job's function, here in this process.
    result = run_job("webhooks", job.args[1], JobContext(database, settings, ""))
    assert result["delivered"] == 2 and len(receiver.events()) == 2
    redis.close()


def test_gradebook_events_go_only_to_webhooks_of_apps_granted_a_gradebook_scope(
        hooked_app, app, client, connect_app, runner, receiver):
    from gateway.oneroster.vocabulary import GRADEBOOK_SCOPES, ROSTERING_SCOPES

    from gradebook_api import GradebookApi
    from test_gradebook_service import line_item

    creds, token = connect_app("d1", ROSTERING_SCOPES + GRADEBOOK_SCOPES, name="Gradebook App")
    with hooked_receiver(runner, creds.app_id) as graded:
        assert GradebookApi(client, token).put("/lineItems/li", line_item("k1")).status_code == 201
        # Delivered once the write committed, with no delivery command run.
        graded.wait_for(1)
        wait_until_idle(app)
        assert [(e["entity"], e["sourcedId"], e["type"]) for e in graded.events()
                if e["entity"] == "lineItem"] == [("lineItem", "li", "created")]
        # The hooked app reads the roster only: no gradebook event reaches its receiver.
        assert [e for e in receiver.events() if e["entity"] == "lineItem"] == []
        assert graded.rejected == receiver.rejected == []


def wait_until_idle(app, seconds: float = 15) -> None:
    """Wait for the deliveries the app's gradebook writes started (gateway.events.trigger)."""
    trigger = app.extensions["gateway.delivery_trigger"]
    deadline = time.monotonic() + seconds
    while not trigger.idle():
        assert time.monotonic() < deadline, "the deliveries did not end"
        time.sleep(0.02)


def test_a_burst_of_gradebook_writes_is_delivered_without_a_delivery_command(
        load_small, app, client, connect_app, runner):
    from gateway.oneroster.vocabulary import GRADEBOOK_SCOPES, ROSTERING_SCOPES

    from gradebook_api import GradebookApi
    from test_gradebook_service import line_item, result

    load_small()
    creds, token = connect_app("d1", ROSTERING_SCOPES + GRADEBOOK_SCOPES, name="Grades")
    with hooked_receiver(runner, creds.app_id) as graded:
        api = GradebookApi(client, token)
        assert api.put("/lineItems/li", line_item("k2")).status_code == 201
        for score in range(20):
            assert api.put("/results/r2", result("li", "u2", score=score)).status_code == 201
        written = [("lineItem", "li", "created"), ("result", "r2", "created")] + [
            ("result", "r2", "updated")] * 19
        graded.wait_for(len(written))
        wait_until_idle(app)
        # Every write's event, each once and in order: the runs the burst started covered all.
        assert [(e["entity"], e["sourcedId"], e["type"]) for e in graded.events()
                if e["entity"] in ("lineItem", "result")] == written
        assert graded.rejected == []


def test_runs_of_several_processes_at_once_send_each_event_once(hooked_app, app, database,
                                                                 receiver, runner, tmp_path):
    # Deliveries started at once (every worker's gradebook writes, an import, the command) take
    # turns on the webhook: a slow receiver keeps the first run sending while the others start.
    receiver.slow_seconds = 0.3
    result = runner.invoke(cli, ["import", str(edit_two_users(tmp_path, "Szyslak")), "--force"])
    assert result.exit_code == 0, result.output
    receiver.wait_for(2)
    before = len(receiver.events())
    result = runner.invoke(cli, ["import", str(edit_two_users(tmp_path, "Gumble")), "--force"])
    assert result.exit_code == 0, result.output
    runs = [threading.Thread(target=deliver, args=(app,)) for _ in range(4)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(60)
    receiver.wait_for(before + 2)
    time.sleep(0.5)
    events = receiver.events()[before:]
    assert sorted((e["entity"], e["sourcedId"]) for e in events) == [("user", "u1"), ("user", "u2")]
    with database.session_scope() as session:
        assert session.execute(select(Webhook.lease_until)).scalar_one() is None
