"""The portal as a launchpad, in a real browser: a student signs in at both addresses the gateway
answers on (127.0.0.1, which quickstart prints, and localhost, the issuer), sees the app their
class was given as a tile, and opens it with the keyboard, on a Chromebook and on a phone."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.cli import cli

from web_support import CHROMEBOOK, PASSWORD, PHONE, check_page

TOOL = "https://tool.invalid"


@pytest.fixture
def placed(demo, runner):
    """A tool of the demo app placed in one class of the student."""
    result = runner.invoke(cli, [
        "tools", "register", "--app", "1", "--name", "Story Time", "--login-url", f"{TOOL}/login",
        "--redirect-uri", f"{TOOL}/launch", "--target-link-uri", f"{TOOL}/launch",
        "--jwks-url", f"{TOOL}/jwks", "--json"])
    assert result.exit_code == 0, result.output
    client_id = json.loads(result.output)["client_id"]
    result = runner.invoke(cli, ["tools", "place", client_id, "--class", "class-01-KG-ela-1",
                                 "--title", "Story Time"])
    assert result.exit_code == 0, result.output
    return client_id


@pytest.mark.parametrize("host, viewport", [("127.0.0.1", CHROMEBOOK), ("localhost", PHONE)])
def test_a_student_launches_a_tile_with_the_keyboard(chromium, demo, placed, host, viewport):
    server, student = demo
    base = f"http://{host}:{server.port}"
    context = chromium.new_context(viewport=viewport)
    # The tool is not on this machine: the browser's request for its login page is answered here.
    context.route(f"{TOOL}/**", lambda route: route.fulfill(
        content_type="text/html", body="<!doctype html><html lang=en><title>Tool</title></html>"))
    page = context.new_page()
    page.goto(f"{base}/login")
    check_page(page, f"portal-login-{host}")
    page.get_by_label("Username").fill(student)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal")

    assert re.fullmatch(r"Hello, \w+", page.get_by_role("heading", level=1).inner_text())
    # Only the class with something to launch is listed, not the student's other classes.
    assert page.get_by_role("heading", level=2).all_inner_texts() == [
        "Kindergarten English Language Arts - Section 1"]
    tile = page.get_by_role("button", name=re.compile(r"^Open Story Time in "))
    check_page(page, f"portal-{host}")
    tile.focus()
    with page.expect_request(re.compile(rf"{re.escape(TOOL)}/login\?.*")) as initiation:
        page.keyboard.press("Enter")
    query = parse_qs(urlsplit(initiation.value.url).query)
    assert query["client_id"] == [placed]
    assert query["target_link_uri"] == [f"{TOOL}/launch"]
    assert query["login_hint"] and query["lti_message_hint"]
    context.close()


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
       b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
       b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82")


def test_a_district_wide_tile_with_its_icon(chromium, demo, placed, runner, tmp_path):
    server, student = demo
    base = f"http://127.0.0.1:{server.port}"
    for args in (["--district-wide", "--title", "Library"],
                 ["--district-wide", "--staff", "--title", "Staff Room"]):
        result = runner.invoke(cli, ["tools", "place", placed, *args])
        assert result.exit_code == 0, result.output
    icon = tmp_path / "icon.png"
    icon.write_bytes(PNG)
    result = runner.invoke(cli, ["tools", "icon", placed, "--file", str(icon)])
    assert result.exit_code == 0, result.output
    context = chromium.new_context(viewport=CHROMEBOOK)
    context.route(f"{TOOL}/**", lambda route: route.fulfill(
        content_type="text/html", body="<!doctype html><html lang=en><title>Tool</title></html>"))
    page = context.new_page()
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(student)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/portal")

    # The district-wide app first, then the class; the staff-only one is not for a student.
    assert page.get_by_role("heading", level=2).all_inner_texts() == [
        "Your apps", "Kindergarten English Language Arts - Section 1"]
    assert page.get_by_role("button", name=re.compile("Staff Room")).count() == 0
    tile = page.get_by_role("button", name="Open Library Story Time")
    # The uploaded icon is shown (loaded under the page's CSP), not the letter.
    loaded = tile.locator("img.icon").evaluate("img => img.complete && img.naturalWidth")
    assert loaded == 1
    check_page(page, "portal-district-wide")
    with page.expect_request(re.compile(rf"{re.escape(TOOL)}/login\?.*")) as initiation:
        tile.click()
    assert parse_qs(urlsplit(initiation.value.url).query)["client_id"] == [placed]
    context.close()
