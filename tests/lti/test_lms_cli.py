"""``gateway lms``: registering LMS platforms, listing, removing, what to paste into the LMS."""
from __future__ import annotations

import json

import pytest

from gateway.cli import cli

LMS = "https://canvas.example"


def lms(runner, *args: str, code: int = 0):
    result = runner.invoke(cli, ["lms", *args])
    assert result.exit_code == code, result.output
    return result.output


def register(runner, *extra: str, client_id: str = "c-1", deployment: str = "dep-1", code=0):
    return lms(runner, "register", "--district", "d1", "--issuer", LMS, "--client-id", client_id,
               "--auth-url", LMS + "/api/lti/authorize_redirect", "--token-url",
               LMS + "/login/oauth2/token", "--jwks-url", LMS + "/api/lti/security/jwks",
               "--deployment-id", deployment, *extra, code=code)


def test_register_list_and_add_a_deployment(runner, district):
    shown = json.loads(register(runner, "--match", "email", "--match", "sourcedId=custom.sis_id",
                                "--class-claim", "custom.section", "--json"))
    assert shown == {
        "id": 1, "name": LMS, "district": "d1", "issuer": LMS, "client_id": "c-1",
        "auth_url": LMS + "/api/lti/authorize_redirect", "token_url": LMS + "/login/oauth2/token",
        "jwks_url": LMS + "/api/lti/security/jwks",
        "match_rules": [{"field": "email", "claim": "email"},
                        {"field": "sourcedId", "claim": "custom.sis_id"}],
        "class_claim": "custom.section", "status": "approved", "deployment_ids": ["dep-1"]}
    # The same issuer and client again: one more deployment, not a second LMS.
    register(runner, deployment="dep-2")
    # One issuer, another client_id (a hosted Canvas): a second registration.
    register(runner, client_id="c-2")
    listed = json.loads(lms(runner, "list", "--json"))
    assert [(p["id"], p["client_id"], p["deployment_ids"]) for p in listed] == [
        (1, "c-1", ["dep-1", "dep-2"]), (2, "c-2", ["dep-1"])]
    assert "canvas.example  client c-1  deployments dep-1,dep-2  approved" in lms(runner, "list")


def test_bad_rule_and_unknown_district_are_refused(runner, district):
    assert "a rule is FIELD=CLAIM" in register(runner, "--match", "phone=custom.x", code=1)
    result = runner.invoke(cli, ["lms", "register", "--district", "nowhere", "--issuer", LMS,
                                 "--client-id", "x", "--auth-url", LMS + "/a", "--token-url",
                                 LMS + "/t", "--jwks-url", LMS + "/j", "--deployment-id", "d"])
    assert result.exit_code == 1 and "no district 'nowhere'" in result.output


def test_plain_http_urls_are_refused_except_to_localhost(runner, district):
    result = runner.invoke(cli, ["lms", "register", "--district", "d1", "--issuer", LMS,
                                 "--client-id", "x", "--auth-url", "http://canvas.example/a",
                                 "--token-url", LMS + "/t", "--jwks-url", LMS + "/j",
                                 "--deployment-id", "d"])
    assert result.exit_code == 1 and "must use https" in result.output


def test_remove(runner, district):
    register(runner)
    assert lms(runner, "remove", "1") == "LMS 1 removed\n"
    assert json.loads(lms(runner, "list", "--json")) == []
    assert "no LMS platform 1" in lms(runner, "remove", "1", code=1)


def test_config_prints_what_to_paste_into_the_lms(runner):
    shown = json.loads(lms(runner, "config", "--json"))
    assert shown["login_initiation_url"] == "http://gateway.test/lms/login"
    assert shown["redirect_uris"] == ["http://gateway.test/lms/launch"]
    assert shown["target_link_uri"] == "http://gateway.test/lms/launch"
    assert shown["jwks_url"] == "http://gateway.test/.well-known/jwks.json"
    assert [p["message_type"] for p in shown["placements"]] == ["LtiResourceLinkRequest",
                                                                "LtiDeepLinkingRequest"]
    text = lms(runner, "config")
    assert "login_initiation_url:   http://gateway.test/lms/login" in text


@pytest.mark.parametrize("args, message", [
    (["map-class", "--platform", "1", "--context", "x", "--class", "nope"], "no active class 'nope'"),
    (["map-user", "--platform", "1", "--lms-user", "x", "--user", "nope"], "no user 'nope'"),
    (["map-class", "--platform", "9", "--context", "x", "--class", "k1"], "no LMS platform 9"),
])
def test_mapping_refuses_what_does_not_exist(runner, district, args, message):
    register(runner)
    assert message in lms(runner, *args, code=1)
