"""LTI tools in the console, in a real browser: the admin starts a dynamic registration, the
tool's registration window registers the tool and closes with the LTI close message, the admin
approves the pending tool and places it in a class, and a student finds it on their launchpad."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import requests

from web_support import CHROMEBOOK, PASSWORD, check_page, sign_in_to_console

TOOL = "https://tool.invalid"
TOOL_CONFIG = "https://purl.imsglobal.org/spec/lti-tool-configuration"
CLASS = "Kindergarten English Language Arts - Section 1"


def registration_window(base: str):
    """The tool's side of LTI Dynamic Registration (§3): read the platform's configuration, post
    the tool's metadata with the one-time token, then tell the opener to close the window."""
    def here(url: str) -> str:
        # The gateway names itself by its issuer (localhost:5000 by default); this test's server
        # listens on a port of its own.
        return base + urlsplit(url).path

    def handle(route):
        query = parse_qs(urlsplit(route.request.url).query)
        configuration = requests.get(here(query["openid_configuration"][0]), timeout=30).json()
        endpoint = here(configuration["registration_endpoint"])
        answer = requests.post(endpoint, timeout=30, data=json.dumps({
            "application_type": "web", "response_types": ["id_token"],
            "grant_types": ["implicit", "client_credentials"],
            "initiate_login_uri": f"{TOOL}/login", "redirect_uris": [f"{TOOL}/launch"],
            "client_name": "Reading Tool", "jwks_uri": f"{TOOL}/jwks",
            "token_endpoint_auth_method": "private_key_jwt",
            TOOL_CONFIG: {"domain": "tool.invalid", "target_link_uri": f"{TOOL}/launch"}}),
            headers={"Authorization": f"Bearer {query['registration_token'][0]}",
                     "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text
        route.fulfill(content_type="text/html", body=(
            "<!doctype html><html lang=en><title>Registered</title><script>"
            "(window.opener || window.parent).postMessage("
            "{subject: 'org.imsglobal.lti.close'}, '*');</script></html>"))
    return handle


def test_an_admin_approves_a_self_registered_tool_and_places_it(chromium, demo):
    server, student = demo
    base = server.base
    context = chromium.new_context(viewport=CHROMEBOOK)
    context.route(f"{TOOL}/register*", registration_window(base))
    page = context.new_page()
    sign_in_to_console(page, base)
    page.get_by_role("link", name="LTI tools").click()
    check_page(page, "admin-tools-empty")
    page.get_by_label("App the tool belongs to").select_option(label="Demo app (quickstart)")
    page.get_by_label("The tool's registration URL").fill(f"{TOOL}/register")
    page.get_by_role("button", name="Start the registration").click()
    with context.expect_page() as popup:
        page.get_by_role("link", name="Open the registration window").click()
    popup.value.wait_for_load_state()
    # The close message reloads the console's page, which now shows the tool waiting.
    page.wait_for_url(f"{base}/admin/tools")
    page.get_by_role("button", name="Approve Reading Tool").wait_for()
    assert "Waiting for approval." in page.get_by_role("region", name="Reading Tool").inner_text()
    check_page(page, "admin-tools-pending")
    page.get_by_role("button", name="Approve Reading Tool").click()
    page.get_by_label("Place in class").select_option(label=CLASS)
    page.get_by_role("button", name="Place Reading Tool").click()
    page.get_by_text(f"Reading Tool in {CLASS}").wait_for()
    check_page(page, "admin-tools")
    page.goto(f"{base}/admin/audit")
    log = page.locator("table").inner_text()
    for action in ("tool.registration_started", "tool.approve", "tool.place"):
        assert action in log

    learner = chromium.new_context(viewport=CHROMEBOOK).new_page()
    learner.goto(f"{base}/login")
    learner.get_by_label("Username").fill(student)
    learner.get_by_label("Password").fill(PASSWORD)
    learner.get_by_role("button", name="Sign in").click()
    learner.wait_for_url(f"{base}/portal")
    tile = learner.get_by_role("button", name=re.compile(r"^Open Reading Tool "))
    assert tile.count() == 1
    context.close()
