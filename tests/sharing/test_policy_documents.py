"""Policy documents: the published schema, what a document means, and every way one is refused."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from gateway.sharing.policy import (BASE_FIELDS, PolicyError, load_policy_file, parse_policy,
                                    render_policy_schema)

from sharing_data import MINIMUM_POLICY

SPEC = Path(__file__).resolve().parents[2] / "specs" / "sharing-policy.schema.json"


def problems(document) -> list[str]:
    with pytest.raises(PolicyError) as raised:
        parse_policy(document)
    return raised.value.problems


def test_the_published_schema_is_the_generated_one():
    assert SPEC.read_text(encoding="utf-8") == render_policy_schema()


def test_the_issue_document_is_valid_against_the_published_schema():
    schema = json.loads(SPEC.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert list(Draft202012Validator(schema).iter_errors(MINIMUM_POLICY)) == []


def test_the_issue_document_means_what_it_says():
    policy = parse_policy(MINIMUM_POLICY)
    assert (policy.schools, policy.grades, policy.classes, policy.class_rules) == (
        None, None, None, ())
    assert policy.school_mode
    assert policy.treatment("user", "familyName") == "masked:initial"
    assert policy.treatment("user", "sourcedId") == "pseudonymized"
    assert policy.treatment("user", "givenName") == "shared"
    assert policy.treatment("user", "email") == "withheld"
    assert policy.treatment("demographics", "birthDate") == "withheld"
    assert policy.scopes == ("https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly",)
    assert (policy.contract_start, policy.contract_end) == (dt.date(2026, 8, 1),
                                                            dt.date(2027, 7, 31))
    assert policy.in_contract(dt.date(2026, 8, 1)) and policy.in_contract(dt.date(2027, 7, 31))
    assert not policy.in_contract(dt.date(2026, 7, 31))
    assert not policy.in_contract(dt.date(2027, 8, 1))


def test_lists_restrict_and_star_means_all():
    policy = parse_policy({"schools": ["s1", "s2"], "grades": ["09"], "classes": ["*"],
                           "classRules": [{"subject": "Science", "titleContains": "lab"}]})
    assert policy.schools == {"s1", "s2"} and policy.grades == {"09"} and policy.classes is None
    assert policy.class_rules[0].subject == "Science"
    assert not policy.school_mode


def test_defaults_star_for_every_entity_but_demographics():
    policy = parse_policy({"schools": ["*"]})
    assert policy.fields["class"] >= {"title", "course", "school", "terms"}
    assert "metadata" not in policy.fields["class"]
    assert policy.fields["demographics"] == BASE_FIELDS
    assert not policy.shares_entity("demographics")
    assert policy.scopes is None and policy.contract_start is None


def test_star_excludes_sensitive_fields_which_must_be_named():
    policy = parse_policy({"schools": ["*"], "fields": {"user": ["*", "phone"]}})
    assert "phone" in policy.fields["user"]
    for field in ("email", "sms", "agents", "userProfiles", "metadata"):
        assert field not in policy.fields["user"]
    assert not policy.shares_agents


def test_demographics_star_grants_all_its_fields_but_metadata():
    policy = parse_policy({"schools": ["*"], "fields": {"demographics": ["*"]}})
    assert {"birthDate", "sex", "white"} <= policy.fields["demographics"]
    assert "metadata" not in policy.fields["demographics"]


@pytest.mark.parametrize("document, expected", [
    ({}, ["the document: 'schools' is a required property"]),
    ({"schools": []}, ["schools: [] should be non-empty"]),
    ({"schools": ["*"], "school": ["s1"]},
     ["the document: Additional properties are not allowed ('school' was unexpected)"]),
    ({"schools": ["*"], "mask": {"user.familyName": "hash"}},
     ["mask.user.familyName: 'hash' is not one of ['initial']"]),
    ({"schools": ["*"], "mask": {"user.givenName": "year"}},
     ["mask.user.givenName: 'year' is not one of ['initial']"]),
    ({"schools": ["*"], "classRules": [{}]}, ["classRules[0]: {} should be non-empty"]),
    ({"schools": ["*"], "contract": {"start": "2026-08-01"}},
     ["contract: 'end' is a required property"]),
])
def test_schema_violations_are_located(document, expected):
    assert problems(document) == expected


def test_an_unknown_field_name_is_refused():
    [problem] = problems({"schools": ["*"], "fields": {"user": ["emial"]}})
    assert problem.startswith("fields.user[0]: 'emial' is not one of ['*', 'sourcedId'")


def test_demographics_ids_cannot_be_pseudonymized_apart_from_users():
    [problem] = problems({"schools": ["*"], "pseudonymize": ["demographics.sourcedId"]})
    assert problem.startswith("pseudonymize[0]: 'demographics.sourcedId' is not one of")


def test_rules_the_schema_cannot_express():
    assert problems({
        "schools": ["*"],
        "fields": {"user": ["givenName", "familyName"]},
        "mask": {"user.email": "initial", "user.familyName": "initial"},
        "pseudonymize": ["user.username", "user.familyName"],
        "contract": {"start": "2027-08-01", "end": "2027-07-31"},
    }) == [
        "mask.user.email: the field is masked but not shared; add 'email' to fields.user",
        "pseudonymize: user.username is pseudonymized but not shared; add 'username' to "
        "fields.user",
        "pseudonymize: user.familyName is also masked; choose one",
        "contract: ends (2027-07-31) before it starts (2027-08-01)",
    ]


@pytest.mark.parametrize("text", ["2026-13-01", "2026-8-1", "tomorrow", "2026-02-30"])
def test_contract_dates_must_be_dates(text):
    assert problems({"schools": ["*"], "contract": {"start": text, "end": "2027-07-31"}}) == [
        f"contract.start: {text!r} is not a date (YYYY-MM-DD)"]


def test_the_error_message_lists_every_problem():
    with pytest.raises(PolicyError) as raised:
        parse_policy({"schools": [], "grades": []})
    assert str(raised.value) == ("invalid sharing policy:\n  - grades: [] should be non-empty\n"
                                 "  - schools: [] should be non-empty")


def test_policy_files(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(MINIMUM_POLICY))
    assert load_policy_file(good) == MINIMUM_POLICY
    bad = tmp_path / "bad.json"
    bad.write_text('{"schools": ["*"],\n}')
    with pytest.raises(Exception, match=r"is not JSON: Expecting property name .* at line 2, column 1"):
        load_policy_file(bad)
    with pytest.raises(Exception, match="cannot read policy file"):
        load_policy_file(tmp_path / "missing.json")
