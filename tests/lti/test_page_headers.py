"""Every HTML page the gateway serves carries its security headers; found by walking the app's
URL map, so a new page cannot be left out."""
from __future__ import annotations

import re

from gateway import create_app
from gateway.admin.accounts import create_admin
from gateway.store.models import utcnow
from gateway.http.headers import PAGE_CSP

from lti_support import TOOL, auth_request, portal_csrf, start_launch

METHODS = ("GET", "POST", "PUT", "DELETE")

# Every (endpoint, method) that answers a page to a browser, signed in or not. A new page makes
# the test below fail until it is listed here, after a look at its headers.
HTML_ROUTES = {
    ("home.index", "GET"),
    ("portal.login_form", "GET"), ("portal.login", "POST"), ("portal.logout", "POST"),
    ("portal.portal", "GET"), ("portal.start_launch", "POST"),
    ("portal.start_deep_linking", "POST"),
    ("lti.authorize", "GET"), ("lti.authorize", "POST"), ("lti.deep_linking_return", "POST"),
    # The LTI tool role's pages: framed by the registered LMSs only (none here).
    ("lms.login", "GET"), ("lms.login", "POST"), ("lms.launch", "POST"), ("lms.pick", "POST"),
    ("lms.register", "GET"),
    ("privacy.district_privacy", "GET"),
    ("admin.login_form", "GET"), ("admin.login", "POST"), ("admin.logout", "POST"),
    ("admin.invitation", "GET"), ("admin.accept", "POST"),
    ("admin.dashboard", "GET"), ("admin.audit", "GET"), ("admin.apps", "GET"),
    ("admin.connect_app", "POST"), ("admin.app_detail", "GET"), ("admin.app_policy", "POST"),
    ("admin.rotate", "POST"), ("admin.revoke", "POST"), ("admin.delete", "POST"), ("admin.people", "GET"),
    ("admin.reset_password", "POST"), ("admin.admins", "GET"), ("admin.invite", "POST"),
    ("admin.disable", "POST"), ("admin.ledger_page", "GET"), ("admin.ledger_export", "GET"),
    ("admin.verify", "POST"), ("admin.tools_page", "GET"), ("admin.start_registration", "POST"),
    ("admin.approve_tool", "POST"), ("admin.disable_tool", "POST"), ("admin.place_tool", "POST"),
    ("admin.remove_link", "POST"), ("admin.imports_page", "GET"), ("admin.upload_import", "POST"),
    ("admin.import_job", "GET"), ("admin.apply_import", "POST"),
    ("admin.set_tool_icon", "POST"), ("admin.ledger_export_pdf", "GET"),
    ("portal.tool_icon", "GET"),
    ("admin.reject_import", "POST"),
}


def every_route(app):
    """(endpoint, method, path) for every rule of ``app``, each variable part filled in; signing
    out comes last, so every other route is visited signed in."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?[A-Za-z_]+>", "x", rule.rule)
        routes += [(rule.endpoint, method, path) for method in METHODS if method in rule.methods]
    return sorted(routes, key=lambda route: (route[0] in ("portal.logout", "admin.logout"), route))


def visit_everything(app, browser, csrf_token: str = "") -> dict[tuple[str, str], object]:
    """Each route's response to ``browser`` (its forms carry ``csrf_token``)."""
    return {(endpoint, method): browser.open(path, method=method,
                                             data={"csrf_token": csrf_token})
            for endpoint, method, path in every_route(app)}


def html_routes(responses) -> set[tuple[str, str]]:
    return {route for route, response in responses.items() if response.mimetype == "text/html"}


def admin_browser(app, database):
    """A browser signed in to the admin console of d1, and its CSRF token."""
    with database.session_scope() as session:
        create_admin(session, district="d1", email="it@d1.test", role="district_admin",
                     password="correct horse battery", now=utcnow())
    browser = app.test_client()
    browser.get("/admin/login")
    with browser.session_transaction() as cookie:
        csrf = cookie["csrf_token"]
    response = browser.post("/admin/login", data={"email": "it@d1.test", "csrf_token": csrf,
                                                  "password": "correct horse battery"})
    assert response.status_code == 303
    with browser.session_transaction() as cookie:
        return browser, cookie["csrf_token"]


def test_every_html_page_carries_the_security_headers(app, client, sign_in, database):
    anonymous = visit_everything(app, app.test_client())
    signed_in = visit_everything(app, sign_in("lisa"), portal_csrf(client))
    admin = visit_everything(app, *admin_browser(app, database))
    assert admin[("admin.dashboard", "GET")].status_code == 200
    assert admin[("admin.logout", "POST")].status_code == 303
    # Every console route answered something meant for a person, never a crash.
    assert {route: r.status_code for route, r in admin.items() if r.status_code >= 500} == {}

    # The pages themselves were seen, not only their error pages and redirects.
    assert anonymous[("portal.login_form", "GET")].status_code == 200
    assert anonymous[("home.index", "GET")].status_code == 200
    assert signed_in[("portal.portal", "GET")].status_code == 200
    assert signed_in[("portal.logout", "POST")].status_code == 303
    assert html_routes(anonymous) | html_routes(signed_in) | html_routes(admin) == HTML_ROUTES
    for responses in (anonymous, signed_in, admin):
        for route, response in responses.items():
            assert response.headers["X-Content-Type-Options"] == "nosniff", route
            assert "Strict-Transport-Security" not in response.headers, route
            if response.mimetype == "text/html":
                csp = response.headers["Content-Security-Policy"]
                if route == ("portal.portal", "GET"):
                    # The launchpad also shows the tools' icons: its own, or their sites'.
                    assert re.fullmatch(re.escape(PAGE_CSP) + r"(; img-src 'self'( https://\S+)*)?",
                                        csp), route
                else:
                    assert csp == PAGE_CSP, route
                assert response.headers["X-Frame-Options"] == "DENY", route
            else:
                assert "Content-Security-Policy" not in response.headers, route


def test_an_https_gateway_sends_hsts_on_every_response(database_url, tmp_path):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "k",
                      "INSTANCE_PATH": str(tmp_path / "instance"),
                      "ISSUER": "https://gateway.test"})
    try:
        responses = visit_everything(app, app.test_client())
        assert html_routes(responses)
        for route, response in responses.items():
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000", route
            assert response.headers["X-Content-Type-Options"] == "nosniff", route
    finally:
        app.extensions["gateway.db"].dispose()


def test_the_auto_post_page_keeps_its_own_policy(client, tool, place, sign_in):
    sign_in("lisa")
    login = start_launch(client, place(tool.client_id))
    response = client.get("/lti/authorize",
                          query_string=auth_request(login, f"{TOOL}/math/launch"))

    assert response.status_code == 200
    [nonce] = re.findall(r'<script nonce="([^"]+)">', response.get_data(as_text=True))
    assert response.headers["Content-Security-Policy"] == (
        f"default-src 'none'; script-src 'nonce-{nonce}'; frame-ancestors 'none'; "
        "base-uri 'none'")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
