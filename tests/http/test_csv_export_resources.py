"""Resources in an app's CSV export: resources.csv is what the Resources service serves the app,
field by field; the link files hold exactly the links REST's nested reads follow for it (its
classes', courses' and people's, to resources it may see), named by the ids REST uses; a
person's links are in the ledger; the files come with the scopes that read them."""
from __future__ import annotations

import datetime as dt

from gateway.cli import cli
from gateway.oneroster.csv import binding
from gateway.oneroster.endpoints import RESOURCES
from gateway.oneroster.vocabulary import RESOURCES_SCOPES, ROSTERING_SCOPES, SCOPE_RESOURCE_CORE
from gateway.sharing.policy import share_everything_document

from bundles import write_bundle
from csv_export_support import (as_csv, connected, downloaded, imported_elsewhere, ledger_entries,
                                read_bundle)
from resources_bundle import resources_district
# A second gateway on an empty store, to import a bundle into.
from test_csv_export import empty_store  # noqa: F401

ALL_SCOPES = (*ROSTERING_SCOPES, *RESOURCES_SCOPES)
ELEMENTARY = {"schools": ["s1"], "fields": {"user": ["*"]}, "pseudonymize": ["user.sourcedId"]}
"""Springfield Elementary only (class k1, course c1, u1 and Mrs Hoover), user ids pseudonymized."""
LINK_FILES = ("classResources", "courseResources", "userResources")


def export(runner, app, out, *more: str):
    """``gateway export`` of ``app`` to ``out``; the bundle read back."""
    result = runner.invoke(cli, ["export", "--app", app.client_id, "--out", str(out), *more])
    assert result.exit_code == 0, result.output
    return read_bundle(out)


def served(app, path: str) -> list[dict]:
    """The resources REST serves the app at ``path`` (under the Resources service)."""
    response = app.api.client.get(RESOURCES.base_path + path, query_string={"limit": "1000"},
                                  headers={"Authorization": f"Bearer {app.token}"})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["resources"]


def test_a_restricted_apps_resources_are_what_rest_serves_it(
        connect_app, load_bundle, client, database, runner, tmp_path):
    load_bundle(write_bundle(tmp_path / "district", resources_district()))
    app = connected(connect_app, client, ELEMENTARY, ALL_SCOPES)
    manifest, files, headers = export(runner, app, tmp_path / "bundle.zip")

    resources = served(app, "/resources")
    assert sorted(r["sourcedId"] for r in resources) == ["res-math", "res-tutor"]
    assert manifest["file.resources"] == "bulk"
    assert headers["resources"] == list(binding.RESOURCES.header)
    assert [row["sourcedId"] for row in files["resources"]] == [r["sourcedId"] for r in resources]
    for row, record in zip(files["resources"], resources):
        expected = as_csv("resources", record, delta=False)
        assert {column: row[column] for column in expected} == expected

    # The links REST follows for the app: k1's, and u1's (by its pseudonym); no course of the
    # app's uses a resource, and nothing of Springfield High's is there.
    assert manifest["file.courseResources"] == "absent" and "courseResources" not in files
    [class_link] = files["classResources"]
    assert (class_link["sourcedId"], class_link["title"], class_link["classSourcedId"],
            class_link["resourceSourcedId"]) == ("cr1", "Math 3A games", "k1", "res-math")
    assert [r["sourcedId"] for r in served(app, "/classes/k1/resources")] == ["res-math"]
    [user_link] = files["userResources"]
    [u1] = [user["sourcedId"] for user in files["users"] if user["givenName"] == "Lisa"]
    assert u1 != "u1"
    assert (user_link["userSourcedId"], user_link["classSourcedId"], user_link["orgSourcedId"],
            user_link["resourceSourcedId"]) == (u1, "k1", "", "res-tutor")
    assert [r["sourcedId"] for r in served(app, f"/users/{u1}/resources")] == ["res-tutor"]
    # Its id is not the SIS's, which might be built from the clear user id: derived from
    # what the app knows, the same on the next export.
    assert user_link["sourcedId"] not in ("ur1", "") and "u1" not in user_link["sourcedId"]
    _, again, _ = export(runner, app, tmp_path / "again.zip")
    assert again["userResources"] == files["userResources"]
    for name in LINK_FILES[::2]:
        assert headers[name] == list(binding.ROSTERING_BY_NAME[name].header)

    # What Lisa uses is about Lisa: in the ledger, as REST's read of her resources is.
    entries = [e for e in ledger_entries(database) if e["endpoint"] == "getResourcesForUser"
               and e["channel"] == "csv-export"]
    assert [(e["entity"], e["records"], e["people"], sorted(e["fields"])) for e in entries] == [
        ("user", 1, ["u1"], ["resources", "sourcedId:pseudonym"])] * 2  # each export


def test_resources_files_come_with_the_scopes_that_read_them(
        connect_app, load_bundle, client, runner, tmp_path):
    load_bundle(write_bundle(tmp_path / "district", resources_district()))
    everything = share_everything_document()
    roster = connected(connect_app, client, everything, ROSTERING_SCOPES, "Roster")
    manifest, files, _ = export(runner, roster, tmp_path / "roster.zip")
    assert not set(files) & {"resources", *LINK_FILES}
    assert all(manifest[f"file.{name}"] == "absent" for name in ("resources", *LINK_FILES))
    # resource-core.readonly reads the resources, not whose they are (the nested reads).
    core = connected(connect_app, client, everything, (*ROSTERING_SCOPES, SCOPE_RESOURCE_CORE),
                     "Core")
    _, files, _ = export(runner, core, tmp_path / "core.zip")
    assert len(files["resources"]) == 4 and not set(files) & set(LINK_FILES)


def test_a_delta_has_the_links_changed_since_retired_ones_included(
        connect_app, load_bundle, client, runner, tmp_path):
    rows = resources_district()
    load_bundle(write_bundle(tmp_path / "first", rows), now=dt.datetime(2026, 9, 1, 8))
    app = connected(connect_app, client, share_everything_document(), ALL_SCOPES)
    rows["classResources"][0]["title"] = "Math 3A arcade"
    rows["userResources"] = rows["userResources"][:1]  # ur2 retired
    load_bundle(write_bundle(tmp_path / "second", rows), now=dt.datetime(2026, 9, 2, 8))
    manifest, files, _ = export(runner, app, tmp_path / "delta.zip",
                                "--since", "2026-09-01T12:00:00Z")
    assert {name for name in ("resources", *LINK_FILES)
            if manifest[f"file.{name}"] == "delta"} == {"classResources", "userResources"}
    assert [(r["sourcedId"], r["status"], r["title"], r["dateLastModified"])
            for r in files["classResources"]] == [
        ("cr1", "active", "Math 3A arcade", "2026-09-02T08:00:00.000Z")]
    assert [(r["sourcedId"], r["status"]) for r in files["userResources"]] == [
        ("ur2", "tobedeleted")]


def test_a_share_everything_bundle_reimports_with_the_same_resources(
        connect_app, load_bundle, client, runner, tmp_path, empty_store):  # noqa: F811
    load_bundle(write_bundle(tmp_path / "district", resources_district()))
    app = connected(connect_app, client, share_everything_document(), ALL_SCOPES)
    out = tmp_path / "everything.zip"
    export(runner, app, out)
    copy = imported_elsewhere(connect_app, empty_store, out, ALL_SCOPES)
    for path in ("/resources", "/classes/k1/resources", "/classes/k2/resources",
                 "/courses/c2/resources", "/users/u1/resources", "/users/u2/resources"):
        assert _contents(served(copy, path)) == _contents(served(app, path)), path


def _contents(records: list[dict]) -> list[dict]:
    """Records without their stamps (the bundle's import stamps its own)."""
    return [{k: v for k, v in record.items() if k != "dateLastModified"} for record in records]


def test_the_download_holds_the_same_resources_files_as_the_command(
        connect_app, load_bundle, client, runner, tmp_path):
    load_bundle(write_bundle(tmp_path / "district", resources_district()))
    app = connected(connect_app, client, ELEMENTARY, ALL_SCOPES)
    bundle = downloaded(app)
    written = export(runner, app, tmp_path / "cli.zip")
    assert [bundle[1][name] for name in ("resources", "classResources", "userResources")] \
        == [written[1][name] for name in ("resources", "classResources", "userResources")]
    assert len(bundle[1]["resources"]) == 2


def test_links_told_apart_only_by_their_clear_ids_are_one_row(
        connect_app, load_bundle, client, runner, tmp_path):
    rows = resources_district()
    # The SIS links Lisa to the tutor twice, the same way: the same row once pseudonymized.
    rows["userResources"].append(dict(rows["userResources"][0], sourcedId="ur1-again"))
    load_bundle(write_bundle(tmp_path / "district", rows))
    app = connected(connect_app, client, ELEMENTARY, ALL_SCOPES)
    _, files, _ = export(runner, app, tmp_path / "bundle.zip")
    assert [row["resourceSourcedId"] for row in files["userResources"]] == ["res-tutor"]
    # An app that knows the clear ids gets both, as the SIS sent them.
    clear = connected(connect_app, client, share_everything_document(), ALL_SCOPES, "Clear")
    _, files, _ = export(runner, clear, tmp_path / "clear.zip")
    assert [row["sourcedId"] for row in files["userResources"]] == ["ur1", "ur1-again", "ur2"]
