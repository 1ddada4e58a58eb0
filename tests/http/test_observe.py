"""Request ids and the logs: every response carries an X-Request-Id (the client's when sane),
every request leaves one JSON access line on stderr with that id and without its query string,
and every other line logged while it is served carries the id too."""
from __future__ import annotations

import json
import re

import pytest

from gateway import create_app
from gateway.logs import configure_logging

USERS = "/ims/oneroster/rostering/v1p2/users"


def log_lines(capsys) -> list[dict]:
    """The JSON lines written to stderr since the last call."""
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]


def access_lines(capsys) -> list[dict]:
    return [line for line in log_lines(capsys) if line["logger"] == "gateway.access"]


@pytest.mark.parametrize("sent", ["abc", "trace.ID_42-x", "a" * 128,
                                  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
def test_a_sane_request_id_is_returned(client, sent):
    assert client.get("/healthz", headers={"X-Request-Id": sent}).headers["X-Request-Id"] == sent


@pytest.mark.parametrize("sent", [None, "", "a" * 129, "has space", "semi;colon", "quote\"d",
                                  "{\"json\":1}", "caf\u00e9"])
def test_anything_else_gets_a_new_one(client, sent):
    headers = {} if sent is None else {"X-Request-Id": sent}
    first = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    second = client.get("/healthz", headers=headers).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{24}", first) and re.fullmatch(r"[0-9a-f]{24}", second)
    assert first != second


def test_error_responses_carry_the_request_id_too(client, make_app):
    sent = {"X-Request-Id": "err-1"}
    responses = [client.get(USERS, headers=sent),                       # 401
                 client.get(USERS + "/x/y/z", headers=sent),             # 404, OneRoster body
                 client.get("/nowhere", headers=sent),                   # 404, no rule
                 client.post("/healthz", headers=sent),                  # 405
                 client.post("/oauth/token", data={}, headers=sent)]     # 400, OAuth body
    assert [r.status_code for r in responses] == [401, 404, 404, 405, 400]
    assert all(r.headers["X-Request-Id"] == "err-1" for r in responses)

    limited = make_app(IP_RATE_PER_SECOND=0.1, IP_RATE_BURST=1).test_client()
    limited.post("/login", data={})
    refused = limited.post("/login", data={}, headers=sent)
    assert refused.status_code == 429
    assert refused.headers["X-Request-Id"] == "err-1"


def test_an_unhandled_error_is_logged_with_the_request_id(make_app, capsys):
    app = make_app(TESTING=False)
    app.add_url_rule("/boom", "boom", lambda: 1 / 0)
    client = app.test_client()
    log_lines(capsys)
    response = client.get("/boom", headers={"X-Request-Id": "boom-7"})
    assert response.status_code == 500
    assert response.headers["X-Request-Id"] == "boom-7"

    error, access = log_lines(capsys)
    assert error["level"] == "ERROR" and error["logger"] == "gateway"
    assert error["message"] == "unhandled error on /boom"
    assert error["request_id"] == "boom-7"
    assert "ZeroDivisionError" in error["exception"]
    assert access["request_id"] == "boom-7" and access["status"] == 500


def test_one_json_access_line_per_request_without_the_query(client, api_for, load_small, capsys):
    load_small()
    api = api_for()
    log_lines(capsys)
    response = api.client.get(USERS, query_string={"filter": "email='lisa@example.edu'",
                                                   "fields": "sourcedId"},
                              headers={"Authorization": f"Bearer {api.token}",
                                       "X-Request-Id": "sync-run-1.page-3"})
    assert response.status_code == 200
    written = capsys.readouterr().err
    [line] = [json.loads(text) for text in written.splitlines()]
    duration = line.pop("duration_ms")
    time = line.pop("time")
    assert line == {"level": "INFO", "logger": "gateway.access", "message": "request",
                    "request_id": "sync-run-1.page-3", "method": "GET", "endpoint": USERS,
                    "path": USERS, "status": 200, "client": "127.0.0.1"}
    assert isinstance(duration, float) and 0 < duration < 60_000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", time)
    # Personal data in the query never reaches the log.
    assert "lisa" not in written and "filter" not in written and "?" not in written


def test_the_access_line_names_the_url_rule_and_the_real_path(client, capsys):
    log_lines(capsys)
    client.get(USERS + "/stu-0042")
    [line] = access_lines(capsys)
    assert line["endpoint"] == USERS + "/<sourcedId>"
    assert line["path"] == USERS + "/stu-0042"
    assert line["status"] == 401


def test_text_logs_for_humans(make_app, capsys):
    try:
        client = make_app(LOG_FORMAT="text").test_client()
        capsys.readouterr()
        client.get("/healthz?probe=1", headers={"X-Request-Id": "lb-probe"})
        [line] = capsys.readouterr().err.splitlines()
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO gateway\.access \[lb-probe\] request "
            r"method=GET endpoint=/healthz path=/healthz status=200 duration_ms=[\d.]+ "
            r"client=127\.0\.0\.1", line), line
    finally:
        configure_logging("json")


def test_the_access_log_can_be_switched_off(make_app, capsys):
    client = make_app(ACCESS_LOG=False).test_client()
    capsys.readouterr()
    response = client.get("/healthz", headers={"X-Request-Id": "quiet"})
    assert response.headers["X-Request-Id"] == "quiet"
    assert capsys.readouterr().err == ""


def test_an_unknown_log_format_is_refused(database_url, tmp_path):
    with pytest.raises(ValueError, match="GATEWAY_LOG_FORMAT='xml': use one of json, text"):
        create_app({"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i"),
                    "SECRET_KEY": "k", "LOG_FORMAT": "xml"})
