"""A OneRoster 1.1 bundle is converted on import to exactly what its 1.2 twin (converted by hand
from the 1.1 specification) imports: same REST bodies, and re-importing the twin over the 1.1
import changes nothing."""
from __future__ import annotations

import csv
import re

from bundles import v1p1_district, write_bundle, write_v1p1_bundle
from gateway.cli import cli
from rostering_api import Api

COLLECTIONS = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics")


def _bodies(api: Api) -> dict[str, list[dict]]:
    return {name: api.records(f"/{name}", limit=1000, sort="sourcedId") for name in COLLECTIONS}


def _import(runner, path, *args):
    result = runner.invoke(cli, ["import", str(path), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_1p1_bundle_serves_what_its_hand_converted_1p2_twin_does(runner, client, make_token, tmp_path):
    v1p1, twin = v1p1_district()
    output = _import(runner, write_v1p1_bundle(tmp_path / "v1p1", v1p1))
    assert "read as OneRoster 1.1 CSV" in output
    # users.csv feeds users and their roles: 9 users, 10 roles (Krabappel teaches at two schools).
    assert "users.csv             bulk           9        0          0        0         0" in output
    assert "roles.csv             bulk          10        0          0        0         0" in output
    api = Api(client, make_token())
    converted = _bodies(api)

    output = _import(runner, write_bundle(tmp_path / "twin", twin))
    for name in COLLECTIONS + ("roles",):
        count = len(twin[name])
        assert f"{name + '.csv':<22}{'bulk':<7}{0:>9}{0:>9}{count:>11}{0:>9}{0:>10}" in output, output
    assert _bodies(api) == converted

    users = {user["sourcedId"]: user for user in converted["users"]}
    assert [(r["roleType"], r["role"], r["org"]["sourcedId"]) for r in users["t-krab"]["roles"]] == [
        ("primary", "teacher", "s2"), ("secondary", "teacher", "s1")]
    assert [(r["role"], r["org"]["sourcedId"]) for r in users["a-skinner"]["roles"]] == [("siteAdministrator", "s2")]
    assert [(r["role"], r["org"]["sourcedId"]) for r in users["a-chalmers"]["roles"]] == [
        ("districtAdministrator", "d1")]
    assert users["u1"]["userIds"] == [{"type": "SIS", "identifier": "1001"}]
    assert "role" not in users["u1"] and "orgs" not in users["u1"]


def test_a_1p1_delta_retires_the_roles_a_user_no_longer_has(runner, client, make_token, tmp_path):
    v1p1, _ = v1p1_district()
    _import(runner, write_v1p1_bundle(tmp_path / "bulk", v1p1))
    api = Api(client, make_token())
    krabappel = next(u for u in v1p1["users"] if u["sourcedId"] == "t-krab")
    krabappel.update(orgSourcedIds="s1", status="active", dateLastModified="2026-10-02T09:00:00Z")
    output = _import(runner, write_v1p1_bundle(tmp_path / "delta", {"users": [krabappel]},
                                               modes={"users": "delta"}), "--district", "d1")
    # s2 is gone and s1 becomes her primary org: one role retired, one changed.
    assert "roles.csv             delta          0        1          0        1         0" in output, output
    user = api.records("/users", filter="sourcedId='t-krab'")[0]
    assert [(r["roleType"], r["org"]["sourcedId"]) for r in user["roles"]] == [("primary", "s1")]
    assert user["dateLastModified"].startswith("20")  # re-stamped with the import


def _import_declaring(runner, path, declared: str):
    """Import the bundle at ``path`` with its manifest's oneroster.version changed to ``declared``;
    assert it was refused."""
    manifest = path / "manifest.csv"
    manifest.write_text(re.sub("oneroster.version,[0-9.]+", f"oneroster.version,{declared}", manifest.read_text()))
    result = runner.invoke(cli, ["import", str(path)])
    assert result.exit_code == 1
    return result


def test_a_manifest_that_says_1p1_over_1p2_files_says_which_version_the_files_look_like(runner, tmp_path):
    _, twin = v1p1_district()
    result = _import_declaring(runner, write_bundle(tmp_path / "mislabelled", twin), "1.1")
    assert "users.csv:1:" in result.output
    assert "(this looks like a OneRoster 1.2 file: is the manifest's oneroster.version right?)" in result.output


def test_an_unknown_version_is_refused_naming_it_and_what_is_supported(runner, tmp_path):
    v1p1, _ = v1p1_district()
    result = _import_declaring(runner, write_v1p1_bundle(tmp_path / "v3", v1p1), "3.0")
    problems = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    # The files are still checked (as the 1.1 files they are): the version is the only problem.
    assert problems == ["manifest.csv:3: column oneroster.version: value '3.0', expected OneRoster 1.1 or 1.2 "
                        "(manifest oneroster.version 1.1 or 1.2); OneRoster 3.0 is not a version the gateway "
                        "reads: export the bundle as OneRoster 1.2 (or 1.1)"]


def test_a_1p1_user_without_orgs_or_with_an_unknown_role_is_refused_at_its_line(runner, tmp_path):
    v1p1, _ = v1p1_district()
    v1p1["users"][1]["orgSourcedIds"] = ""
    v1p1["users"][2]["role"] = "janitor"
    result = runner.invoke(cli, ["import", str(write_v1p1_bundle(tmp_path / "bad", v1p1))])
    assert result.exit_code == 1
    assert ("users.csv:3: column orgSourcedIds: value '', expected at least one org sourcedId (each becomes "
            "one of the user's roles)") in result.output
    assert ("users.csv:4: column role: value 'janitor', expected a OneRoster 1.1 role: administrator, aide, "
            "guardian, parent, proctor, relative, student, teacher (or a 1.2 role, or an ext: value)") in result.output


def test_a_1p1_users_file_keeps_its_metadata_columns(runner, client, make_token, tmp_path):
    v1p1, _ = v1p1_district()
    path = write_v1p1_bundle(tmp_path / "meta", v1p1)
    users = path / "users.csv"
    with open(users, newline="") as handle:
        rows = list(csv.reader(handle))
    rows[0].append("metadata.homeroom")
    for row in rows[1:]:
        row.append("H-" + row[0])
    with open(users, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    _import(runner, path)
    user = Api(client, make_token()).records("/users", filter="sourcedId='u2'")[0]
    assert user["metadata"] == {"homeroom": "H-u2"}
