"""Resources in the change feed, from the outside: an import creating, changing or deleting a
resource, or adding, changing or retiring a class's, course's or person's link to it, is an event
of the resource, seen by the apps the Resources service shows it to."""
from __future__ import annotations

from gateway.oneroster.endpoints import RESOURCES
from gateway.oneroster.vocabulary import RESOURCES_SCOPES, ROSTERING_SCOPES

from bundles import small_district, write_bundle
from resources_bundle import resources_district
from rostering_api import Api
from test_events_feed import all_events, head

ALL_SCOPES = (*ROSTERING_SCOPES, *RESOURCES_SCOPES)
ELEMENTARY = {"schools": ["s1"], "fields": {"user": ["*"]}}
"""Springfield Elementary only: class k1 and its people (res-math through k1, res-tutor
through u1)."""


def resource_events(api: Api, after: str) -> list[tuple[str, str]]:
    """The (sourcedId, type) of the app's resource events after ``after``, in feed order."""
    return [(e["sourcedId"], e["type"]) for e in all_events(api, after)[0]
            if e["entity"] == "resource"]


def rest_resources(api: Api) -> set[str]:
    """The resources the Resources service shows the app."""
    response = api.client.get(RESOURCES.base_path + "/resources",
                              headers={"Authorization": f"Bearer {api.token}"})
    assert response.status_code == 200, response.get_json()
    return {r["sourcedId"] for r in response.get_json()["resources"]}


def test_resource_changes_and_their_links_are_events_of_the_apps_that_see_them(
        load_bundle, tmp_path, make_token, client):
    load_bundle(write_bundle(tmp_path / "roster", small_district()))
    everything = Api(client, make_token(scopes=ALL_SCOPES))
    elementary = Api(client, make_token(scopes=ALL_SCOPES, policy=ELEMENTARY))
    roster_only = Api(client, make_token(scopes=ROSTERING_SCOPES))
    starts = [head(api) for api in (everything, elementary, roster_only)]
    rows = resources_district()
    # The resources files come with the next import.
    load_bundle(write_bundle(tmp_path / "first", rows))
    created = resource_events(everything, starts[0])
    assert created == [(sid, "created") for sid in ("res-math", "res-bio", "res-lab", "res-tutor")]
    assert resource_events(elementary, starts[1]) == [("res-math", "created"),
                                                     ("res-tutor", "created")]
    assert rest_resources(elementary) == {"res-math", "res-tutor"}
    # Without a resources scope, no resource event.
    assert resource_events(roster_only, starts[2]) == []

    starts = [head(api) for api in (everything, elementary)]
    rows["resources"][1]["title"] = "Cell Atlas 2"  # res-bio itself changes
    rows["classResources"][0]["title"] = "Math 3A arcade"  # res-math's link to k1 changes
    # res-lab marked deleted (course c2 still links it); u2 no longer uses res-tutor.
    rows["resources"][2]["status"] = "tobedeleted"
    rows["userResources"] = [u for u in rows["userResources"] if u["sourcedId"] != "ur2"]
    load_bundle(write_bundle(tmp_path / "second", rows))
    assert sorted(resource_events(everything, starts[0])) == [
        ("res-bio", "updated"), ("res-lab", "deleted"), ("res-math", "updated"),
        ("res-tutor", "updated")]
    # The elementary app sees the changes of the resources it is shown, and only those.
    assert sorted(resource_events(elementary, starts[1])) == [("res-math", "updated"),
                                                             ("res-tutor", "updated")]

    starts = [head(api) for api in (everything, elementary)]
    # A new link of k1 to res-bio: res-bio changes, and is now the elementary app's too.
    rows["classResources"].append({"sourcedId": "cr3", "classSourcedId": "k1",
                                   "resourceSourcedId": "res-bio"})
    load_bundle(write_bundle(tmp_path / "third", rows))
    assert resource_events(everything, starts[0]) == [("res-bio", "updated")]
    assert resource_events(elementary, starts[1]) == [("res-bio", "updated")]
    assert rest_resources(elementary) == {"res-math", "res-tutor", "res-bio"}

    start = head(everything)
    # The course's link retired, res-lab is in no one's scope: on REST as in the feed.
    rows["courseResources"] = []
    load_bundle(write_bundle(tmp_path / "fourth", rows))
    assert "res-lab" not in rest_resources(everything)
    assert resource_events(everything, start) == []


def test_an_import_that_leaves_the_resources_as_they_are_is_no_resource_event(
        load_bundle, tmp_path, make_token, client):
    load_bundle(write_bundle(tmp_path / "first", resources_district()))
    everything = Api(client, make_token(scopes=ALL_SCOPES))
    start = head(everything)
    load_bundle(write_bundle(tmp_path / "again", resources_district()))
    assert resource_events(everything, start) == []
