"""``gateway sources``: a district pulled from another gateway process serving it (OneRoster 1.2
REST over real HTTP), first in full, then in deltas; and each way a pull fails, in one line,
recorded in the import history, writing nothing."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from gateway.cli import cli
from gateway.sharing.policy import share_everything_document
from gateway.store.models import District, User
from gateway.store.sources import SisSource

from bundles import small_district, write_bundle
from served import Served, free_port
from stub_source import Answer, StubSource, token_answer

ROSTERING = "/ims/oneroster/rostering/v1p2"
COLLECTIONS = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments",
               "demographics")


class Remote:
    """The other gateway: a quickstart district served by a process of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = dict(os.environ, GATEWAY_DATABASE_URL=f"sqlite:///{folder / 'remote.sqlite3'}",
                        GATEWAY_INSTANCE_PATH=str(folder / "instance"))
        self.env.pop("GATEWAY_ISSUER", None)
        self.log = folder / "server.log"
        self.server = Served(self.env, ["quickstart", "--students", "24"], timeout=120, log=self.log)
        # The address it names itself by in its Link headers (GATEWAY_ISSUER unset).
        self.url = f"http://localhost:{self.server.port}{ROSTERING}"

    def gateway(self, *args: str) -> subprocess.CompletedProcess:
        """Run a `gateway` command on the remote's store."""
        ran = subprocess.run([sys.executable, "-m", "gateway", *args], env=self.env,
                             capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        return ran

    def credentials(self) -> dict[str, str]:
        """New credentials of the remote's demo app (it shares the whole district)."""
        return json.loads(self.gateway("demo-credentials", "--json").stdout)

    def read(self, credentials: dict[str, str], collection: str) -> list[dict[str, Any]]:
        """A whole collection, as the remote serves it to those credentials."""
        token = requests.post(self.url.replace(ROSTERING, "/oauth/token"), timeout=10,
                              data={"grant_type": "client_credentials"},
                              auth=(credentials["client_id"], credentials["client_secret"]))
        answer = requests.get(f"{self.url}/{collection}", params={"limit": 10000}, timeout=30,
                              headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert answer.status_code == 200, answer.text
        return answer.json()[collection]

    def demo_rows(self, name: str) -> list[dict[str, str]]:
        """The rows of one file of the bundle the remote's quickstart imported."""
        with open(self.folder / "instance" / "demo-bundle" / f"{name}.csv", newline="",
                  encoding="utf-8") as handle:
            return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """One remote gateway for the module's tests."""
    served = Remote(tmp_path_factory.mktemp("remote"))
    yield served
    served.server.stop()


def invoke(runner, *args: str, **kwargs):
    return runner.invoke(cli, list(args), **kwargs)


def add_source(runner, url: str, credentials: dict[str, str], *extra: str) -> int:
    added = invoke(runner, "sources", "add", "--district", "district-1", "--oneroster-url", url,
                   "--client-id", credentials["client_id"],
                   "--client-secret", credentials["client_secret"], "--json", *extra)
    assert added.exit_code == 0, added.output
    return json.loads(added.stdout)["id"]


def local_reader(runner, client, tmp_path):
    """Read a whole collection of district-1 from this gateway, as an app sharing it all."""
    policy = tmp_path / "everything.json"
    policy.write_text(json.dumps(share_everything_document()))
    created = invoke(runner, "apps", "create", "--district", "district-1", "--name", "Mirror",
                     "--policy", str(policy), "--json")
    assert created.exit_code == 0, created.output
    app = json.loads(created.stdout)
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        auth=(app["client_id"], app["client_secret"])).get_json()["access_token"]

    def read(collection: str) -> list[dict[str, Any]]:
        answer = client.get(f"{ROSTERING}/{collection}?limit=10000",
                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.get_json()
        return answer.get_json()[collection]
    return read


def comparable(records: list[dict[str, Any]]) -> list[Any]:
    """Records as two gateways serving the same data must agree on them: by sourcedId, without
    the dateLastModified each gateway stamps, and with hrefs relative to the service."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (v.split(ROSTERING, 1)[1] if k == "href" else strip(v))
                    for k, v in value.items() if k != "dateLastModified"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return sorted((strip(r) for r in records), key=lambda r: r["sourcedId"])


def test_a_served_district_is_pulled_in_full_then_in_deltas(runner, client, app, database, remote,
                                                             tmp_path):
    # This gateway already serves a district of its own; the pull must leave it alone.
    assert invoke(runner, "import", str(write_bundle(tmp_path / "own", small_district()))).exit_code == 0
    credentials = remote.credentials()
    source = add_source(runner, remote.url, credentials, "--every", "1d")

    first = invoke(runner, "sources", "run", str(source), "--json")
    assert first.exit_code == 0, first.output
    outcome = json.loads(first.stdout)
    assert (outcome["mode"], outcome["since"], outcome["outcome"]) == ("bulk", None, "applied")
    assert set(outcome["rows"]) == set(COLLECTIONS) | {"roles", "userProfiles"}
    assert {f["mode"] for f in outcome["report"]["files"].values()} == {"bulk"}
    assert outcome["requests"] == len(COLLECTIONS)  # one page each, limit=1000

    # This gateway now serves district-1 exactly as the remote does, field for field.
    local = local_reader(runner, client, tmp_path)
    for collection in COLLECTIONS:
        remote_records = remote.read(credentials, collection)
        assert remote_records, collection
        assert comparable(local(collection)) == comparable(remote_records), collection

    # The remote changes: a student renamed and given a second role, an enrollment ended.
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    student = next(u for u in remote.demo_rows("users") if u["sourcedId"].startswith("stu-"))
    enrollment = next(e for e in remote.demo_rows("enrollments") if e["role"] == "student")
    other_school = [o for o in remote.demo_rows("orgs") if o["type"] == "school"][-1]["sourcedId"]
    delta = write_bundle(tmp_path / "delta", {
        "users": [{**student, "givenName": "Renamed", "status": "active", "dateLastModified": now}],
        "roles": [{"sourcedId": "role-extra", "status": "active", "dateLastModified": now,
                   "userSourcedId": student["sourcedId"], "roleType": "secondary",
                   "role": "student", "orgSourcedId": other_school}],
        "enrollments": [{**enrollment, "status": "tobedeleted", "dateLastModified": now}],
    }, modes={"users": "delta", "roles": "delta", "enrollments": "delta"})
    remote.gateway("import", str(delta), "--district", "district-1")

    # No overlap here: the delta then holds exactly what changed.
    app.config["SIS_PULL_OVERLAP_SECONDS"] = 0
    second = invoke(runner, "sources", "run", str(source), "--json")
    assert second.exit_code == 0, second.output
    outcome = json.loads(second.stdout)
    assert (outcome["mode"], outcome["outcome"]) == ("delta", "applied")
    assert outcome["rows"] == {"users": 1, "roles": 2, "enrollments": 1}
    files = outcome["report"]["files"]
    assert {name: (c["mode"], c["added"], c["changed"], c["unchanged"], c["deleted"])
            for name, c in files.items()} == {"users": ("delta", 0, 1, 0, 0),
                                              "roles": ("delta", 1, 0, 1, 0),
                                              "enrollments": ("delta", 0, 0, 0, 1)}
    # Every collection was asked for what changed since the first pull began (the remote's clock).
    asked = outcome["requested"]
    since = outcome["since"]
    assert since is not None
    assert asked == [f"{ROSTERING}/{c}?limit=1000&filter=dateLastModified%3E%27"
                     f"{since.replace(':', '%3A')}%27" for c in COLLECTIONS]
    for collection in ("users", "enrollments"):
        assert comparable(local(collection)) == comparable(remote.read(credentials, collection))
    renamed = [u for u in local("users") if u["sourcedId"] == student["sourcedId"]][0]
    assert renamed["givenName"] == "Renamed"
    assert {r["org"]["sourcedId"] for r in renamed["roles"]} == {student["primaryOrgSourcedId"],
                                                                  other_school}

    history = json.loads(invoke(runner, "imports", "--json").stdout)
    assert [(run["source"], run["outcome"], run["district"]) for run in history[:2]] == [
        (f"oneroster-rest:{remote.url}", "applied", "district-1")] * 2
    with database.session_scope() as session:
        own = session.execute(select(func.count()).select_from(User).join(
            District, District.id == User.district_id).where(District.sourced_id == "d1")).scalar_one()
        row = session.execute(select(SisSource)).scalar_one()
    assert own == len(small_district()["users"])
    assert (row.last_outcome, row.last_import_run_id) == ("applied", history[0]["id"])
    # The next delta asks from the start of this one.
    assert row.synced_through > dt.datetime.fromisoformat(since.rstrip("Z"))


def test_a_wrong_secret_or_an_unreachable_source_fails_in_one_line_and_is_recorded(runner, database,
                                                                                 remote):
    credentials = {**remote.credentials(), "client_secret": "not-the-secret"}
    refused = add_source(runner, remote.url, credentials)
    result = invoke(runner, "sources", "run", str(refused))
    assert result.exit_code == 1
    token_url = remote.url.replace(ROSTERING, "/oauth/token")
    assert result.output == (f"Error: source {refused}: the token endpoint {token_url} refused "
                             "the client credentials (401 invalid_client): check the client_id "
                             "and secret\n")

    port = free_port()
    nowhere = f"http://127.0.0.1:{port}{ROSTERING}"
    unreachable = add_source(runner, nowhere, credentials)
    result = invoke(runner, "sources", "run", str(unreachable), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["message"] == (
        f"cannot reach http://127.0.0.1:{port}/oauth/token: Connection refused")

    history = json.loads(invoke(runner, "imports", "--json").stdout)
    assert [(run["source"], run["outcome"], run["message"], run["counts"]) for run in history] == [
        (f"oneroster-rest:{nowhere}", "failed",
         f"cannot reach http://127.0.0.1:{port}/oauth/token: Connection refused", {}),
        (f"oneroster-rest:{remote.url}", "failed",
         f"the token endpoint {token_url} refused the client credentials (401 invalid_client): "
         "check the client_id and secret", {})]
    with database.session_scope() as session:
        assert session.execute(select(func.count()).select_from(District)).scalar_one() == 0
    listed = json.loads(invoke(runner, "sources", "list", "--json").stdout)
    assert [(s["last_outcome"], s["synced_through"]) for s in listed] == [("failed", None)] * 2


@pytest.fixture
def stub():
    """A scripted HTTP source (see tests/stub_source.py); set ``answer`` per test."""
    routes = {}
    source = StubSource(lambda request: routes["answer"](request))
    source.routes = routes
    yield source
    source.close()


def test_a_source_that_is_not_oneroster_or_stalls_fails_in_one_line(runner, app, stub):
    url = f"{stub.base}{ROSTERING}"
    stub.routes["answer"] = lambda r: token_answer(r) if r.path == "/oauth/token" else Answer(
        200, "<html>Sign in</html>")
    source = add_source(runner, url, {"client_id": "c", "client_secret": "s"})
    result = invoke(runner, "sources", "run", str(source))
    assert (result.exit_code, result.output) == (1, (
        f"Error: source {source}: {url}/orgs?limit=1000 answered 200 with text/html, not a "
        "OneRoster 1.2 'orgs' collection\n"))

    app.config["SIS_PULL_TIMEOUT_SECONDS"] = 0.3
    stub.routes["answer"] = lambda r: token_answer(r) if r.path == "/oauth/token" else Answer(
        200, {"orgs": []}, delay=2.0)
    result = invoke(runner, "sources", "run", str(source))
    assert (result.exit_code, result.output) == (1, (
        f"Error: source {source}: {url}/orgs: no answer within 0.3 s "
        "(GATEWAY_SIS_PULL_TIMEOUT_SECONDS)\n"))
    history = json.loads(invoke(runner, "imports", "--json").stdout)
    assert [run["outcome"] for run in history] == ["failed", "failed"]


def test_demographics_the_source_keeps_back_are_left_out_with_a_notice(runner, remote, tmp_path):
    policy = tmp_path / "everything.json"
    policy.write_text(json.dumps(share_everything_document()))
    core_only = json.loads(remote.gateway(
        "apps", "create", "--district", "district-1", "--name", f"Core {tmp_path.name}",
        "--scope", "https://purl.imsglobal.org/spec/or/v1p2/scope/roster-core.readonly",
        "--policy", str(policy), "--json").stdout)
    source = add_source(runner, remote.url, core_only)
    result = invoke(runner, "sources", "run", str(source))
    assert result.exit_code == 0, result.output
    assert ("  note: demographics were not pulled: the token endpoint did not grant "
            "roster-demographics.readonly\n") in result.output
    assert "demographics.csv" not in result.output and "users.csv" in result.output


def sis_records(base: str) -> dict[str, list[dict[str, Any]]]:
    """A small district as a SIS other than this gateway serves it (metadata included)."""
    def ref(kind: str, path: str, sourced_id: str) -> dict[str, str]:
        return {"href": f"{base}/{path}/{sourced_id}", "sourcedId": sourced_id, "type": kind}
    stamp = {"status": "active", "dateLastModified": "2026-11-01T08:00:00.000Z"}
    return {
        "orgs": [{"sourcedId": "district-1", **stamp, "name": "Lakeside", "type": "district",
                  "identifier": "L1"},
                 {"sourcedId": "sch-1", **stamp, "name": "Lakeside High", "type": "school",
                  "identifier": "LH", "parent": ref("org", "orgs", "district-1")}],
        "academicSessions": [{"sourcedId": "y1", **stamp, "title": "2026-2027", "type": "schoolYear",
                              "startDate": "2026-08-15", "endDate": "2027-06-15",
                              "schoolYear": "2027"}],
        "courses": [{"sourcedId": "c1", **stamp, "title": "Algebra", "courseCode": "ALG",
                     "org": ref("org", "orgs", "sch-1"),
                     "schoolYear": ref("academicSession", "academicSessions", "y1")}],
        "classes": [{"sourcedId": "k1", **stamp, "title": "Algebra 1", "classType": "scheduled",
                     "course": ref("course", "courses", "c1"), "school": ref("org", "orgs", "sch-1"),
                     "terms": [ref("academicSession", "academicSessions", "y1")]}],
        "users": [{"sourcedId": "t1", **stamp, "enabledUser": True, "username": "ada",
                   "givenName": "Ada", "familyName": "Lovelace", "metadata": {"room": "12"},
                   "roles": [{"roleType": "primary", "role": "teacher",
                              "org": ref("org", "orgs", "sch-1")}]},
                  {"sourcedId": "s1", **stamp, "enabledUser": "true", "username": "alan",
                   "givenName": "Alan", "familyName": "Turing", "grades": ["09"],
                   "roles": [{"roleType": "primary", "role": "student",
                              "org": ref("org", "orgs", "sch-1")}]}],
        "enrollments": [{"sourcedId": "e1", **stamp, "role": "teacher", "primary": "true",
                         "user": ref("user", "users", "t1"), "class": ref("class", "classes", "k1"),
                         "school": ref("org", "orgs", "sch-1")},
                        {"sourcedId": "e2", **stamp, "role": "student",
                         "user": ref("user", "users", "s1"), "class": ref("class", "classes", "k1"),
                         "school": ref("org", "orgs", "sch-1")}],
    }


def test_a_sis_that_refuses_demographics_is_pulled_without_them(runner, database, stub):
    url = f"{stub.base}{ROSTERING}"
    records = sis_records(url)

    def answer(request):
        if request.path == "/oauth/token":
            return token_answer(request)
        collection = request.path.rsplit("/", 1)[1]
        if collection == "demographics":
            return Answer(403, {"imsx_codeMajor": "failure", "imsx_severity": "error",
                                "imsx_description": "not in this client's contract"})
        return Answer(200, {collection: records[collection]},
                      headers={"X-Total-Count": str(len(records[collection]))})
    stub.routes["answer"] = answer
    source = add_source(runner, url, {"client_id": "c", "client_secret": "s"})
    result = invoke(runner, "sources", "run", str(source))
    assert result.exit_code == 0, result.output
    assert "  note: demographics were not pulled: the source refused them (403)\n" in result.output
    assert "  users.csv            bulk   +2 ~0 =0 -0\n" in result.output
    with database.session_scope() as session:
        users = {u.sourced_id: u for u in session.execute(select(User)).scalars()}
    assert users["t1"].extension_metadata == {"room": "12"}
    assert (users["t1"].enabled_user, users["s1"].enabled_user, users["s1"].grades) == (
        True, True, ["09"])


def test_a_sis_without_a_district_org_creates_the_district_named_on_add(runner, database, stub):
    url = f"{stub.base}{ROSTERING}"
    records = sis_records(url)
    records["orgs"] = [{**records["orgs"][1], "parent": None}]  # the school alone
    records["demographics"] = []
    stub.routes["answer"] = lambda r: token_answer(r) if r.path == "/oauth/token" else Answer(
        200, {(c := r.path.rsplit("/", 1)[1]): records[c]},
        headers={"X-Total-Count": str(len(records[c]))})
    source = add_source(runner, url, {"client_id": "c", "client_secret": "s"},
                        "--district-name", "Lakeside Schools")
    result = invoke(runner, "sources", "run", str(source))
    assert result.exit_code == 0, result.output
    with database.session_scope() as session:
        district = session.execute(select(District)).scalar_one()
    assert (district.sourced_id, district.name) == ("district-1", "Lakeside Schools")


def test_run_due_pulls_only_the_sources_that_are_due(runner, remote):
    pulled = add_source(runner, remote.url, remote.credentials(), "--every", "1d")
    assert invoke(runner, "sources", "run", str(pulled)).exit_code == 0
    nowhere = f"http://127.0.0.1:{free_port()}{ROSTERING}"
    never = add_source(runner, nowhere, {"client_id": "c", "client_secret": "s"}, "--every", "6h")

    due = invoke(runner, "sources", "run", "--due", "--json")
    assert due.exit_code == 1  # the one due failed
    assert [(o["source"], o["outcome"]) for o in json.loads(due.stdout)] == [(never, "failed")]
    again = invoke(runner, "sources", "run", "--due")
    assert (again.exit_code, again.output) == (0, "no source is due\n")

    listed = {s["id"]: s for s in json.loads(invoke(runner, "sources", "list", "--json").stdout)}
    for source_id, hours in ((pulled, 24), (never, 6)):
        started = dt.datetime.fromisoformat(listed[source_id]["last_started_at"].rstrip("Z"))
        due_at = dt.datetime.fromisoformat(listed[source_id]["next_due_at"].rstrip("Z"))
        assert due_at - started == dt.timedelta(hours=hours)
    assert listed[pulled]["last_outcome"] == "applied"


def test_the_secret_is_kept_encrypted_and_never_shown(runner, database):
    secret = "correct-horse-battery-staple"
    added = invoke(runner, "sources", "add", "--district", "district-9", "--district-name",
                   "Ninth District", "--oneroster-url",
                   "https://sis.example/ims/oneroster/rostering/v1p2", "--client-id", "cid",
                   "--every", "6h", env={"GATEWAY_SIS_CLIENT_SECRET": secret})
    assert added.exit_code == 0, added.output
    assert added.output == (
        "source 1: district-9 from https://sis.example/ims/oneroster/rostering/v1p2 every 6h "
        "(token URL https://sis.example/oauth/token)\n"
        "its first pull is due now: `gateway sources run 1`, or the next `gateway sources run --due`\n")
    listed = invoke(runner, "sources", "list")
    as_json = invoke(runner, "sources", "list", "--json")
    assert secret not in listed.output + as_json.output
    assert listed.output.startswith("#1 district-9  https://sis.example/ims/oneroster/rostering/v1p2"
                                    "  every 6h  client_id cid\n    never pulled; next due ")
    assert json.loads(as_json.stdout)[0]["district_name"] == "Ninth District"
    with database.session_scope() as session:
        stored = session.execute(select(SisSource.client_secret_encrypted)).scalar_one()
    assert secret.encode() not in stored

    # Typed at the prompt, unseen.
    prompted = invoke(runner, "sources", "add", "--district", "district-8", "--oneroster-url",
                      "https://sis.example/ims/oneroster/rostering/v1p2", "--client-id", "cid",
                      input=f"{secret}\n")
    assert prompted.exit_code == 0 and secret not in prompted.output

    removed = invoke(runner, "sources", "remove", "1")
    assert removed.output == ("source 1 removed (district-9 from "
                              "https://sis.example/ims/oneroster/rostering/v1p2); the district's data stays\n")
    again = invoke(runner, "sources", "remove", "1")
    assert (again.exit_code, again.output) == (1, "Error: no source 1 (see `gateway sources list`)\n")
    unknown = invoke(runner, "sources", "run", "7")
    assert (unknown.exit_code, unknown.output) == (1, "Error: no source 7 (see `gateway sources list`)\n")


def test_with_a_queue_due_pulls_are_jobs_queued_once_and_run_by_a_worker(
        make_app, database, database_url, remote, redis_url, redis_prefix, tmp_path):
    from workers import WorkerProcess, remove_queues

    queued = make_app(REDIS_URL=redis_url, REDIS_KEY_PREFIX=redis_prefix,
                      SPOOL_DIR=str(tmp_path / "spool"))
    runner = queued.test_cli_runner()
    source = add_source(runner, remote.url, remote.credentials(), "--every", "1d")
    env = dict(os.environ, GATEWAY_DATABASE_URL=database_url, GATEWAY_SECRET_KEY="test-secret-key",
               GATEWAY_REDIS_URL=redis_url, GATEWAY_REDIS_KEY_PREFIX=redis_prefix,
               GATEWAY_INSTANCE_PATH=str(tmp_path / "worker"), GATEWAY_LOG_FORMAT="text")
    try:
        # Queued without a worker yet: the claim moved the source's next pull on, so a second
        # scheduler run (another host's cron) queues nothing.
        first = invoke(runner, "sources", "run", "--due", "--no-wait", "--json")
        assert first.exit_code == 0, first.output
        [job_id] = json.loads(first.stdout)
        assert invoke(runner, "sources", "run", "--due", "--no-wait").output == "no source is due\n"
        worker = WorkerProcess(env, tmp_path / "worker.log", "--burst")
        assert worker.process.wait(timeout=300) == 0, worker.output()
        [job] = json.loads(invoke(runner, "jobs", "--json").stdout)
        assert (job["id"], job["kind"], job["status"]) == (job_id, "sis-pull", "finished")
        assert job["description"] == f"pull SIS source {source}"
        outcome = job["result"]
        assert (outcome["source"], outcome["mode"], outcome["outcome"]) == (source, "bulk",
                                                                            "applied")
        with database.session_scope() as session:
            # district-1 is the only district of this store.
            assert session.execute(select(func.count()).select_from(User)).scalar_one() == (
                outcome["report"]["files"]["users"]["added"]) > 0

        # One source's pull, waited for: a delta, through a worker, printed as in-process.
        worker = WorkerProcess(env, tmp_path / "worker.log")
        second = invoke(runner, "sources", "run", str(source))
        worker.stop()
        assert second.exit_code == 0, second.output + worker.output()
        assert second.output.startswith(f"source {source}: delta pull of district-1 from "
                                        f"{remote.url} changed since ")
    finally:
        remove_queues(redis_url, redis_prefix)
