"""REST records written as a OneRoster 1.2.1 CSV bundle: each REST field in its CSV column,
a user's roles and profiles in files of their own, deltas stamped and dropped parts retired."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gateway.oneroster.csv import binding
from gateway.sis.bundle import COLLECTIONS, BundleWriter, role_sourced_id

BY_NAME = {c.name: c for c in COLLECTIONS}
BASE = "https://sis.example/ims/oneroster/rostering/v1p2"


def ref(kind: str, path: str, sourced_id: str) -> dict[str, str]:
    return {"href": f"{BASE}/{path}/{sourced_id}", "sourcedId": sourced_id, "type": kind}


USER = {
    "sourcedId": "u1", "status": "active", "dateLastModified": "2026-11-28T12:00:00.000Z",
    "metadata": {"house": "Gryffindor", "lunch": True},
    "userMasterIdentifier": "M1", "username": "lisa", "enabledUser": "true",
    "userIds": [{"type": "SIS", "identifier": "1001"}, {"type": "LDAP", "identifier": "ls"}],
    "givenName": "Lisa", "familyName": "Simpson", "middleName": "Marie",
    "preferredFirstName": "Liz", "preferredMiddleName": "M", "preferredLastName": "S",
    "pronouns": "she/her",
    "roles": [{"roleType": "primary", "role": "student", "org": ref("org", "orgs", "s1"),
               "beginDate": "2026-08-15", "userProfile": "up1"},
              {"roleType": "secondary", "role": "student", "org": ref("org", "orgs", "s2")}],
    "userProfiles": [{"profileId": "up1", "profileType": "lms", "vendorId": "acme",
                      "applicationId": "app", "description": "LMS account",
                      "credentials": [{"type": "password", "username": "lisa.s", "password": "hunter22"}]}],
    "primaryOrg": ref("org", "orgs", "s1"), "identifier": "1001", "email": "lisa@example.edu",
    "sms": "555", "phone": "556", "agents": [ref("user", "users", "p1"), ref("user", "users", "p2")],
    "grades": ["03", "04"],
}


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture
def writer_at(tmp_path):
    def make(mode: str, current_parts=None) -> BundleWriter:
        (tmp_path / "bundle").mkdir()
        (tmp_path / "work").mkdir()
        return BundleWriter(tmp_path / "bundle", tmp_path / "work", mode, current_parts)
    return make


def test_every_csv_column_is_filled_from_the_rest_field_of_the_same_store_column():
    unfilled = {c.name: [col.name for col, rest in zip(c.csv_file.columns, c.rest_names) if rest is None]
                for c in COLLECTIONS}
    # A user's password is never served; everything else has its REST field.
    assert unfilled == {"orgs": [], "academicSessions": [], "courses": [], "classes": [],
                        "users": ["password"], "enrollments": [], "demographics": []}
    renamed = {col.name: rest for c in COLLECTIONS
               for col, rest in zip(c.csv_file.columns, c.rest_names) if rest not in (None, col.name)}
    assert renamed == {
        "parentSourcedId": "parent", "schoolYearSourcedId": "schoolYear", "orgSourcedId": "org",
        "courseSourcedId": "course", "schoolSourcedId": "school", "termSourcedIds": "terms",
        "agentSourcedIds": "agents", "preferredGivenName": "preferredFirstName",
        "preferredFamilyName": "preferredLastName", "primaryOrgSourcedId": "primaryOrg",
        "classSourcedId": "class", "userSourcedId": "user"}


def test_a_user_becomes_its_users_roles_and_profiles_rows(writer_at):
    writer = writer_at("bulk")
    writer.add_page(BY_NAME["users"], [USER])
    assert writer.finish("test", "2026-12-05T10:00:00.000Z") == {"users": 1, "userProfiles": 1, "roles": 2}
    folder = writer.folder
    assert read_csv(folder / "users.csv") == [
        list(binding.USERS.header) + ["metadata.house", "metadata.lunch"],
        ["u1", "active", "2026-11-28T12:00:00.000Z", "true", "lisa", "{SIS:1001},{LDAP:ls}", "Lisa",
         "Simpson", "Marie", "1001", "lisa@example.edu", "555", "556", "p1,p2", "03,04", "", "M1",
         "Liz", "M", "S", "s1", "she/her", "Gryffindor", "true"]]
    assert read_csv(folder / "roles.csv") == [
        list(binding.ROLES.header),
        [role_sourced_id("u1", "s1", "student"), "active", "2026-11-28T12:00:00.000Z", "u1",
         "primary", "student", "2026-08-15", "", "s1", "up1"],
        [role_sourced_id("u1", "s2", "student"), "active", "2026-11-28T12:00:00.000Z", "u1",
         "secondary", "student", "", "", "s2", ""]]
    # The vendor credential's password is not written anywhere.
    assert read_csv(folder / "userProfiles.csv") == [
        list(binding.USER_PROFILES.header),
        ["up1", "active", "2026-11-28T12:00:00.000Z", "u1", "lms", "acme", "app", "LMS account",
         "password", "lisa.s", ""]]
    assert not any("hunter22" in path.read_text() for path in folder.iterdir())
    manifest = dict(read_csv(folder / "manifest.csv")[1:])
    assert manifest["manifest.version"] == "1.0" and manifest["oneroster.version"] == "1.2"
    assert {k: v for k, v in manifest.items() if v != "absent" and k.startswith("file.")} == {
        "file.users": "bulk", "file.userProfiles": "bulk", "file.roles": "bulk"}
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.csv", "roles.csv", "userProfiles.csv", "users.csv"]
    assert list((folder.parent / "work").iterdir()) == []


def test_references_lists_and_booleans_take_their_csv_form(writer_at):
    writer = writer_at("bulk")
    writer.add_page(BY_NAME["classes"], [{
        "sourcedId": "k1", "status": "active", "dateLastModified": "2026-11-28T12:00:00.000Z",
        "title": "Math", "classCode": "M", "classType": "scheduled", "location": "Room 1",
        "grades": ["03"], "subjects": ["Math", "Logic"], "course": ref("course", "courses", "c1"),
        "school": ref("org", "orgs", "s1"),
        "terms": [ref("academicSession", "academicSessions", "t1"),
                  ref("academicSession", "academicSessions", "t2")],
        "subjectCodes": ["51"], "periods": ["1", "2"]}])
    writer.add_page(BY_NAME["enrollments"], [{
        "sourcedId": "e1", "status": "tobedeleted", "dateLastModified": "2026-11-28T12:00:00.000Z",
        "user": ref("user", "users", "u1"), "class": ref("class", "classes", "k1"),
        "school": ref("org", "orgs", "s1"), "role": "student", "primary": False}])
    writer.finish("test", "2026-12-05T10:00:00.000Z")
    assert read_csv(writer.folder / "classes.csv")[1] == [
        "k1", "active", "2026-11-28T12:00:00.000Z", "Math", "03", "c1", "M", "scheduled", "Room 1",
        "s1", "t1,t2", "Math,Logic", "51", "1,2"]
    assert read_csv(writer.folder / "enrollments.csv")[1] == [
        "e1", "tobedeleted", "2026-11-28T12:00:00.000Z", "k1", "s1", "u1", "student", "false", "", ""]


def test_a_delta_is_stamped_and_retires_the_parts_a_changed_user_dropped(writer_at):
    asked = []

    def current_parts(user_ids):
        asked.append(list(user_ids))
        return {"roles": [
                    {"sourcedId": role_sourced_id("u1", "s1", "student"), "userSourcedId": "u1",
                     "roleType": "primary", "role": "student", "orgSourcedId": "s1",
                     "beginDate": "2026-08-15"},
                    {"sourcedId": role_sourced_id("u1", "s9", "aide"), "userSourcedId": "u1",
                     "roleType": "secondary", "role": "aide", "orgSourcedId": "s9"}],
                "userProfiles": [{"sourcedId": "up0", "userSourcedId": "u1", "profileType": "lms",
                                  "vendorId": "old", "credentialType": "sso", "username": "l"}]}
    writer = writer_at("delta", current_parts)
    writer.add_page(BY_NAME["users"], [USER])
    assert asked == [["u1"]]
    writer.finish("test", "2026-12-05T10:00:00.000Z")
    roles = read_csv(writer.folder / "roles.csv")
    assert [row[:3] for row in roles[1:]] == [
        [role_sourced_id("u1", "s1", "student"), "active", "2026-12-05T10:00:00.000Z"],
        [role_sourced_id("u1", "s2", "student"), "active", "2026-12-05T10:00:00.000Z"],
        [role_sourced_id("u1", "s9", "aide"), "tobedeleted", "2026-12-05T10:00:00.000Z"]]
    assert roles[3] == [role_sourced_id("u1", "s9", "aide"), "tobedeleted",
                        "2026-12-05T10:00:00.000Z", "u1", "secondary", "aide", "", "", "s9", ""]
    profiles = read_csv(writer.folder / "userProfiles.csv")
    assert [row[:2] for row in profiles[1:]] == [["up1", "active"], ["up0", "tobedeleted"]]
    assert read_csv(writer.folder / "users.csv")[1][:3] == ["u1", "active", "2026-12-05T10:00:00.000Z"]
    assert dict(read_csv(writer.folder / "manifest.csv")[1:])["file.users"] == "delta"


def test_a_retired_users_parts_are_retired_with_it(writer_at):
    writer = writer_at("delta", lambda ids: {})
    writer.add_page(BY_NAME["users"], [{**USER, "status": "tobedeleted"}])
    writer.finish("test", "2026-12-05T10:00:00.000Z")
    assert {row[1] for row in read_csv(writer.folder / "roles.csv")[1:]} == {"tobedeleted"}
    assert {row[1] for row in read_csv(writer.folder / "userProfiles.csv")[1:]} == {"tobedeleted"}


def test_a_discarded_collection_is_left_out(writer_at):
    writer = writer_at("bulk")
    writer.add_page(BY_NAME["demographics"], [{"sourcedId": "u1", "status": "active",
                                               "dateLastModified": "2026-11-28T12:00:00.000Z",
                                               "sex": "female", "metadata": {"k": "v"}}])
    writer.discard("demographics")
    assert writer.finish("test", "2026-12-05T10:00:00.000Z") == {}
    assert dict(read_csv(writer.folder / "manifest.csv")[1:])["file.demographics"] == "absent"


def test_role_sourced_ids_are_stable_and_distinct():
    assert role_sourced_id("u1", "s1", "student") == role_sourced_id("u1", "s1", "student")
    # Separators inside the parts cannot make two roles collide.
    assert role_sourced_id("a:b", "c", "student") != role_sourced_id("a", "b:c", "student")
    assert len(role_sourced_id("u" * 255, "o" * 255, "teacher")) <= 255
