"""The LMS's frame in a real browser: Debian's chromium under Playwright, an LMS course page on
one site (http://127.0.0.1:P) framing the gateway's ``/lms/login`` on another
(http://localhost:Q), over plain HTTP (no certificates here).

- With LTI platform storage offered (``lti_storage_target``; the course page answers
  ``lti.put_data`` / ``lti.get_data`` per the LTI Client Side postMessages spec), the launch
  completes inside the frame with no cookie of the gateway's (its state cookie, not
  ``SameSite=None; Secure`` over HTTP, is not sent on the frame's cross-site post, as a blocked
  third-party cookie would not be): the id_token is accepted and the teacher gets the gateway's
  picker in the frame.
- Without it, the launch stops in the frame at the gateway's page saying to open it in a new
  window (the state cookie missing).

What this cannot show: (1) the login page's own cookie check finding cookies blocked and offering
its new-window link: this headless chromium keeps third-party cookies whatever its profile says
(``block_third_party_cookies`` and ``--test-third-party-cookie-phaseout`` were tried), and lets
``localhost`` set a Secure cookie over HTTP, so the check passes; (2) the brokered launch going on
to the app from inside the frame, which needs the gateway's short-session cookie
(``SameSite=None; Secure; Partitioned``, HTTPS only); its attributes are checked in
test_lms_frames.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gateway import create_app

from test_end_to_end import serve
from test_lms_end_to_end import lms, register_lms  # noqa: F401  (the LMS peer)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_support import launch_chromium  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def platform(database_url, tmp_path, district, passwords, app_id):
    """The gateway on a real port of another site than the LMS's (localhost, not 127.0.0.1)."""
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "browser-secret",
                      "INSTANCE_PATH": str(tmp_path / "platform"), "ISSUER": "http://localhost"})
    with serve(app) as server:
        app.config["ISSUER"] = f"http://localhost:{server.server_port}"
        yield app
    app.extensions["gateway.db"].dispose()


@pytest.fixture
def browser_context():
    """A fresh context of Debian's chromium (skipped without it, except on CI)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context()
        yield context
        context.close()
        browser.close()


def framed_text(page, what: str, timeout: float = 20_000) -> str:
    """The text of the launch frame once ``what`` shows in it."""
    frame = page.frame(name="tool")
    frame.wait_for_selector(f"text={what}", timeout=timeout)
    return page.frame(name="tool").inner_text("body")


def test_launch_completes_in_the_frame_with_platform_storage(platform, lms, browser_context,
                                                             app_id, database):
    register_lms(platform, lms)
    lms.storage_target = "_parent"
    page = browser_context.new_page()
    page.goto(lms.base_url + "/course/edna-lms")
    # The id_token was accepted in the frame, Edna matched: the gateway's picker.
    assert "Choose the app for Biology 1" in framed_text(page, "Choose the app")
    assert page.evaluate("window.lmsMessages") == ["lti.put_data", "lti.get_data"]
    [key] = page.evaluate("Object.keys(window.lmsStorage)")
    assert key.startswith("gateway_state_")
    # The gateway kept no cookie in the browser: platform storage carried the state.
    assert [c for c in browser_context.cookies() if c["domain"] == "localhost"] == []


def test_without_platform_storage_the_frame_says_to_open_a_new_window(platform, lms,
                                                                      browser_context, app_id):
    register_lms(platform, lms)
    page = browser_context.new_page()
    page.goto(lms.base_url + "/course/edna-lms")
    text = framed_text(page, "Open the link in a new window")
    assert "Your browser blocked the gateway inside the course page" in text
    assert page.evaluate("window.lmsMessages") == []
