"""LTI platform benchmark: full launches per second, and NRPS members per second for a 30-student
class and a 2,000-member context, each without and with a restrictive sharing policy.

    .venv/bin/python benchmarks/lti_bench.py [--launches 300] [--requests 200]
                                             [--backend sqlite|postgresql|both]

The gateway runs in-process behind Flask's test client (no sockets: what is measured is the
platform's own work, one transaction per request, as in production):

  launch   portal link (POST /portal/launch/<link>: checks, signed message hint) -> the tool's
           authentication request (GET /lti/authorize: every check, single-use hint and nonce,
           claims, ledger entry, RS256 id_token) -> the auto-post page is parsed for the id_token;
  nrps     GET the memberships URL with a service token, following ``Link: rel="next"`` pages of
           1,000 members, until the whole context has been read.

Both runs go through the production path (the app's policy, every launch and roster page
written to the disclosure ledger): "open" is a policy sharing the whole district
(:func:`~gateway.sharing.policy.share_everything_document`), "restrictive" one that shares given
and family names only, masks family names to an initial and pseudonymizes user ids.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from gateway import create_app  # noqa: E402
from gateway.lti.platform import registration  # noqa: E402
from gateway.lti.keys import public_jwk  # noqa: E402
from gateway.lti.platform.portal import set_password  # noqa: E402
from gateway.oauth import service  # noqa: E402
from gateway.oneroster.csv import binding  # noqa: E402
from gateway.oneroster.csv.importer import ImportOptions, import_bundle  # noqa: E402
from gateway.store import Database  # noqa: E402
from benchdb import DEFAULT_PG, reset_database  # noqa: E402
from gateway.store.models import utcnow  # noqa: E402

NAME = "lti_bench"
ISSUER = "http://bench.test"
PASSWORD = "benchmark-password"
BIG = 2000
SMALL = 30
RESTRICTIVE_POLICY = {
    "schools": ["*"], "fields": {"user": ["givenName", "familyName"], "demographics": []},
    "mask": {"user.familyName": "initial"}, "pseudonymize": ["user.sourcedId"],
}


def write_bundle(directory: Path) -> Path:
    """A district with a 30-student class and a 2,000-member class (1,999 students, a teacher)."""
    directory.mkdir(parents=True, exist_ok=True)
    students = [f"s{n:04d}" for n in range(1, BIG)]
    rows = {
        "orgs": [{"sourcedId": "d1", "name": "Bench District", "type": "district"},
                 {"sourcedId": "sch1", "name": "Bench High", "type": "school", "parentSourcedId": "d1"}],
        "academicSessions": [{"sourcedId": "y1", "title": "2026-2027", "type": "schoolYear",
                              "startDate": "2026-08-15", "endDate": "2027-06-15", "schoolYear": "2027"}],
        "courses": [{"sourcedId": "c1", "title": "Algebra", "orgSourcedId": "sch1",
                     "schoolYearSourcedId": "y1"}],
        "classes": [
            {"sourcedId": "small", "title": "Algebra 1", "courseSourcedId": "c1", "classType": "scheduled",
             "schoolSourcedId": "sch1", "termSourcedIds": "y1", "classCode": "ALG1"},
            {"sourcedId": "big", "title": "Algebra lecture", "courseSourcedId": "c1",
             "classType": "scheduled", "schoolSourcedId": "sch1", "termSourcedIds": "y1"}],
        "users": [{"sourcedId": "t1", "enabledUser": "true", "username": "teacher", "givenName": "Ada",
                   "familyName": "Lovelace", "email": "ada@bench.test"}]
        + [{"sourcedId": s, "enabledUser": "true", "username": s, "givenName": f"Student{s[1:]}",
            "familyName": "Example", "email": f"{s}@bench.test"} for s in students],
        "roles": [{"sourcedId": f"r-{u}", "userSourcedId": u, "roleType": "primary",
                   "role": "teacher" if u == "t1" else "student", "orgSourcedId": "sch1"}
                  for u in ["t1", *students]],
        "enrollments": (
            [{"sourcedId": f"e-small-{s}", "classSourcedId": "small", "schoolSourcedId": "sch1",
              "userSourcedId": s, "role": "student"} for s in students[:SMALL]]
            + [{"sourcedId": f"e-big-{s}", "classSourcedId": "big", "schoolSourcedId": "sch1",
                "userSourcedId": s, "role": "student"} for s in students]
            + [{"sourcedId": f"e-{c}-t1", "classSourcedId": c, "schoolSourcedId": "sch1",
                "userSourcedId": "t1", "role": "teacher"} for c in ("small", "big")]),
    }
    with open(directory / binding.MANIFEST, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(binding.MANIFEST_HEADER)
        writer.writerows([["manifest.version", "1.0"], ["oneroster.version", "1.2"]])
        for name in binding.ALL_FILE_NAMES:
            writer.writerow([f"file.{name}", "bulk" if name in rows else "absent"])
    for name, records in rows.items():
        header = list(binding.ROSTERING_BY_NAME[name].header)
        with open(directory / f"{name}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows([[record.get(column, "") for column in header] for record in records])
    return directory


def setup(app):
    """Import the district, connect an app with a tool placed in both classes; returns what the
    runs need: the tool's key, ids and links."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    database = app.extensions["gateway.db"]
    with tempfile.TemporaryDirectory() as tmp:
        with database.session_scope() as session:
            report = import_bundle(session, write_bundle(Path(tmp) / "bundle"), ImportOptions(force=True))
            assert report.outcome == "applied", report.problems[:3]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = public_jwk(key)
    with database.session_scope() as session:
        set_password(session, "s0001", PASSWORD)
        app_id = service.register_app(session, name="Bench Tool", district_sourced_id="d1",
                                      scopes=None, now=utcnow()).app_id
        tool = registration.register_tool(
            session, app=app_id, district=None, name="Bench Tool",
            login_url="https://tool.bench/login", redirect_uris=["https://tool.bench/launch"],
            target_link_uri="https://tool.bench/launch", public_jwks={"keys": [jwk]}, now=utcnow())
        link = registration.place_tool(session, client_id=tool.client_id, class_sourced_id="small",
                                       district=None, title="Quiz", now=utcnow()).link_id
        district_id = session.execute(text("SELECT id FROM districts WHERE sourced_id = 'd1'")).scalar()
    if database.dialect == "postgresql":
        # Measure the steady state: autovacuum analyzes freshly imported tables within a minute,
        # and until then the planner takes them for empty (nested loops over the whole district).
        with database.engine.connect() as conn:
            conn.execute(text("ANALYZE users, enrollments, roles, classes"))
            conn.commit()
    return {"app_id": app_id, "district_id": district_id, "tool": tool, "link": link,
            "key": RSAKey.import_key(key, {"kid": jwk["kid"]})}


def use_policy(app, world, restrictive: bool) -> None:
    """Give the tool's app the restrictive policy, or one that shares the whole district."""
    from gateway.sharing.policy import share_everything_document
    from gateway.sharing.service import set_policy

    database = app.extensions["gateway.db"]
    with database.session_scope() as session:
        set_policy(session, app_id=world["app_id"], district_id=world["district_id"],
                   document=RESTRICTIVE_POLICY if restrictive else share_everything_document(),
                   now=utcnow())


def bench_launches(app, world, count: int) -> list[float]:
    """Seconds per full launch (portal link to id_token), ``count`` times."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"username": "s0001", "password": PASSWORD,
                                           "csrf_token": csrf})
    assert response.status_code == 303
    csrf = re.search(r'name="csrf_token" value="([^"]+)"',
                     client.get("/portal").get_data(as_text=True)).group(1)
    times = []
    for n in range(count):
        start = time.perf_counter()
        response = client.post(f"/portal/launch/{world['link']}", data={"csrf_token": csrf})
        login = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}
        answer = client.get("/lti/authorize", query_string={
            "scope": "openid", "response_type": "id_token", "response_mode": "form_post",
            "prompt": "none", "client_id": login["client_id"],
            "redirect_uri": "https://tool.bench/launch", "login_hint": login["login_hint"],
            "lti_message_hint": login["lti_message_hint"], "nonce": f"nonce-{n}-{time.time_ns()}",
            "state": "s"})
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert 'name="id_token"' in answer.get_data(as_text=True)
        times.append(time.perf_counter() - start)
    return times


def service_token(app, world) -> str:
    """A service token for the bench tool (NRPS scope)."""
    from joserfc import jwt

    now = int(time.time())
    client_id = world["tool"].client_id
    assertion = jwt.encode({"alg": "RS256", "kid": world["key"].kid},
                           {"iss": client_id, "sub": client_id, "aud": f"{ISSUER}/lti/token",
                            "iat": now, "exp": now + 60, "jti": f"bench-{time.time_ns()}"},
                           world["key"], algorithms=["RS256"])
    response = app.test_client().post("/lti/token", data={
        "grant_type": "client_credentials", "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "scope": "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


def bench_nrps(app, world, requests: int, context_id: str) -> tuple[list[float], int]:
    """Seconds per whole-context read (all pages), and the members per read."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {service_token(app, world)}"}
    url = f"/lti/deployments/{world['tool'].deployment_id}/contexts/{context_id}/memberships?limit=1000"
    times, members = [], 0
    for _ in range(requests):
        start = time.perf_counter()
        members = 0
        next_url = url
        while next_url:
            response = client.get(next_url, headers=headers)
            assert response.status_code == 200, response.get_json()
            members += len(response.get_json()["members"])
            link = re.fullmatch(r'<([^>]+)>; rel="next"', response.headers.get("Link", ""))
            next_url = link.group(1).removeprefix(ISSUER) if link else None
        times.append(time.perf_counter() - start)
    return times, members


def report(label: str, times: list[float], per: int = 1, unit: str = "launches") -> None:
    total = sum(times)
    p50 = statistics.median(times) * 1000
    p99 = sorted(times)[max(0, int(len(times) * 0.99) - 1)] * 1000
    print(f"  {label:<34} {len(times) * per / total:>10,.0f} {unit}/s   "
          f"p50 {p50:7.2f} ms   p99 {p99:7.2f} ms", flush=True)


def run(backend: str, args: argparse.Namespace) -> None:
    print(f"[{backend}]", flush=True)
    url = reset_database(backend, args.workdir, args.postgresql_url, NAME)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "ISSUER": ISSUER,
                      "INSTANCE_PATH": str(args.workdir / "lti_instance")})
    started = time.perf_counter()
    world = setup(app)
    print(f"  setup (import {BIG} users, tool)   {time.perf_counter() - started:8.1f} s", flush=True)
    try:
        for restrictive in (False, True):
            label = "restrictive" if restrictive else "open"
            use_policy(app, world, restrictive)
            bench_launches(app, world, 5)  # warm-up
            report(f"launch ({label})", bench_launches(app, world, args.launches))
            # The policy pseudonymizes users, not classes: the app knows the classes by their ids.
            times, members = bench_nrps(app, world, args.requests, "small")
            report(f"nrps {members}-member class ({label})", times, members, "members")
            times, members = bench_nrps(app, world, max(1, args.requests // 10), "big")
            report(f"nrps {members}-member context ({label})", times, members, "members")
    finally:
        app.extensions["gateway.db"].dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=300)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, args)
    print(f"({dt.datetime.now().isoformat(timespec='seconds')}, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
