"""/healthz, /readyz and /metrics as a load balancer and Prometheus see them."""
from __future__ import annotations

import socket

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import cli
from gateway.store import Database
from gateway.store.migrate import _scripts, head_revision, upgrade_database

from bundles import small_district, write_bundle

USERS = "/ims/oneroster/rostering/v1p2/users"
ONE_USER_RULE = "/ims/oneroster/rostering/v1p2/users/<sourcedId>"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    """Every sample of /metrics by (name, labels)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# -- /healthz ------------------------------------------------------------------------------------

def test_healthz_says_the_process_is_up(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_healthz_does_not_touch_the_database(make_app):
    app = make_app(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/none"
                                "?connect_timeout=2")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "not ready", "failed": ["database", "migrations"],
        "checks": {"database": "unreachable", "migrations": "unknown", "redis": "not configured"}}


# -- /readyz ------------------------------------------------------------------------------------

def test_readyz_checks_the_database_and_its_schema(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "redis": "not configured"}}
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_checks_redis_when_one_is_configured(make_app, redis_url, closed_port_url):
    ready = make_app(REDIS_URL=redis_url).test_client().get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}

    down = make_app(REDIS_URL=closed_port_url).test_client().get("/readyz")
    assert down.status_code == 503
    assert down.get_json() == {"status": "not ready", "failed": ["redis"], "checks": {
        "database": "ok", "migrations": "ok", "redis": "unreachable"}}
    # Nothing about where Redis is: the probe's answer is public.
    assert str(closed_port_url.rsplit(":", 1)[1].split("/")[0]) not in down.get_data(as_text=True)


def test_readyz_refuses_a_database_behind_the_newest_migration(make_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    previous = _scripts().get_revision(head_revision()).down_revision
    upgrade_database(Database(url), revision=previous)
    response = make_app(DATABASE_URL=url).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "not ready", "failed": ["migrations"], "checks": {
        "database": "ok", "migrations": "behind", "redis": "not configured"}}


# -- /metrics ------------------------------------------------------------------------------------

def test_metrics_count_requests_by_url_rule_never_by_path(client, api_for, load_small):
    load_small()
    api = api_for()
    before = scrape(client)
    assert api.get("/users/u2").status_code == 200
    assert api.get("/users/no-such-person").status_code == 404
    assert api.get("/users", filter="email='lisa@example.edu'").status_code == 200
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    after = scrape(client)

    for status, count in (("200", 1), ("404", 1)):
        assert value(after, "gateway_http_requests_total", endpoint=ONE_USER_RULE, method="GET",
                     status=status) - value(before, "gateway_http_requests_total",
                                            endpoint=ONE_USER_RULE, method="GET",
                                            status=status) == count
    assert value(after, "gateway_http_request_duration_seconds_count", endpoint=ONE_USER_RULE) \
        - value(before, "gateway_http_request_duration_seconds_count", endpoint=ONE_USER_RULE) == 2
    assert value(after, "gateway_http_requests_total", endpoint=USERS, method="GET",
                 status="200") >= 1
    # No sourcedId, no query, no value a client sent is in any label.
    for raw in ("u2", "no-such-person", "lisa@example.edu", "email"):
        assert all(raw not in label_value for _name, labels in after
                   for _label, label_value in labels), raw
    assert "no-such-person" not in text and "lisa@example.edu" not in text


def test_unmatched_paths_share_one_label(client):
    before = scrape(client)
    client.get("/no/such/path/stu-12345")
    after = scrape(client)
    assert value(after, "gateway_http_requests_total", endpoint="unmatched", method="GET",
                 status="404") - value(before, "gateway_http_requests_total",
                                       endpoint="unmatched", method="GET", status="404") == 1


def test_metrics_count_ledger_appends(client, api_for, load_small):
    load_small()
    api = api_for()
    before = value(scrape(client), "gateway_ledger_appends_total", channel="oneroster-rest")
    assert api.get("/users").status_code == 200
    assert api.get("/students").status_code == 200
    assert value(scrape(client), "gateway_ledger_appends_total", channel="oneroster-rest") - before == 2


def test_metrics_count_imports_from_the_import_history(client, runner, tmp_path):
    samples = scrape(client)
    assert value(samples, "gateway_imports_total", outcome="applied") == 0
    result = runner.invoke(cli, ["import", str(write_bundle(tmp_path / "b1", small_district()))])
    assert result.exit_code == 0, result.output
    broken = small_district()
    broken["users"][0]["enabledUser"] = "maybe"
    result = runner.invoke(cli, ["import", str(write_bundle(tmp_path / "b2", broken))])
    assert result.exit_code == 1, result.output

    samples = scrape(client)
    assert value(samples, "gateway_imports_total", outcome="applied") == 1
    assert value(samples, "gateway_imports_total", outcome="rejected") == 1
    assert value(samples, "gateway_import_duration_seconds_count", outcome="applied") == 1
    assert 0 < value(samples, "gateway_import_duration_seconds_sum", outcome="applied") < 120


def test_metrics_count_refusals_by_rate_limits(make_app):
    client = make_app(IP_RATE_PER_SECOND=0.1, IP_RATE_BURST=1).test_client()
    before = value(scrape(client), "gateway_rate_limited_total", limit="address")
    client.post("/oauth/token", data={})
    assert client.post("/oauth/token", data={}).status_code == 429
    assert value(scrape(client), "gateway_rate_limited_total", limit="address") - before == 1


def test_a_metrics_token_is_required_when_set(make_app):
    client = make_app(METRICS_TOKEN="s3cret-scrape-token").test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic czNjcmV0"}):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert "gateway_" not in refused.get_data(as_text=True)
    assert scrape(client, Authorization="Bearer s3cret-scrape-token")


def test_metrics_can_be_switched_off(make_app):
    client = make_app(METRICS=False).test_client()
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("setting", ["METRICS", "ACCESS_LOG"])
def test_the_switches_read_yes_and_no_from_the_environment(monkeypatch, make_app, setting):
    monkeypatch.setenv(f"GATEWAY_{setting}", "off")
    assert make_app().config[setting] is False
    monkeypatch.setenv(f"GATEWAY_{setting}", "maybe")
    with pytest.raises(ValueError, match=f"GATEWAY_{setting}='maybe' is not a valid boolean"):
        make_app()
