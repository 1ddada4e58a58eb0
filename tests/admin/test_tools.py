"""LTI tools in the console: approving a self-registered tool, placing it within a tech lead's
schools only, removing a link, and what the help desk may not do."""
from __future__ import annotations

from sqlalchemy import select

from gateway.lti.platform import registration
from gateway.oauth import service
from gateway.store.lti import ResourceLink, Tool, ToolIcon
from gateway.store.models import utcnow

TOOL = "https://tool.example"


def pending_tool(database) -> str:
    with database.session_scope() as session:
        app_id = service.register_app(session, name="Math app", district_sourced_id="d1",
                                      scopes=None, now=utcnow()).app_id
        return registration.register_tool(
            session, app=app_id, district="d1", name="Math Tool", login_url=f"{TOOL}/login",
            redirect_uris=[f"{TOOL}/launch"], target_link_uri=f"{TOOL}/launch",
            jwks_url=f"{TOOL}/jwks", status="pending", now=utcnow()).client_id


def test_approve_place_and_remove_within_the_roles(console, database):
    client_id = pending_tool(database)
    desk, desk_token = console("help@d1.test")
    lead, lead_token = console("lead@d1.test")
    admin, token = console("admin@d1.test")
    assert "Waiting for approval." in admin.get("/admin/tools").get_data(as_text=True)
    assert ('<p class="warning">1 LTI tool(s) registered themselves and wait for approval.</p>'
            in admin.get("/admin/").get_data(as_text=True))
    refused = desk.post(f"/admin/tools/{client_id}/approve", data={"csrf_token": desk_token})
    assert refused.status_code == 403
    early = admin.post(f"/admin/tools/{client_id}/place", data={"csrf_token": token,
                                                                "class": "k1"})
    assert early.status_code == 400
    assert "Approve the tool before placing it." in early.get_data(as_text=True)
    assert admin.post(f"/admin/tools/{client_id}/approve",
                      data={"csrf_token": token}).status_code == 303
    with database.session_scope() as session:
        assert session.execute(select(Tool.status)).scalar_one() == "approved"

    # k1 is at s1, the tech lead's school; k2 at s2.
    other = lead.post(f"/admin/tools/{client_id}/place", data={"csrf_token": lead_token,
                                                               "class": "k2"})
    assert other.status_code == 403
    assert "This class is not at one of your schools." in other.get_data(as_text=True)
    placed = lead.post(f"/admin/tools/{client_id}/place", data={"csrf_token": lead_token,
                                                                "class": "k1", "title": "Fractions"})
    assert placed.status_code == 303
    with database.session_scope() as session:
        link_id, title, klass = session.execute(select(
            ResourceLink.link_id, ResourceLink.title, ResourceLink.class_sourced_id)).one()
    assert (title, klass) == ("Fractions", "k1")
    assert "Fractions in Math 3A" in admin.get("/admin/tools").get_data(as_text=True)
    assert desk.post(f"/admin/links/{link_id}/remove",
                     data={"csrf_token": desk_token}).status_code == 403
    assert admin.post(f"/admin/links/{link_id}/remove",
                      data={"csrf_token": token}).status_code == 303
    with database.session_scope() as session:
        assert session.execute(select(ResourceLink.id)).first() is None
    log = admin.get("/admin/audit").get_data(as_text=True)
    for action in ("tool.approve", "tool.place", "tool.remove_link"):
        assert action in log
    disabled = admin.post(f"/admin/tools/{client_id}/disable", data={"csrf_token": token})
    assert disabled.status_code == 303
    with database.session_scope() as session:
        assert session.execute(select(Tool.status)).scalar_one() == "pending"


def test_place_at_a_school_and_district_wide_for_staff(console, database):
    client_id = pending_tool(database)
    lead, lead_token = console("lead@d1.test")
    admin, token = console("admin@d1.test")
    assert admin.post(f"/admin/tools/{client_id}/approve",
                      data={"csrf_token": token}).status_code == 303
    page = admin.get("/admin/tools").get_data(as_text=True)
    assert '<option value="district">District-wide</option>' in page
    assert '<option value="district">' not in lead.get("/admin/tools").get_data(as_text=True)

    # The tech lead leads s1: not s2, and not the whole district.
    for form in ({"where": "school", "school": "s2"}, {"where": "district"}):
        refused = lead.post(f"/admin/tools/{client_id}/place", data={"csrf_token": lead_token, **form})
        assert refused.status_code == 403, form
    assert lead.post(f"/admin/tools/{client_id}/place",
                     data={"csrf_token": lead_token, "where": "school", "school": "s1",
                           "audience": "everyone", "title": "Reader"}).status_code == 303
    assert admin.post(f"/admin/tools/{client_id}/place",
                      data={"csrf_token": token, "where": "district", "audience": "staff",
                            "title": "Staff Room"}).status_code == 303
    with database.session_scope() as session:
        rows = {(link.title, link.placement, link.school_sourced_id, link.class_sourced_id,
                 link.audience) for link in session.execute(select(ResourceLink)).scalars()}
    assert rows == {("Reader", "school", "s1", None, "everyone"),
                    ("Staff Room", "district", None, None, "staff")}
    page = admin.get("/admin/tools").get_data(as_text=True)
    assert "Staff Room in the whole district (staff)" in page
    with database.session_scope() as session:
        staff_link = session.execute(select(ResourceLink.link_id).where(
            ResourceLink.placement == "district")).scalar_one()
    assert lead.post(f"/admin/links/{staff_link}/remove",
                     data={"csrf_token": lead_token}).status_code == 403
    assert admin.post(f"/admin/links/{staff_link}/remove",
                      data={"csrf_token": token}).status_code == 303


def test_set_and_clear_a_tools_icon_from_the_console(console, database):
    import io
    client_id = pending_tool(database)
    desk, desk_token = console("help@d1.test")
    admin, token = console("admin@d1.test")
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    refused = desk.post(f"/admin/tools/{client_id}/icon", content_type="multipart/form-data",
                        data={"csrf_token": desk_token, "image": (io.BytesIO(png), "i.png")})
    assert refused.status_code == 403
    bad = admin.post(f"/admin/tools/{client_id}/icon", content_type="multipart/form-data",
                     data={"csrf_token": token, "image": (io.BytesIO(b"<svg/>"), "i.svg")})
    assert bad.status_code == 400
    assert "an icon image is a PNG, JPEG, GIF or WebP file" in bad.get_data(as_text=True)
    done = admin.post(f"/admin/tools/{client_id}/icon", content_type="multipart/form-data",
                      data={"csrf_token": token, "image": (io.BytesIO(png), "i.png")})
    assert done.status_code == 303
    assert "An uploaded image." in admin.get("/admin/tools").get_data(as_text=True)
    with database.session_scope() as session:
        assert session.execute(select(ToolIcon.image, ToolIcon.media_type)).one() == (png, "image/png")
    cleared = admin.post(f"/admin/tools/{client_id}/icon", data={"csrf_token": token, "clear": "1"})
    assert cleared.status_code == 303
    with database.session_scope() as session:
        assert session.execute(select(ToolIcon.tool_id)).first() is None
    assert "tool.icon" in admin.get("/admin/audit").get_data(as_text=True)
