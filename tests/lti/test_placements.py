"""Launchpad placements beyond a class: at a school, district-wide, for staff only. Their tiles
are shown to the people they are placed for whom the app's policy lets it see, and their
launches carry no context (LTI 1.3 Core §5.4.1), roles from the person's OneRoster roles, and no
NRPS or AGS claims (services of a context)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from gateway.cli import cli
from gateway.sharing.service import set_policy
from gateway.store.lti import ResourceLink, Tool
from gateway.store.models import utcnow

from lti_support import portal_csrf

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
INST = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"


@pytest.fixture
def place_at(database):
    """Place a tool at a school (``school=``) or district-wide, for ``audience``."""
    def place_at(client_id: str, title: str, *, school: str | None = None,
                 audience: str = "everyone") -> str:
        from gateway.lti.platform import registration
        with database.session_scope() as session:
            return registration.place_tool(
                session, client_id=client_id, school_sourced_id=school,
                district_wide=school is None, audience=audience, district=None, title=title,
                now=utcnow()).link_id
    return place_at


def tiles(app, sign_in, username: str) -> str:
    """The launchpad of ``username``, signed in on a browser of their own."""
    browser = sign_in(username, app.test_client())
    return browser.get("/portal").get_data(as_text=True)


def test_district_wide_launch_has_no_context_nor_services(database, tool, place_at, launch):
    with database.session_scope() as session:
        scopes = session.execute(select(Tool.scope).where(Tool.client_id == tool.client_id)).scalar_one()
    with database.session_scope() as session:
        session.execute(Tool.__table__.update().where(Tool.client_id == tool.client_id).values(
            scope=scopes + " https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
                  " https://purl.imsglobal.org/spec/lti-ags/scope/score"))
    link_id = place_at(tool.client_id, "Library")

    claims = launch("lisa", link_id=link_id)

    assert claims[CLAIM + "message_type"] == "LtiResourceLinkRequest"
    assert claims[CLAIM + "resource_link"]["id"] == link_id
    assert CLAIM + "context" not in claims
    assert NRPS_CLAIM not in claims and AGS_CLAIM not in claims
    assert claims[CLAIM + "roles"] == [INST + "Student"]
    assert claims[CLAIM + "lis"] == {"person_sourcedid": "u1"}
    assert claims["sub"] == "u1"


def test_class_launch_keeps_its_context_and_services(database, tool, launch):
    with database.session_scope() as session:
        session.execute(Tool.__table__.update().where(Tool.client_id == tool.client_id).values(
            scope="https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"))
    claims = launch("lisa")
    assert claims[CLAIM + "context"]["id"] == "k1"
    assert NRPS_CLAIM in claims


def test_school_and_staff_tiles_go_to_the_people_placed_for(app, tool, place_at, sign_in):
    place_at(tool.client_id, "Springfield Elementary Reader", school="s1")
    place_at(tool.client_id, "Staff Room", audience="staff")
    place_at(tool.client_id, "Shelbyville Atlas", school="s2", audience="staff")

    lisa = tiles(app, sign_in, "lisa")  # a student of s1
    assert "Springfield Elementary Reader" in lisa and "Staff Room" not in lisa
    assert "Your apps" in lisa and "Shelbyville Atlas" not in lisa
    hoover = tiles(app, sign_in, "hoover")  # a teacher of s1
    assert "Springfield Elementary Reader" in hoover and "Staff Room" in hoover
    assert "Shelbyville Atlas" not in hoover
    krab = tiles(app, sign_in, "krabappel")  # a teacher of s2
    assert "Shelbyville Atlas" in krab and "Staff Room" in krab
    assert "Springfield Elementary Reader" not in krab
    bart = tiles(app, sign_in, "bart")  # a student of s2
    for title in ("Springfield Elementary Reader", "Staff Room", "Shelbyville Atlas"):
        assert title not in bart


def test_a_link_not_placed_for_the_person_is_refused(client, tool, place_at, sign_in):
    staff_only = place_at(tool.client_id, "Staff Room", audience="staff")
    other_school = place_at(tool.client_id, "Shelbyville Atlas", school="s2")
    sign_in("lisa")
    for link_id in (staff_only, other_school):
        response = client.post(f"/portal/launch/{link_id}",
                               data={"csrf_token": portal_csrf(client)})
        assert response.status_code == 403


def test_a_district_wide_tile_follows_the_apps_policy(app, client, database, app_id, tool, place_at,
                                                      sign_in):
    with database.session_scope() as session:
        set_policy(session, app_id=app_id, district_id=1, now=utcnow(),
                   document={"schools": ["s2"], "fields": {"user": ["givenName"]}})
    link_id = place_at(tool.client_id, "Library")

    assert "Library" in tiles(app, sign_in, "bart")
    assert "Library" not in tiles(app, sign_in, "lisa")  # s1: outside the app's scope
    sign_in("lisa")
    response = client.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(client)})
    assert response.status_code == 403


def test_cli_places_district_wide_for_staff_and_at_a_school(runner, database, tool):
    result = runner.invoke(cli, ["tools", "place", tool.client_id, "--district-wide", "--staff",
                                 "--title", "Staff Room", "--json"])
    assert result.exit_code == 0, result.output
    placed = json.loads(result.output)
    assert placed["district_wide"] and placed["audience"] == "staff"
    result = runner.invoke(cli, ["tools", "place", tool.client_id, "--school", "s2"])
    assert result.exit_code == 0, result.output
    assert "at school s2 for everyone" in result.output
    with database.session_scope() as session:
        rows = {(link.placement, link.school_sourced_id, link.class_sourced_id, link.audience)
                for link in session.execute(select(ResourceLink)).scalars()}
    assert rows == {("district", None, None, "staff"), ("school", "s2", None, "everyone")}

    for args in (["--class", "k1", "--school", "s1"], [], ["--school", "nowhere"],
                 ["--class", "k1", "--staff"]):
        result = runner.invoke(cli, ["tools", "place", tool.client_id, *args])
        assert result.exit_code != 0 and "Error" in result.output, (args, result.output)


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
       b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
       b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


def test_tiles_show_the_tools_icon_or_its_initial(app, runner, tool, place, sign_in, tmp_path):
    place(tool.client_id, "k1", title="Fractions")
    page = tiles(app, sign_in, "lisa")
    assert '<span class="icon' in page and "<img" not in page  # the letter tile

    image = tmp_path / "icon.png"
    image.write_bytes(PNG)
    result = runner.invoke(cli, ["tools", "icon", tool.client_id, "--file", str(image)])
    assert result.exit_code == 0, result.output
    browser = sign_in("lisa", app.test_client())
    response = browser.get("/portal")
    page = response.get_data(as_text=True)
    assert f'<img class="icon" src="/portal/icons/{tool.client_id}" alt=""' in page
    assert 'aria-label="Open Fractions Math Tool in ' in page  # the tile's accessible name
    assert response.headers["Content-Security-Policy"].endswith("; img-src 'self'")
    icon = browser.get(f"/portal/icons/{tool.client_id}")
    assert icon.status_code == 200 and icon.mimetype == "image/png" and icon.data == PNG

    result = runner.invoke(cli, ["tools", "icon", tool.client_id, "--url",
                                 "https://cdn.tool.example/math.png"])
    assert result.exit_code == 0, result.output
    response = sign_in("lisa", app.test_client()).get("/portal")
    assert 'src="https://cdn.tool.example/math.png"' in response.get_data(as_text=True)
    assert response.headers["Content-Security-Policy"].endswith(
        "; img-src 'self' https://cdn.tool.example")
    assert browser.get(f"/portal/icons/{tool.client_id}").status_code == 404  # replaced

    svg = tmp_path / "icon.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    for args in (["--file", str(svg)], ["--url", "http://cdn.tool.example/x.png"], []):
        result = runner.invoke(cli, ["tools", "icon", tool.client_id, *args])
        assert result.exit_code != 0 and "Error" in result.output, (args, result.output)
