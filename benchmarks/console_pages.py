"""What the web pages cost: server CPU per request of the launchpad, the console's dashboard and
policy form, and the public transparency page, beside /healthz (the cheapest request) measured in
the same run.

    .venv/bin/python benchmarks/console_pages.py [--students 2000] [--requests 50] [--rounds 5]

In process, through Flask's test client, on a SQLite store in benchmarks/out/ (a quickstart demo
district of --students students, made once and kept): signed-in browsers (a student, a district
admin) request each page --requests times per block, pages interleaved block by block over
--rounds rounds; CPU of this process (time.process_time) per request, median over rounds.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import create_app  # noqa: E402
from gateway.cli import cli  # noqa: E402

OUT = ROOT / "benchmarks" / "out" / "console_pages"
PASSWORD = "correct horse battery"


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(app, form_path: str, fields: dict) -> object:
    browser = app.test_client()
    token = csrf_of(browser.get(form_path).get_data(as_text=True))
    response = browser.post(form_path, data={**fields, "csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return browser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    instance = OUT / f"students-{args.students}"
    app = create_app({"INSTANCE_PATH": str(instance), "SECRET_KEY": "bench", "ACCESS_LOG": False,
                      "METRICS": False, "APP_RATE_PER_SECOND": 0})
    runner = app.test_cli_runner()
    if not (instance / "ready").exists():
        result = runner.invoke(cli, ["quickstart", "--no-serve", "--students", str(args.students)])
        assert result.exit_code == 0, result.output
        assert runner.invoke(cli, ["users", "set-password", "--password", PASSWORD,
                                   username(app)]).exit_code == 0
        assert runner.invoke(cli, ["admins", "create", "--district", "district-1", "--email",
                                   "it@district-1.test", "--role", "district_admin"],
                             env={"GATEWAY_ADMIN_PASSWORD": PASSWORD}).exit_code == 0
        (instance / "ready").write_text("")
    student = sign_in(app, "/login", {"username": username(app), "password": PASSWORD})
    admin = sign_in(app, "/admin/login", {"email": "it@district-1.test", "password": PASSWORD})
    anonymous = app.test_client()
    pages = [("/healthz (baseline)", anonymous, "/healthz"),
             ("/portal (launchpad)", student, "/portal"),
             ("/admin/ (dashboard)", admin, "/admin/"),
             ("/admin/apps/1 (policy form)", admin, "/admin/apps/1"),
             ("/districts/district-1/privacy", anonymous, "/districts/district-1/privacy")]
    for _, browser, path in pages:
        assert browser.get(path).status_code == 200, path
    samples: dict[str, list[float]] = {name: [] for name, _, _ in pages}
    for _ in range(args.rounds):
        for name, browser, path in pages:
            started = time.process_time()
            for _ in range(args.requests):
                browser.get(path)
            samples[name].append((time.process_time() - started) / args.requests * 1000)
    baseline = statistics.median(samples[pages[0][0]])
    print(f"{args.students} students, {args.requests} requests x {args.rounds} rounds, "
          "CPU ms per request (median)")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:<34}{median:8.2f} ms   x{median / baseline:6.1f} of /healthz")
    app.extensions["gateway.db"].dispose()


def username(app) -> str:
    from sqlalchemy import select

    from gateway.store.models import User
    with app.extensions["gateway.db"].session_scope() as session:
        return session.execute(select(User.username).where(User.sourced_id == "stu-0001")
                               ).scalar_one()


if __name__ == "__main__":
    main()
