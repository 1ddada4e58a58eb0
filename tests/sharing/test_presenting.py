"""Fields and ids: what ``present`` sends, what ``fields``/``filterable`` allow, what ``resolve_id``
accepts; pseudonyms stable per app, different across apps, consistent in every reference."""
from __future__ import annotations

import copy

from gateway.sharing import PolicyVisibility, Pseudonymizer, parse_policy
from gateway.sharing.policy import BASE_FIELDS

from sharing_data import MINIMUM_POLICY, SECRET

BASE = "http://gateway.test/ims/oneroster/rostering/v1p2"


def ref(kind: str, path: str, sourced_id: str) -> dict:
    return {"href": f"{BASE}/{path}/{sourced_id}", "sourcedId": sourced_id, "type": kind}


LISA = {
    "sourcedId": "u1", "status": "active", "dateLastModified": "2026-11-28T12:00:00.000Z",
    "username": "lisa", "userIds": [{"type": "SIS", "identifier": "1001"}],
    "enabledUser": "true", "givenName": "Lisa", "familyName": "Simpson",
    "roles": [{"roleType": "primary", "role": "student", "org": ref("org", "orgs", "s1"),
               "userProfile": "up1"}],
    "userProfiles": [{"profileId": "up1", "profileType": "lms", "vendorId": "acme",
                      "credentials": [{"type": "password", "username": "lisa"}]}],
    "primaryOrg": ref("org", "orgs", "s1"), "email": "lisa@example.edu", "phone": "555-0100",
    "sms": "555-0101", "agents": [ref("user", "users", "p1")], "grades": ["03"],
    "metadata": {"lunch": "free"}, "pronouns": "she/her",
}
ENROLLMENT = {"sourcedId": "e1", "status": "active", "dateLastModified": "2026-11-28T12:00:00.000Z",
              "user": ref("user", "users", "u1"), "class": ref("class", "classes", "k1"),
              "school": ref("org", "orgs", "s1"), "role": "student"}


def test_the_issue_policy_masks_pseudonymizes_and_withholds(visibility):
    vis = visibility(MINIMUM_POLICY)
    sent = vis.present("user", copy.deepcopy(LISA))

    assert sent["familyName"] == "S."
    assert sent["givenName"] == "Lisa"
    assert sent["sourcedId"] != "u1" and vis.resolve_id("user", sent["sourcedId"]) == "u1"
    # Contact fields, agents, other vendors' profiles and metadata are withheld unless granted.
    for withheld in ("email", "phone", "sms", "agents", "userProfiles", "metadata"):
        assert withheld not in sent
    assert set(sent) == {"sourcedId", "status", "dateLastModified", "username", "userIds",
                         "enabledUser", "givenName", "familyName", "roles", "primaryOrg",
                         "grades", "pronouns"}


def test_present_does_not_touch_its_argument(visibility):
    record = copy.deepcopy(LISA)
    visibility({**MINIMUM_POLICY, "pseudonymize": ["user.sourcedId", "org.sourcedId"]}).present(
        "user", record)
    assert record == LISA


def test_without_a_policy_only_base_fields_exist_and_no_id_resolves(visibility):
    vis = visibility(None)
    assert vis.fields("user") == BASE_FIELDS
    assert vis.filterable("user") == frozenset()
    assert vis.resolve_id("user", "u1") is None
    assert vis.present("user", copy.deepcopy(LISA)) == {}


def test_sensitive_fields_leave_only_when_named(visibility):
    vis = visibility({"schools": ["*"], "fields": {"user": ["*", "email", "agents"]}})
    sent = vis.present("user", copy.deepcopy(LISA))
    assert sent["email"] == "lisa@example.edu"
    assert sent["agents"] == [ref("user", "users", "p1")]
    assert "phone" not in sent and "metadata" not in sent


def test_an_explicit_list_grants_only_those_fields(visibility):
    vis = visibility({"schools": ["*"], "fields": {"user": ["givenName"]}})
    assert vis.fields("user") == {"sourcedId", "status", "dateLastModified", "givenName"}
    assert set(vis.present("user", copy.deepcopy(LISA))) == {
        "sourcedId", "status", "dateLastModified", "givenName"}


def test_entities_not_listed_share_everything_but_sensitive_fields(visibility):
    vis = visibility({"schools": ["*"]})
    assert "metadata" not in vis.fields("class")
    assert {"title", "course", "school", "terms"} <= vis.fields("class")
    assert vis.fields("demographics") == BASE_FIELDS


def test_references_follow_their_types_pseudonyms_href_included(visibility):
    vis = visibility({"schools": ["*"], "pseudonymize": ["user.sourcedId", "class.sourcedId"]})
    sent = vis.present("enrollment", copy.deepcopy(ENROLLMENT))
    user_id = vis.external_id("user", "u1")
    class_id = vis.external_id("class", "k1")
    assert sent["user"] == ref("user", "users", user_id)
    assert sent["class"] == ref("class", "classes", class_id)
    assert sent["school"] == ref("org", "orgs", "s1")   # orgs are not pseudonymized
    assert sent["sourcedId"] == "e1"
    # The same id on the user's own record and in every reference to it.
    assert vis.present("user", copy.deepcopy(LISA))["sourcedId"] == user_id


def test_nested_org_references_and_profile_ids_are_pseudonymized(visibility):
    vis = visibility({"schools": ["*"], "fields": {"user": ["*", "userProfiles", "agents"]},
                      "pseudonymize": ["user.sourcedId", "org.sourcedId"]})
    sent = vis.present("user", copy.deepcopy(LISA))
    org_id = vis.external_id("org", "s1")
    assert sent["roles"][0]["org"] == ref("org", "orgs", org_id)
    assert sent["primaryOrg"] == ref("org", "orgs", org_id)
    assert sent["agents"] == [ref("user", "users", vis.external_id("user", "p1"))]
    profile = sent["roles"][0]["userProfile"]
    assert profile not in ("up1", vis.external_id("user", "up1"))
    assert sent["userProfiles"][0]["profileId"] == profile


def test_demographics_carry_the_users_pseudonym(visibility):
    vis = visibility({"schools": ["*"], "fields": {"demographics": ["*"]},
                      "pseudonymize": ["user.sourcedId"]})
    sent = vis.present("demographics", {"sourcedId": "u1", "status": "active",
                                        "dateLastModified": "2026-11-28T12:00:00.000Z",
                                        "birthDate": "2018-05-09", "sex": "female"})
    assert sent["sourcedId"] == vis.external_id("user", "u1")
    assert vis.resolve_id("demographics", sent["sourcedId"]) == "u1"


def test_masks_initial_and_year(visibility):
    vis = visibility({"schools": ["*"], "fields": {"demographics": ["*"]},
                      "mask": {"user.givenName": "initial", "demographics.birthDate": "year"}})
    assert vis.present("user", {"givenName": "Élodie"})["givenName"] == "É."
    assert vis.present("demographics", {"birthDate": "2018-05-09"}) == {"birthDate": "2018-01-01"}


def test_pseudonymized_contact_and_identifier_fields(visibility):
    vis = visibility({"schools": ["*"], "fields": {"user": ["*", "email"]},
                      "pseudonymize": ["user.email", "user.username", "user.userIds"]})
    sent = vis.present("user", copy.deepcopy(LISA))
    assert sent["email"].endswith("@pseudonym.invalid") and "lisa" not in sent["email"]
    assert sent["username"] != "lisa" and sent["username"]
    assert sent["userIds"][0]["type"] == "SIS"
    assert sent["userIds"][0]["identifier"] != "1001"
    assert sent["sourcedId"] == "u1"


def test_filterable_excludes_transformed_fields_and_pseudonymous_references(visibility):
    vis = visibility({"schools": ["*"], "fields": {"user": ["*", "email"]},
                      "mask": {"user.familyName": "initial"},
                      "pseudonymize": ["user.sourcedId", "org.sourcedId"]})
    filterable = vis.filterable("user")
    assert {"givenName", "email", "status", "dateLastModified", "username"} <= filterable
    for hidden in ("familyName", "sourcedId", "primaryOrg", "roles", "phone", "agents"):
        assert hidden not in filterable
    assert "user" not in vis.filterable("enrollment")
    assert {"class", "role", "sourcedId"} <= vis.filterable("enrollment")


def test_resolve_id_accepts_only_this_apps_pseudonyms_in_the_right_namespace(visibility):
    vis = visibility({"schools": ["*"], "pseudonymize": ["user.sourcedId"]})
    pseudonym = vis.external_id("user", "u1")
    assert vis.resolve_id("user", pseudonym) == "u1"
    assert vis.resolve_id("user", "u1") is None            # the clear id names nothing
    assert vis.resolve_id("class", pseudonym) == pseudonym  # classes keep their ids...
    assert vis.resolve_id("enrollment", pseudonym) == pseudonym
    for garbage in ("", "!!", "a" * 2000, pseudonym[:-1], pseudonym + "A", "x" + pseudonym[1:]):
        assert vis.resolve_id("user", garbage) is None, garbage
    other_app = visibility({"schools": ["*"], "pseudonymize": ["user.sourcedId"]}, app_id=2)
    assert other_app.resolve_id("user", pseudonym) is None


def test_pseudonyms_are_stable_per_app_and_differ_across_apps(visibility):
    policy = {"schools": ["*"], "pseudonymize": ["user.sourcedId", "class.sourcedId"]}
    first, again = visibility(policy), visibility(policy)
    other = visibility(policy, app_id=2)
    assert first.external_id("user", "u1") == again.external_id("user", "u1")
    assert first.external_id("user", "u1") != other.external_id("user", "u1")
    # Same value, other entity: unrelated pseudonyms.
    assert first.external_id("user", "x") != first.external_id("class", "x")


def test_pseudonyms_depend_on_the_gateways_secret(session, small):
    policy = parse_policy({"schools": ["*"], "pseudonymize": ["user.sourcedId"]})

    def build(secret: str) -> PolicyVisibility:
        return PolicyVisibility(policy, session=session, app_id=1, district_id=small,
                                pseudonyms=Pseudonymizer(secret, 1, small), ledger=None)
    assert build(SECRET).external_id("user", "u1") != build("another").external_id("user", "u1")


def test_unknown_fields_and_entities_are_dropped(visibility):
    vis = visibility({"schools": ["*"]})
    assert vis.present("user", {"givenName": "Lisa", "password": "x", "surprise": 1}) == {
        "givenName": "Lisa"}
    assert vis.present("lineItem", {"sourcedId": "x"}) == {}
    assert str(vis.where("lineItem", None)) == "false"
