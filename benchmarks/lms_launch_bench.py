"""LMS launch benchmark: brokered launches per second, from the LMS's login initiation to the
app's id_token, with a share-everything and a restrictive policy, and the CPU each costs beside
the platform launch the portal starts (the baseline, measured in the same run).

    .venv/bin/python benchmarks/lms_launch_bench.py [--launches 200]
                                                    [--backend sqlite|postgresql|both]

In-process behind Flask's test client (no sockets), the district and app of ``lti_bench.py``
(a 30-student class), an LMS registered for the district whose id_token the script signs:

  brokered  GET /lms/login (pylti1p3 login, state kept in the store) -> the LMS signs the
            id_token (timed apart and left out of the gateway's CPU) -> POST /lms/launch (the
            gateway's checks, single-use state and nonce, pylti1p3's validation, person and class
            matched, the gateway's resource link, a portal session, the signed message hint)
            -> GET /lti/authorize (the platform launch: claims by policy, ledger entry, id_token)
  baseline  the portal's launch of the same link: POST /portal/launch -> GET /lti/authorize

CPU is this process's (``time.process_time``): the gateway, SQLite and the test client.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

from benchdb import DEFAULT_PG, reset_database  # noqa: E402
from gateway import create_app  # noqa: E402
from gateway.lti.keys import public_jwk  # noqa: E402
from gateway.lti.tool import registry  # noqa: E402
from gateway.store.models import utcnow  # noqa: E402
from lti_bench import ISSUER, bench_launches, setup, use_policy  # noqa: E402

LMS = "https://lms.bench"
CLIENT = "gateway-in-lms"
DEPLOYMENT = "lms-dep"
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"


def lms_key() -> tuple[RSAKey, dict]:
    """The LMS's signing key and its JWK Set."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = public_jwk(private)
    return RSAKey.import_key(private, {"kid": jwk["kid"]}), {"keys": [jwk]}


def register_lms(app, jwks: dict) -> None:
    with app.extensions["gateway.db"].session_scope() as session:
        registry.register_platform(session, district="d1", issuer=LMS, client_id=CLIENT,
                                   auth_url=LMS + "/auth", token_url=LMS + "/token",
                                   jwks_url=LMS + "/jwks", deployment_ids=[DEPLOYMENT],
                                   now=utcnow())
    app.extensions["gateway.lti"].tool_keys.fetch = lambda url: jwks


def bench_brokered(app, world, key: RSAKey, count: int) -> tuple[list[float], float]:
    """Seconds per brokered launch, and the CPU seconds the LMS's signing took in all."""
    client = app.test_client()
    times, signing = [], 0.0
    for n in range(count):
        start = time.perf_counter()
        login = client.get("/lms/login", query_string={
            "iss": LMS, "login_hint": "s0001", "target_link_uri": ISSUER + "/lms/launch",
            "client_id": CLIENT, "lti_deployment_id": DEPLOYMENT})
        assert login.status_code == 302, login.get_data(as_text=True)
        asked = {k: v[0] for k, v in parse_qs(urlsplit(login.headers["Location"]).query).items()}
        signed_at = time.process_time()
        now = int(time.time())
        token = jwt.encode({"alg": "RS256", "kid": key.kid}, {
            "iss": LMS, "aud": CLIENT, "sub": "lms-s0001", "iat": now, "exp": now + 300,
            "nonce": asked["nonce"], CLAIM + "message_type": "LtiResourceLinkRequest",
            CLAIM + "version": "1.3.0", CLAIM + "deployment_id": DEPLOYMENT,
            CLAIM + "target_link_uri": ISSUER + "/lms/launch",
            CLAIM + "resource_link": {"id": "rl-bench", "title": "Quiz"},
            CLAIM + "roles": ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            CLAIM + "context": {"id": "lms-course", "title": "Algebra"},
            CLAIM + "lis": {"person_sourcedid": "s0001", "course_section_sourcedid": "small"},
            CLAIM + "custom": {"gateway_app": str(world["app_id"])}}, key, algorithms=["RS256"])
        signing += time.process_time() - signed_at
        launched = client.post("/lms/launch", data={"id_token": token, "state": asked["state"]})
        assert launched.status_code == 303, launched.get_data(as_text=True)
        app_login = {k: v[0] for k, v in
                     parse_qs(urlsplit(launched.headers["Location"]).query).items()}
        answer = client.get("/lti/authorize", query_string={
            "scope": "openid", "response_type": "id_token", "response_mode": "form_post",
            "prompt": "none", "client_id": app_login["client_id"],
            "redirect_uri": "https://tool.bench/launch", "login_hint": app_login["login_hint"],
            "lti_message_hint": app_login["lti_message_hint"],
            "nonce": f"app-nonce-{n}-{time.time_ns()}", "state": "s"})
        assert answer.status_code == 200 and 'name="id_token"' in answer.get_data(as_text=True)
        times.append(time.perf_counter() - start)
    return times, signing


def report(label: str, times: list[float], cpu: float) -> None:
    total = sum(times)
    p50 = statistics.median(times) * 1000
    print(f"  {label:<30} {len(times) / total:>8,.0f} launches/s   p50 {p50:7.2f} ms   "
          f"CPU {cpu / len(times) * 1000:6.2f} ms/launch", flush=True)


def run(backend: str, args: argparse.Namespace) -> None:
    print(f"[{backend}]", flush=True)
    url = reset_database(backend, args.workdir, args.postgresql_url, "lms_launch_bench")
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-secret", "ISSUER": ISSUER,
                      "INSTANCE_PATH": str(args.workdir / "lms_instance")})
    try:
        world = setup(app)
        key, jwks = lms_key()
        register_lms(app, jwks)
        for restrictive in (False, True):
            label = "restrictive" if restrictive else "share-everything"
            use_policy(app, world, restrictive)
            bench_launches(app, world, 5)
            bench_brokered(app, world, key, 5)  # warm-up
            cpu = time.process_time()
            times = bench_launches(app, world, args.launches)
            report(f"portal launch ({label})", times, time.process_time() - cpu)
            cpu = time.process_time()
            times, signing = bench_brokered(app, world, key, args.launches)
            report(f"LMS brokered ({label})", times, time.process_time() - cpu - signing)
    finally:
        app.extensions["gateway.db"].dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out")
    parser.add_argument("--postgresql-url", default=DEFAULT_PG)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    backends = {"both": ("sqlite", "postgresql")}.get(args.backend, (args.backend,))
    for backend in backends:
        run(backend, args)
    print(f"({dt.datetime.now().isoformat(timespec='seconds')}, Python {sys.version.split()[0]}; "
          "brokered CPU leaves out the LMS's own signing)")


if __name__ == "__main__":
    main()
