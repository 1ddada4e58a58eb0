"""The admin console and the transparency page in a real browser: an admin signs in with the
keyboard, connects an app, copies its secret, gives it a restrictive policy through the form with
its preview, and the app (over real HTTP) and a parent (on the public page) see exactly that."""
from __future__ import annotations

import re

import requests

from web_support import (CHROMEBOOK, CONTRAST, PHONE, UNLABELLED, check_page,
                         sign_in_to_console)

USERS = "/ims/oneroster/rostering/v1p2/users"


def test_an_admin_connects_an_app_with_a_restrictive_policy(chromium, demo):
    server, _ = demo
    base = server.base
    context = chromium.new_context(viewport=CHROMEBOOK)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = context.new_page()
    sign_in_to_console(page, base)
    assert page.get_by_role("heading", level=1).inner_text() == "Dashboard"
    check_page(page, "admin-dashboard")

    page.get_by_role("link", name="Apps", exact=True).click()
    page.get_by_label("Name of the app").fill("Reading Coach")
    page.get_by_role("button", name="Connect").click()
    page.get_by_role("heading", level=1, name="Reading Coach connected").wait_for()
    check_page(page, "admin-credentials")
    client_id = page.locator("#client-id").inner_text()
    secret = page.locator("#client-secret").inner_text()
    page.get_by_role("button", name="Copy the client secret").click()
    page.get_by_text("Copied the client secret").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    # What was shown works, once: the page is never served again (no-store) and the secret is
    # nowhere else in the console.
    token = requests.post(f"{base}/oauth/token", auth=(client_id, secret), timeout=30,
                          data={"grant_type": "client_credentials"})
    assert token.status_code == 200, token.text
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert requests.get(f"{base}{USERS}", headers=bearer, timeout=30).json()["users"] == []

    page.get_by_role("link", name="Next: what Reading Coach may see").click()
    page.wait_for_url(re.compile(r".*/admin/apps/\d+$"))
    page.get_by_text("No sharing policy yet: it sees nothing.").wait_for()
    check_page(page, "admin-app-policy")
    page.get_by_label("Only these schools:").check()
    page.get_by_label("Katherine Johnson Elementary School").check()
    page.get_by_label("familyName", exact=True).first.select_option("masked")
    page.get_by_label("Contract starts").fill("2026-08-01")
    page.get_by_label("Contract ends").fill("2027-07-31")
    page.get_by_role("button", name="Preview the change").click()

    preview = page.get_by_role("region", name="What this change would do")
    preview.wait_for()
    students = [cell.inner_text() for cell in
                preview.get_by_role("row", name=re.compile("^Students")).get_by_role("cell").all()]
    before, after, gained, lost = students
    assert before == "0" and int(after) > 0 and gained == f"+{after}" and lost == "−0"
    assert "user.familyName: starts leaving (masked:initial)" in preview.inner_text()
    assert "user.email" not in preview.inner_text()
    check_page(page, "admin-app-policy-preview")
    # The preview kept the form as it was filled in; saving it applies what was previewed.
    assert page.get_by_label("Katherine Johnson Elementary School").is_checked()
    page.get_by_role("button", name="Save the policy").click()
    page.get_by_text("Policy saved (revision 1).").wait_for()

    # The app, over real HTTP, receives exactly that: the school's people, family names masked,
    # no email addresses.
    users = requests.get(f"{base}{USERS}?limit=100", headers=bearer, timeout=30).json()["users"]
    students_seen = [u for u in users if any(r["role"] == "student" for r in u["roles"])]
    assert len(students_seen) == int(after)
    assert all(re.fullmatch(r".\.", u["familyName"]) for u in users)
    assert not any("email" in u for u in users)

    page.goto(f"{base}/districts/district-1/privacy")
    card = page.get_by_role("region", name="Reading Coach")
    assert "2026-08-01 to 2027-07-31" in card.inner_text()
    assert card.get_by_role("row", name="user familyName masked (initial)").count() == 1
    assert card.get_by_role("row", name=re.compile("email")).count() == 0
    check_page(page, "privacy")

    page.goto(f"{base}/admin/audit")
    log = page.locator("table").inner_text()
    for action in ("admin.sign_in", "app.connect", "app.policy"):
        assert action in log
    check_page(page, "admin-audit")

    phone = chromium.new_context(viewport=PHONE)
    small = phone.new_page()
    sign_in_to_console(small, base)
    check_page(small, "admin-dashboard-phone")
    small.get_by_role("link", name="Reading Coach").click()
    small.wait_for_url(re.compile(r".*/admin/apps/\d+$"))
    check_page(small, "admin-app-policy-phone")
    phone.close()
    context.close()


def test_the_console_refuses_wrong_passwords_and_a_help_desk_cannot_change_policies(chromium,
                                                                                     demo, runner):
    server, _ = demo
    page = chromium.new_context(viewport=CHROMEBOOK).new_page()
    page.goto(f"{server.base}/admin/login")
    page.get_by_label("Email address").fill("it@district-1.test")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()
    assert page.get_by_role("alert").inner_text() == "Unknown email address or wrong password."

    sign_in_to_console(page, server.base)
    page.get_by_role("link", name="Admins").click()
    page.get_by_label("Email address").fill("helpdesk@district-1.test")
    page.get_by_label("Role").select_option("help_desk")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#invite-link").inner_text()  # waits for the answer's page
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.base}/admin/login")
    page.goto(link)
    check_page(page, "admin-invitation")
    page.get_by_label("New password").fill("help desk password")
    page.get_by_label("The same password again").fill("help desk password")
    page.get_by_role("button", name="Set password").click()
    page.wait_for_url(f"{server.base}/admin/login")
    page.get_by_label("Email address").fill("helpdesk@district-1.test")
    page.get_by_label("Password").fill("help desk password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.base}/admin/")
    assert "Help desk" in page.locator("header").inner_text()

    page.get_by_role("link", name="Apps", exact=True).click()
    page.wait_for_url(f"{server.base}/admin/apps")
    assert page.get_by_role("button", name="Connect").count() == 0
    page.get_by_role("link", name="Demo app (quickstart)").click()
    page.get_by_role("button", name="Preview the change").wait_for()
    assert page.get_by_role("button", name="Save the policy").count() == 0
    # Nor does a hand-made post get through: the server checks the role, not the page.
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(f"{server.base}{page.url.removeprefix(server.base)}/policy",
                                form={"csrf_token": csrf, "action": "save", "schools_mode": "all",
                                      "scopes": "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"})
    assert refused.status == 403, refused.text()
    assert "A help desk may not do this." in refused.text()


def test_the_page_checks_catch_low_contrast_and_unlabelled_controls(chromium):
    page = chromium.new_page()
    page.set_content('<html lang="en"><body style="background:#fff"><h1>Page</h1>'
                     '<p style="color:#999">faint</p><p style="color:#595959">dark enough</p>'
                     '<input name="nameless"><label>Named <input name="named"></label>'
                     '<button></button></body></html>')
    faint, = page.evaluate(CONTRAST)
    assert faint.startswith("P 'faint' 2.8")
    unlabelled = page.evaluate(UNLABELLED)
    assert unlabelled == ['<input name="nameless">', "<button></button>"]
    page.close()
