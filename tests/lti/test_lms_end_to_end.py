"""End to end over real HTTP, the gateway as an LTI 1.3 tool: an LMS built on ``lti1p3platform``
launches the gateway, which matches the person and the course to the SIS data and brokers the
launch to an app's pylti1p3 tool; a ``requests`` session with cookies is the browser.

LMS /start -> gateway /lms/login -> LMS /auth -> id_token posted to gateway /lms/launch -> the
app's OIDC login -> gateway /lti/authorize -> id_token posted to the app (which validates it and
reads the NRPS roster).
"""
from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from gateway.store.lms import LmsLink, LmsPerson
from gateway.cli import cli
from gateway.sharing.policy import share_everything_document
from gateway.store.lti import ResourceLink
from gateway.store.sharing import LedgerEntry

from lms_peer import INSTRUCTOR, LEARNER, LmsState, make_lms
from lti_support import forms
from test_end_to_end import click, gateway, register_with_cli, serve, serve_gateway, sign_in
from test_end_to_end import platform, tool_state  # noqa: F401  (the same served gateway and app)

pytestmark = pytest.mark.slow


@pytest.fixture
def lms(platform):
    """The LMS on a real port, knowing Bart (with his SIS id) and Edna (with only her email)."""
    state = LmsState(gateway_url=platform.config["ISSUER"])
    state.people = {
        "bart-lms": {"sub": "lms-bart", "roles": [LEARNER], "name": "Bart S.",
                     "email": "bart@lms.example", "sourcedid": "u2"},
        "edna-lms": {"sub": "lms-edna", "roles": [INSTRUCTOR], "name": "Edna K.",
                     "email": "EDNA@example.edu"},
        "stranger": {"sub": "lms-stranger", "roles": [LEARNER], "name": "Nobody Known",
                     "email": "nobody@lms.example"}}
    state.context = {"id": "lms-course-9", "title": "Biology (LMS)", "sourcedid": "k2"}
    state.link = {"id": "lms-link-1", "title": "Cell quiz"}
    with serve(make_lms(state)) as server:
        state.base_url = f"http://127.0.0.1:{server.server_port}"
        yield state


def gateway_json(platform, *args: str):
    """A ``gateway ... --json`` command's answer (its stdout only: the served gateway's threads
    may log to stderr meanwhile)."""
    result = platform.test_cli_runner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def register_lms(platform, lms: LmsState) -> dict:
    base = lms.base_url
    return gateway_json(platform, "lms", "register", "--district", "d1", "--issuer", base,
                        "--client-id", lms.client_id, "--auth-url", base + "/auth",
                        "--token-url", base + "/token", "--jwks-url", base + "/jwks",
                        "--deployment-id", lms.deployment_id, "--match", "email=email")


def post_form(browser, page: requests.Response) -> requests.Response:
    """What the browser does with an auto-posting page: post its form."""
    [form] = forms(page.text)
    return browser.post(form["action"], data=form["fields"])


def launch_from_lms(browser, lms: LmsState, login_hint: str) -> requests.Response:
    """The LMS starts a launch; the browser follows it to the gateway's answer."""
    answer = browser.get(lms.base_url + f"/start/{login_hint}")
    assert answer.status_code == 200, answer.text
    assert urlsplit(answer.url).path == "/auth"
    return post_form(browser, answer)


def test_lms_launch_is_brokered_to_the_app(platform, lms, tool_state, app_id, database):
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    lms.custom = {"gateway_app": str(app_id)}

    with requests.Session() as browser:
        authorization = launch_from_lms(browser, lms, "bart-lms")
        assert authorization.status_code == 200, authorization.text
        # The gateway's launch went through the app's login back to the gateway as platform.
        assert urlsplit(authorization.url).path == "/lti/authorize"
        launched = post_form(browser, authorization)
        assert launched.status_code == 200, launched.text
        claims = launched.json()
    # The app sees the OneRoster identity and class, not what the LMS said.
    assert claims["sub"] == "u2" and claims["name"] == "Bart Simpson"
    assert claims["email"] != "bart@lms.example"
    assert claims["context"]["id"] == "k2" and claims["context"]["title"] == "Biology 1"
    raw = tool_state.launches[-1]
    assert raw["iss"] == platform.config["ISSUER"]
    assert lms.base_url not in json.dumps(raw)
    assert "lms-bart" not in json.dumps(raw) and "lms-course-9" not in json.dumps(raw)

    roster = requests.get(tool_state.base_url + "/roster",
                          params={"launch_id": claims["launch_id"]}).json()
    assert sorted(m["user_id"] for m in roster) == ["t-krab", "u2", "u3"]

    with database.session_scope() as session:
        person = session.get(LmsPerson, (1, "lms-bart"))
        link = session.execute(select(LmsLink)).scalar_one()
        gateway_link = session.execute(select(ResourceLink)).scalar_one()
        entries = list(session.execute(select(LedgerEntry).where(
            LedgerEntry.channel == "lti", LedgerEntry.endpoint == "launch")).scalars())
    assert (person.user_sourced_id, person.matched_by) == ("u2", "person_sourcedid")
    assert (link.app_id, link.gateway_link_id) == (app_id, gateway_link.link_id)
    assert (gateway_link.class_sourced_id, gateway_link.source, gateway_link.title) == (
        "k2", "lms", "Cell quiz")
    # The brokered launch is in the disclosure ledger, as every platform launch is.
    assert len(entries) == 1 and entries[0].app_id == app_id


@pytest.mark.parametrize("shared", [False, True])
def test_the_app_learns_the_lms_only_if_its_policy_shares_it(platform, lms, tool_state, app_id,
                                                             shared, tmp_path, place):
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({**share_everything_document(), "shareLaunchPlatform": shared}))
    gateway(platform, "apps", "policy", str(app_id), str(policy))
    lms.custom = {"gateway_app": str(app_id)}
    link_id = place(tool_state.client_id, "k2", title="Portal quiz")
    with requests.Session() as browser:
        launched = post_form(browser, launch_from_lms(browser, lms, "bart-lms"))
        assert launched.status_code == 200, launched.text
        custom = tool_state.launches[-1].get(
            "https://purl.imsglobal.org/spec/lti/claim/custom") or {}
        if shared:
            assert custom["gateway_lms_platform"] == lms.base_url
        else:
            assert "gateway_lms_platform" not in custom
            assert lms.base_url not in json.dumps(tool_state.launches[-1])
        # A launch from the portal never names an LMS, whatever the policy (even in the
        # browser that just launched from the LMS, its short session still alive).
        page = sign_in(browser, platform, "bart")
        assert post_form(browser, click(browser, platform, page,
                                        f"/portal/launch/{link_id}")).status_code == 200
    portal_custom = tool_state.launches[-1].get(
        "https://purl.imsglobal.org/spec/lti/claim/custom") or {}
    assert "gateway_lms_platform" not in portal_custom


def test_person_matched_by_an_email_rule_and_remembered(platform, lms, tool_state, app_id,
                                                        database):
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    lms.custom = {"gateway_app": str(app_id)}
    with requests.Session() as browser:
        launched = post_form(browser, launch_from_lms(browser, lms, "edna-lms"))
    assert launched.json()["sub"] == "t-krab"
    with database.session_scope() as session:
        person = session.get(LmsPerson, (1, "lms-edna"))
    assert (person.user_sourced_id, person.matched_by) == ("t-krab", "email")


def test_unmatched_person_gets_a_page_and_is_listed(platform, lms, tool_state, app_id):
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    lms.custom = {"gateway_app": str(app_id)}
    with requests.Session() as browser:
        answer = launch_from_lms(browser, lms, "stranger")
    assert answer.status_code == 403
    assert "no match for you" in answer.text
    assert urlsplit(answer.url).path == "/lms/launch"
    listed = gateway_json(platform, "lms", "unmatched")
    assert [(r["kind"], r["lms_id"], r["label"]) for r in listed] == [
        ("user", "lms-stranger", "Nobody Known nobody@lms.example")]
    assert tool_state.launches == []


def test_teacher_picks_the_app_for_a_new_link(platform, lms, tool_state, app_id, database):
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    with requests.Session() as browser:
        picker = launch_from_lms(browser, lms, "edna-lms")
        assert picker.status_code == 200 and "Choose the app for Biology 1" in picker.text
        [form] = forms(picker.text)
        assert form["fields"]["app"] == str(app_id)
        authorization = browser.post(platform.config["ISSUER"] + form["action"],
                                     data=form["fields"])
        launched = post_form(browser, authorization)
    assert launched.json()["sub"] == "t-krab"
    # The link remembers the app: Bart, a student, launches it straight away.
    with requests.Session() as bart:
        launched = post_form(bart, launch_from_lms(bart, lms, "bart-lms"))
    assert launched.json()["sub"] == "u2"


def lms_deep_link_items(platform, lms: LmsState) -> list[dict]:
    """The content items of the gateway's (one) deep linking response to the LMS, its signature
    checked with the gateway's published keys."""
    import jwt as pyjwt

    [token] = lms.deep_link_responses
    keys = requests.get(platform.config["ISSUER"] + "/.well-known/jwks.json").json()["keys"]
    kid = pyjwt.get_unverified_header(token)["kid"]
    [jwk] = [k for k in keys if k["kid"] == kid]
    claims = pyjwt.decode(token, pyjwt.PyJWK(jwk).key, algorithms=["RS256"],
                          audience=lms.base_url)
    assert claims["iss"] == lms.client_id
    return claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]


def pick_in_lms(platform, lms: LmsState, browser) -> requests.Response:
    """Edna adds content from the LMS and picks the (only) app in the gateway's picker."""
    picker = launch_from_lms(browser, lms, "edna-lms")
    [form] = forms(picker.text)
    answer = browser.post(platform.config["ISSUER"] + form["action"], data=form["fields"])
    assert answer.status_code == 200, answer.text
    return answer


def test_deep_linking_from_the_lms_answers_a_link_back_at_the_gateway(platform, lms, tool_state,
                                                                     app_id):
    # An app with no picker of its own: the gateway's choice is the content.
    base = tool_state.base_url
    out = json.loads(gateway(platform, "tools", "register", "--app", str(app_id), "--name",
                             "pylti1p3 tool", "--login-url", base + "/login", "--redirect-uri",
                             base + "/launch", "--target-link-uri", base + "/launch",
                             "--jwks-url", base + "/jwks", "--json"))
    tool_state.issuer, tool_state.client_id = out["issuer"], out["client_id"]
    tool_state.deployment_ids = [out["deployment_id"]]
    register_lms(platform, lms)
    lms.deep_linking = True
    with requests.Session() as browser:
        done = post_form(browser, pick_in_lms(platform, lms, browser))
    assert done.text == "received"
    [item] = lms_deep_link_items(platform, lms)
    assert item["type"] == "ltiResourceLink"
    assert item["url"] == platform.config["ISSUER"] + "/lms/launch"
    assert item["custom"] == {"gateway_app": str(app_id)}
    assert tool_state.launches == []


def test_deep_linking_chains_to_the_apps_own_picker(platform, lms, tool_state, app_id,
                                                    database):
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    lms.deep_linking = True
    with requests.Session() as browser:
        # The gateway sends Edna on to the app's picker: the app's login, the gateway's
        # authorization (as platform), the deep linking request posted to the app...
        authorization = pick_in_lms(platform, lms, browser)
        assert urlsplit(authorization.url).path == "/lti/authorize"
        app_answer = post_form(browser, authorization)
        # ...whose signed LtiDeepLinkingResponse goes to the gateway's deep linking return...
        [form] = forms(app_answer.text)
        assert form["action"] == platform.config["ISSUER"] + "/lti/deep-linking/return"
        to_lms = post_form(browser, app_answer)
        assert to_lms.status_code == 200, to_lms.text
        # ...which answers the LMS's request.
        done = post_form(browser, to_lms)
    assert done.text == "received"
    request = tool_state.launches[-1]
    assert request["https://purl.imsglobal.org/spec/lti/claim/message_type"] == (
        "LtiDeepLinkingRequest")
    assert request["sub"] == "t-krab"
    [item] = lms_deep_link_items(platform, lms)
    assert item["type"] == "ltiResourceLink" and item["title"] == "Fractions quiz"
    assert item["url"] == platform.config["ISSUER"] + "/lms/launch"
    with database.session_scope() as session:
        chosen = session.execute(select(ResourceLink)).scalar_one()
    assert (chosen.source, chosen.class_sourced_id, chosen.url) == (
        "deep_link", "k2", tool_state.base_url + "/launch")
    assert item["custom"] == {"gateway_app": str(app_id), "gateway_link": chosen.link_id}

    # The LMS launches the item it received: Bart gets the quiz the teacher chose in the app.
    lms.deep_linking, lms.custom = False, item["custom"]
    with requests.Session() as bart:
        launched = post_form(bart, launch_from_lms(bart, lms, "bart-lms"))
    assert launched.status_code == 200, launched.text
    assert launched.json()["sub"] == "u2"
    assert launched.json()["custom"]["quiz"] == "fractions"
    raw = tool_state.launches[-1]
    assert raw["https://purl.imsglobal.org/spec/lti/claim/resource_link"]["id"] == chosen.link_id
    with database.session_scope() as session:
        link = session.execute(select(LmsLink)).scalar_one()
    assert (link.app_id, link.gateway_link_id) == (app_id, chosen.link_id)

    # A second answer for the same request is refused (the platform's request is spent).
    with requests.Session() as replay:
        again = replay.post(form["action"], data=form["fields"])
    assert again.status_code == 400


def test_a_chosen_link_of_another_app_is_refused(platform, lms, tool_state, app_id, database):
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    lms.custom = {"gateway_app": str(app_id), "gateway_link": "not-a-link-of-this-app"}
    with requests.Session() as bart:
        answer = launch_from_lms(bart, lms, "bart-lms")
    assert answer.status_code == 403 and "not available in your district" in answer.text
    assert tool_state.launches == []


def wait_for(condition, seconds: float = 10.0) -> None:
    """Until ``condition()`` holds: the gateway forwards grades after answering the app."""
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the grade never reached the LMS"
        time.sleep(0.05)


def retry(platform, *args: str) -> str:
    result = platform.test_cli_runner().invoke(cli, ["lms", "retry-grades", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def launch_and_score(platform, lms, tool_state, app_id, student: str = "u2") -> None:
    register_with_cli(platform, tool_state, app_id)
    register_lms(platform, lms)
    lms.custom = {"gateway_app": str(app_id)}
    with requests.Session() as browser:
        claims = post_form(browser, launch_from_lms(browser, lms, "bart-lms")).json()
    scored = requests.post(tool_state.base_url + "/score", params={
        "launch_id": claims["launch_id"], "user_id": student, "score": "80", "for_link": "1"})
    assert scored.status_code == 200, scored.text


def test_a_score_the_app_posts_reaches_the_lms_gradebook(platform, lms, tool_state, app_id,
                                                         database):
    launch_and_score(platform, lms, tool_state, app_id)
    wait_for(lambda: lms.scores)
    [score] = lms.scores
    # In the LMS's terms: its line item of the link, its id of the student.
    assert score["lineitem"] == "li-1" and score["userId"] == "lms-bart"
    assert (score["scoreGiven"], score["scoreMaximum"], score["gradingProgress"]) == (
        80.0, 100, "FullyGraded")
    assert score["comment"] == "graded by the pylti1p3 tool"
    listed = gateway_json(platform, "lms", "grades")
    wait_for(lambda: gateway_json(platform, "lms", "grades")[0]["status"] == "sent")
    assert listed[0]["student"] == "u2"
    with database.session_scope() as session:
        entries = list(session.execute(select(LedgerEntry).where(
            LedgerEntry.channel == "lms")).scalars())
    assert [(e.app_id, e.endpoint, e.entity) for e in entries] == [
        (app_id, "grade_forward", "result")]


def test_a_grade_the_lms_refuses_is_retried_and_shown_to_the_admin(platform, lms, tool_state,
                                                                   app_id):
    lms.unavailable = 1
    launch_and_score(platform, lms, tool_state, app_id)
    wait_for(lambda: gateway_json(platform, "lms", "grades", "--failed"))
    [failed] = gateway_json(platform, "lms", "grades", "--failed")
    assert (failed["status"], failed["attempts"]) == ("pending", 1)
    assert failed["last_error"] == "the LMS scores endpoint answered 503"
    assert lms.scores == []
    # Not due yet: the command leaves it for later.
    assert retry(platform) == "0 sent, 0 failed (see `gateway lms grades --failed`)\n"
    # The admin sends it now.
    assert retry(platform, "--id", str(failed["id"])).startswith("1 sent")
    assert [s["userId"] for s in lms.scores] == ["lms-bart"]
    assert gateway_json(platform, "lms", "grades", "--failed") == []


@pytest.fixture
def other_gateway(database_url, tmp_path, district):
    """A second gateway on its own port, playing the LMS whose registration the first answers
    (the gateway's platform role implements LTI Dynamic Registration; pylti1p3's tool is
    tested against it in test_end_to_end.py)."""
    with serve_gateway(database_url, tmp_path / "other", "other-secret") as app:
        yield app


def test_dynamic_registration_started_from_the_lms(platform, other_gateway, app_id):
    invitation = gateway_json(other_gateway, "tools", "invite", "--app", str(app_id), "--url",
                              platform.config["ISSUER"] + "/lms/register?district=d1")
    with requests.Session() as admin:
        page = admin.get(invitation["open"])
    assert page.status_code == 200, page.text
    assert "org.imsglobal.lti.close" in page.text and "gateway lms approve 1" in page.text
    [pending] = gateway_json(platform, "lms", "list")
    lms_issuer = other_gateway.config["ISSUER"]
    assert (pending["issuer"], pending["status"], pending["auth_url"], pending["jwks_url"]) == (
        lms_issuer, "pending", lms_issuer + "/lti/authorize", lms_issuer + "/.well-known/jwks.json")
    assert len(pending["deployment_ids"]) == 1
    # The LMS registered the gateway as one of its tools, with the tool role's URLs.
    [tool] = gateway_json(other_gateway, "tools", "list")
    assert (tool["client_id"], tool["status"]) == (pending["client_id"], "pending")
    assert tool["login_url"] == platform.config["ISSUER"] + "/lms/login"
    assert tool["redirect_uris"] == [platform.config["ISSUER"] + "/lms/launch"]
    # Pending: its logins are refused until an admin approves it.
    login = {"iss": lms_issuer, "login_hint": "x", "client_id": pending["client_id"],
             "target_link_uri": platform.config["ISSUER"] + "/lms/launch"}
    refused = requests.get(platform.config["ISSUER"] + "/lms/login", params=login,
                           allow_redirects=False)
    assert refused.status_code == 400
    assert gateway(platform, "lms", "approve", "1").startswith("LMS 1 (" + lms_issuer)
    accepted = requests.get(platform.config["ISSUER"] + "/lms/login", params=login,
                            allow_redirects=False)
    assert accepted.status_code == 302
    assert accepted.headers["Location"].startswith(lms_issuer + "/lti/authorize?")


def test_registration_from_a_configuration_outside_its_issuer_is_refused(platform, lms):
    # lti1p3platform's LMS serves no OpenID configuration: a JWKS is not one.
    answer = requests.get(platform.config["ISSUER"] + "/lms/register", params={
        "district": "d1", "openid_configuration": lms.base_url + "/jwks"})
    assert answer.status_code == 400
    assert "not under its issuer" in answer.text
    assert gateway_json(platform, "lms", "list") == []


def test_a_grade_for_a_student_who_never_launched_from_the_lms_waits_for_the_admin(
        platform, lms, tool_state, app_id):
    # Milhouse is in the class but the LMS has never launched him: his LMS id is unknown.
    launch_and_score(platform, lms, tool_state, app_id, student="u3")
    [waiting] = gateway_json(platform, "lms", "grades", "--failed")
    assert (waiting["student"], waiting["status"], waiting["last_error"]) == (
        "u3", "failed", "the student has never launched from this LMS")
    assert "userId" not in waiting["score"] and lms.scores == []
    result = platform.test_cli_runner().invoke(cli, ["lms", "retry-grades", "--id",
                                                     str(waiting["id"])])
    assert result.exit_code == 1 and "still never launched" in result.output
    # Once Milhouse launches from the LMS, the admin sends his grade.
    lms.people["milhouse-lms"] = {"sub": "lms-milhouse", "roles": [LEARNER], "name": "M",
                                  "sourcedid": "u3"}
    with requests.Session() as browser:
        assert post_form(browser, launch_from_lms(browser, lms, "milhouse-lms")).status_code == 200
    assert retry(platform, "--id", str(waiting["id"])).startswith("1 sent")
    assert [(s["userId"], s["scoreGiven"]) for s in lms.scores] == [("lms-milhouse", 80.0)]
