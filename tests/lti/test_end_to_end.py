"""End to end over real HTTP: the gateway and an independent pylti1p3 tool, each served on a
localhost port, and a cookie-keeping ``requests`` session as the browser.

portal sign-in -> launch link -> the tool's OIDC login -> the platform's authorization endpoint
-> id_token posted to the tool (which validates it against the platform's JWKS) -> the tool
fetches the NRPS roster and posts a score with its own client assertions -> the score is a result
in the class's gradebook. Also: deep linking answered by pylti1p3, and the tool registering
itself through LTI Dynamic Registration.
"""
from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from gateway import create_app
from gateway.cli import cli
from gateway.store.lti import LineItem, ResourceLink, Result

from lti_support import PASSWORD, forms
from pylti_tool import ToolState, make_tool

pytestmark = pytest.mark.slow


@contextmanager
def serve(app):
    """Serve a WSGI app on a free localhost port in a thread; yields the server."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve_gateway(database_url: str, instance: Path, secret: str):
    """A gateway app over the test database on a real port, its issuer that address."""
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": secret,
                      "INSTANCE_PATH": str(instance), "ISSUER": "http://127.0.0.1"})
    with serve(app) as server:
        app.config["ISSUER"] = f"http://127.0.0.1:{server.server_port}"
        yield app
    app.extensions["gateway.db"].dispose()


@pytest.fixture
def platform(database_url, tmp_path, district, passwords, app_id):
    """The gateway on a real port (its own app over the test database)."""
    with serve_gateway(database_url, tmp_path / "platform", "e2e-secret") as app:
        yield app


@pytest.fixture
def tool_state():
    """The pylti1p3 tool on a real port."""
    state = ToolState()
    with serve(make_tool(state)) as server:
        state.base_url = f"http://127.0.0.1:{server.server_port}"
        yield state


@pytest.fixture
def browser():
    with requests.Session() as session:
        yield session


def gateway(platform, *args: str) -> str:
    """Run a ``gateway`` command against the served platform; its output."""
    result = platform.test_cli_runner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def register_with_cli(platform, tool_state, app_id) -> None:
    base = tool_state.base_url
    out = json.loads(gateway(platform, "tools", "register", "--app", str(app_id), "--name",
                             "pylti1p3 tool", "--login-url", base + "/login", "--redirect-uri",
                             base + "/launch", "--target-link-uri", base + "/launch",
                             "--deep-linking-uri", base + "/launch", "--jwks-url", base + "/jwks",
                             "--custom", "who=$User.id", "--json"))
    tool_state.issuer = out["issuer"]
    tool_state.client_id = out["client_id"]
    tool_state.deployment_ids = [out["deployment_id"]]


def sign_in(browser, platform, username: str) -> str:
    issuer = platform.config["ISSUER"]
    page = browser.get(issuer + "/login").text
    [form] = forms(page)
    response = browser.post(issuer + "/login", data={**form["fields"], "username": username,
                                                     "password": PASSWORD})
    assert response.status_code == 200 and response.url == issuer + "/portal", response.text
    return response.text


def click(browser, platform, page: str, action_prefix: str, **match: str) -> requests.Response:
    """Submit the portal form whose action starts with ``action_prefix``; follows redirects
    (platform -> tool login -> platform authorization) to the auto-post page."""
    candidates = [f for f in forms(page) if f["action"].startswith(action_prefix)
                  and all(f["fields"].get(k) == v for k, v in match.items())]
    assert candidates, page
    response = browser.post(platform.config["ISSUER"] + candidates[0]["action"],
                            data=candidates[0]["fields"])
    assert response.status_code == 200, response.text
    return response


def auto_post(browser, page: requests.Response) -> requests.Response:
    """What the browser does with an auto-posting page: post its form."""
    [form] = forms(page.text)
    return browser.post(form["action"], data=form["fields"])


def test_launch_roster_and_grade_passback_with_pylti1p3(platform, tool_state, browser, app_id,
                                                         database, place):
    register_with_cli(platform, tool_state, app_id)
    link_id = place(tool_state.client_id, "k2", title="Cell quiz")

    portal = sign_in(browser, platform, "bart")
    assert "Cell quiz" in portal
    authorization = click(browser, platform, portal, f"/portal/launch/{link_id}")
    # The redirects went through the tool's login and back to the platform.
    hops = [urlsplit(r.url).path for r in authorization.history]
    assert hops == [f"/portal/launch/{link_id}", "/login"]
    assert urlsplit(authorization.url).path == "/lti/authorize"

    launched = auto_post(browser, authorization)
    assert launched.status_code == 200, launched.text
    launch = launched.json()
    assert launch["sub"] == "u2" and launch["name"] == "Bart Simpson"
    assert launch["roles"] == ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
                               "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"]
    assert launch["context"]["id"] == "k2" and launch["custom"] == {"who": "u2"}

    # The same id_token posted again is refused by the tool (its nonce is spent).
    assert auto_post(browser, authorization).status_code == 400

    roster = browser.get(tool_state.base_url + "/roster",
                         params={"launch_id": launch["launch_id"]}).json()
    assert [(m["user_id"], m["roles"]) for m in roster] == [
        ("u2", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]),
        ("u3", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"]),
        ("t-krab", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"])]

    scored = browser.post(tool_state.base_url + "/score",
                          params={"launch_id": launch["launch_id"], "user_id": "u3", "score": "80"})
    assert scored.status_code == 200, scored.text
    body = scored.json()
    assert body["results"] == [{
        "id": body["results"][0]["id"], "scoreOf": body["lineitem"], "userId": "u3",
        "resultScore": 40.0, "resultMaximum": 50.0, "comment": "graded by the pylti1p3 tool"}]

    # The score is a result in the class's gradebook.
    with database.session_scope() as session:
        item = session.execute(select(LineItem)).scalar_one()
        result = session.execute(select(Result)).scalar_one()
    assert (item.class_sourced_id, item.title, item.tag, item.result_value_max) == (
        "k2", "Quiz", "quiz", 50.0)
    assert (result.student_sourced_id, result.class_sourced_id, result.score,
            result.score_status, result.line_item_id) == ("u3", "k2", 40.0, "fully graded", item.id)


def test_deep_linking_with_pylti1p3(platform, tool_state, browser, app_id, database):
    register_with_cli(platform, tool_state, app_id)

    portal = sign_in(browser, platform, "krabappel")
    authorization = click(browser, platform, portal, "/portal/deep-linking", **{"class": "k3"})
    answer = auto_post(browser, authorization)
    # The tool answered with its own auto-posting form back to the platform.
    assert answer.status_code == 200 and "lti13_deep_link_auto_submit" in answer.text
    done = auto_post(browser, answer)
    assert done.status_code == 200, done.text
    assert "Fractions quiz" in done.text and "Added to the class" in done.text

    with database.session_scope() as session:
        link = session.execute(select(ResourceLink)).scalar_one()
        item = session.execute(select(LineItem)).scalar_one()
    assert (link.class_sourced_id, link.source, link.created_by, link.custom) == (
        "k3", "deep_link", "t-krab", {"quiz": "fractions"})
    assert (item.resource_link_id, item.result_value_max, item.tag) == (link.link_id, 20.0, "dl-quiz")

    # Martin, a student of the class, launches the new item.
    with requests.Session() as martin:
        portal = sign_in(martin, platform, "martin")
        launched = auto_post(martin, click(martin, platform, portal, f"/portal/launch/{link.link_id}"))
        assert launched.json()["custom"] == {"quiz": "fractions", "who": "u4"}


def test_dynamic_registration_with_pylti1p3(platform, tool_state, browser, app_id, place):
    invitation = json.loads(gateway(platform, "tools", "invite", "--app", str(app_id), "--url",
                                    tool_state.base_url + "/register", "--json"))
    # The admin opens the tool's registration page; the tool registers itself.
    page = browser.get(invitation["open"])
    assert page.status_code == 200 and "org.imsglobal.lti.close" in page.text
    assert tool_state.client_id and tool_state.issuer == platform.config["ISSUER"]

    listed = json.loads(gateway(platform, "tools", "list", "--json"))
    assert [(t["client_id"], t["status"], t["name"]) for t in listed] == [
        (tool_state.client_id, "pending", "Self-registered pylti1p3 tool")]
    link_id = place(tool_state.client_id, "k1", title="Self-registered")
    portal = sign_in(browser, platform, "lisa")
    assert "Self-registered" not in portal

    gateway(platform, "tools", "approve", tool_state.client_id)
    portal = browser.get(platform.config["ISSUER"] + "/portal").text
    launched = auto_post(browser, click(browser, platform, portal, f"/portal/launch/{link_id}"))
    assert launched.status_code == 200, launched.text
    launch = launched.json()
    assert launch["sub"] == "u1"
    roster = browser.get(tool_state.base_url + "/roster",
                         params={"launch_id": launch["launch_id"]}).json()
    assert [m["user_id"] for m in roster] == ["u1", "t-hoover"]
    assert re.fullmatch(r"[0-9a-f]{32}", tool_state.client_id)
