"""`gateway serve --workers 2`, a real server: whichever worker answers a scrape reports every
worker's counts (prometheus_client's multiprocess mode, in a private directory removed when the
server stops), and the server's log has the gateway's JSON access lines, never a query string
(gunicorn's own access log, which has them, is off)."""
from __future__ import annotations

import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from served import Served

REQUESTS = 40


def readyz_count(base: str) -> float:
    """The served /readyz requests (status 200) one scrape reports."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "gateway_http_requests_total" and sample.labels == {
                    "endpoint": "/readyz", "method": "GET", "status": "200"}:
                return sample.value
    return 0.0


def test_two_workers_count_together_and_log_json_without_queries(database_url, tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    log = tmp_path / "server.log"
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY="test-secret-key",
               GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"), TMPDIR=str(temp))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    served = Served(env, ["serve", "--workers", "2"], log=log)
    try:
        [directory] = list(temp.glob("gateway-metrics-*"))
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700

        def probe(n: int) -> int:
            return requests.get(f"{served.base}/readyz", params={"probe": f"secret-{n}"},
                                headers={"X-Request-Id": f"probe-{n}"}, timeout=30).status_code

        # Eight at a time: both sync workers are kept busy.
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(probe, range(REQUESTS))) == [200] * REQUESTS
        workers = {re.fullmatch(r"counter_(\d+)\.db", path.name).group(1)
                   for path in directory.glob("counter_*.db")}
        assert len(workers) == 2, workers
        # Each scrape is answered by either worker; every one reports both workers' counts.
        assert [readyz_count(served.base) for _ in range(8)] == [REQUESTS] * 8
    finally:
        served.stop()
    assert not directory.exists()

    lines = log.read_text().splitlines()
    access = [json.loads(line) for line in lines
              if line.startswith("{") and '"logger":"gateway.access"' in line]
    probes = [line for line in access if line["endpoint"] == "/readyz"]
    assert sorted(line["request_id"] for line in probes) == sorted(
        f"probe-{n}" for n in range(REQUESTS))
    assert {line["path"] for line in probes} == {"/readyz"}
    assert {line["status"] for line in probes} == {200}
    assert not any("secret-" in line for line in lines)
