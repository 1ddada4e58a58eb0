"""The Resources service's CSV files (resources, classResources, courseResources, userResources)
are imported with the rest of a bundle, checked like the rostering files."""
from __future__ import annotations

from sqlalchemy import select

from gateway.oneroster.csv.importer import ImportOptions, import_bundle
from gateway.store.resources import class_resources, course_resources, resources, user_resources

from bundles import write_bundle
from resources_bundle import resources_district


def imported(database, path, files, options=None):
    with database.session_scope() as session:
        return import_bundle(session, write_bundle(path, files), options or ImportOptions())


def test_resources_and_their_links_are_stored(database, tmp_path):
    files = resources_district()
    report = imported(database, tmp_path / "b", files)
    assert report.outcome == "applied", report.to_dict()
    with database.engine.connect() as conn:
        stored = {row.sourced_id: row for row in conn.execute(select(resources))}
        assert sorted(stored) == sorted(r["sourcedId"] for r in files["resources"])
        math = stored["res-math"]
        assert (math.vendor_resource_id, math.title, math.roles, math.importance, math.vendor_id,
                math.application_id, math.status) == (
            "V-MATH", "Math Games", ["student", "teacher"], "primary", "acme", "games", "active")
        assert stored["res-tutor"].title is None and stored["res-tutor"].roles == ["student"]
        links = {
            "classResources": [(r.class_sourced_id, r.resource_sourced_id, r.title)
                               for r in conn.execute(select(class_resources))],
            "courseResources": [(r.course_sourced_id, r.resource_sourced_id, r.title)
                                for r in conn.execute(select(course_resources))],
            "userResources": [(r.user_sourced_id, r.org_sourced_id, r.class_sourced_id,
                               r.resource_sourced_id)
                              for r in conn.execute(select(user_resources))],
        }
    assert sorted(links["classResources"]) == sorted(
        (r["classSourcedId"], r["resourceSourcedId"], r.get("title"))
        for r in files["classResources"])
    assert links["courseResources"] == [("c2", "res-lab", "Biology lab")]
    assert sorted(links["userResources"]) == [("u1", None, "k1", "res-tutor"),
                                              ("u2", "s2", None, "res-tutor")]


def test_a_link_to_an_unknown_resource_or_class_refuses_the_import(database, tmp_path):
    files = resources_district()
    files["classResources"].append({"sourcedId": "cr9", "classSourcedId": "k9",
                                    "resourceSourcedId": "res-none"})
    report = imported(database, tmp_path / "b", files)
    assert report.outcome != "applied"
    described = " ".join(str(problem) for problem in report.to_dict()["problems"])
    assert "classResources.csv" in described and "k9" in described and "res-none" in described
    with database.engine.connect() as conn:
        assert conn.execute(select(resources)).first() is None  # nothing changed


def test_a_bulk_file_retires_the_resources_it_no_longer_lists(database, tmp_path):
    files = resources_district()
    assert imported(database, tmp_path / "one", files).outcome == "applied"
    files["resources"] = [r for r in files["resources"] if r["sourcedId"] != "res-lab"]
    files["courseResources"] = []
    del files["courseResources"]
    report = imported(database, tmp_path / "two", files, ImportOptions(force=True))
    assert report.outcome == "applied", report.to_dict()
    with database.engine.connect() as conn:
        status = dict(conn.execute(select(resources.c.sourced_id, resources.c.status)).all())
    assert status["res-lab"] == "tobedeleted" and status["res-math"] == "active"
