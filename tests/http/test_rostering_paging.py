"""Paging (limit/offset, X-Total-Count, Link) at the edges, and sorting (1.2 REST binding §3.4)."""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from rostering_api import SERVICE

ALL_USERS = ["u1", "u2", "u3", "u4", "t-hoover", "t-krab", "p1"]


@pytest.fixture
def api(load_small, api_for):
    load_small()
    return api_for("d1")


def links(response) -> dict[str, str]:
    """The Link header as {rel: url}."""
    return {rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', response.headers["Link"])}


def link(offset: int, limit: int, path: str = "/users", extra: str = "") -> str:
    return f"{SERVICE}{path}?{extra}limit={limit}&offset={offset}"


def test_first_page(api):
    response = api.get("/users", limit="2")
    assert [u["sourcedId"] for u in response.get_json()["users"]] == ["u1", "u2"]
    assert response.headers["X-Total-Count"] == "7"
    assert response.headers["Link"] == (
        f'<{link(0, 2)}>; rel="first", <{link(2, 2)}>; rel="next", <{link(6, 2)}>; rel="last"')


def test_middle_page(api):
    response = api.get("/users", limit="2", offset="2")
    assert [u["sourcedId"] for u in response.get_json()["users"]] == ["u3", "u4"]
    assert links(response) == {"first": link(0, 2), "prev": link(0, 2), "next": link(4, 2),
                               "last": link(6, 2)}


def test_last_page_has_no_next(api):
    response = api.get("/users", limit="2", offset="6")
    assert [u["sourcedId"] for u in response.get_json()["users"]] == ["p1"]
    assert response.headers["X-Total-Count"] == "7"
    assert links(response) == {"first": link(0, 2), "prev": link(4, 2), "last": link(6, 2)}


def test_an_offset_beyond_the_end_is_an_empty_page_pointing_back(api):
    response = api.get("/users", limit="2", offset="10")
    assert response.status_code == 200
    assert response.get_json() == {"users": []}
    assert response.headers["X-Total-Count"] == "7"
    assert links(response) == {"first": link(0, 2), "prev": link(6, 2), "last": link(6, 2)}


def test_pages_off_the_grid_keep_their_own_grid(api):
    response = api.get("/users", limit="3", offset="1")
    assert [u["sourcedId"] for u in response.get_json()["users"]] == ["u2", "u3", "u4"]
    assert links(response) == {"first": link(0, 3), "prev": link(0, 3), "next": link(4, 3),
                               "last": link(4, 3)}


def test_limit_one(api):
    response = api.get("/users", limit="1", offset="3")
    assert [u["sourcedId"] for u in response.get_json()["users"]] == ["u4"]
    assert links(response) == {"first": link(0, 1), "prev": link(2, 1), "next": link(4, 1),
                               "last": link(6, 1)}


def test_an_empty_collection(api):
    response = api.get("/users", filter="givenName='Nobody'")
    assert response.get_json() == {"users": []}
    assert response.headers["X-Total-Count"] == "0"
    extra = "filter=givenName%3D%27Nobody%27&"
    assert links(response) == {"first": link(0, 100, extra=extra), "last": link(0, 100, extra=extra)}


def test_the_default_limit_is_100_and_the_maximum_caps_it(api, app):
    assert links(api.get("/users"))["first"] == link(0, 100)
    app.config["ONEROSTER_MAX_LIMIT"] = 3
    response = api.get("/users", limit="10000")
    assert len(response.get_json()["users"]) == 3
    assert links(response)["next"] == link(3, 3)


def test_links_keep_the_other_parameters_and_following_next_reads_everything(api):
    response = api.get("/users", limit="2", filter="familyName!='Krabappel'", sort="familyName",
                       fields="sourcedId,familyName")
    seen = []
    while True:
        body = response.get_json()["users"]
        seen.extend(u["sourcedId"] for u in body)
        assert all(set(u) == {"sourcedId", "familyName"} for u in body)
        following = links(response)
        if "next" not in following:
            break
        url = urlsplit(following["next"])
        assert dict(parse_qsl(url.query))["filter"] == "familyName!='Krabappel'"
        response = api.client.get(url.path, query_string=url.query,
                                  headers={"Authorization": f"Bearer {api.token}"})
    assert seen == ["t-hoover", "u4", "u1", "u2", "p1", "u3"]


def test_sort_and_order_by(api):
    assert api.ids("/users", sort="givenName") == ["u2", "t-krab", "t-hoover", "u1", "p1",
                                                   "u4", "u3"]
    assert api.ids("/users", sort="givenName", orderBy="desc") == [
        "u3", "u4", "p1", "u1", "t-hoover", "t-krab", "u2"]
    # Ties are broken by insertion order (the primary key), in the direction asked.
    assert api.ids("/users", sort="familyName,givenName") == [
        "t-hoover", "t-krab", "u4", "u2", "u1", "p1", "u3"]
    assert api.ids("/users", orderBy="desc") == list(reversed(ALL_USERS))
    # A record without the field sorts last ascending and first descending, on every backend.
    assert api.ids("/users", sort="email") == ["t-krab", "t-hoover", "u1", "p1", "u2", "u3", "u4"]
    assert api.ids("/users", sort="email", orderBy="desc") == [
        "u4", "u3", "u2", "p1", "u1", "t-hoover", "t-krab"]
    assert api.ids("/enrollments", sort="primary", orderBy="desc", limit="5") == [
        "e6", "e4", "e3", "e1", "e7"]
