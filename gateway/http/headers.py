"""Security headers on every response: what a browser may do with the gateway's pages.

* ``X-Content-Type-Options: nosniff`` everywhere, so a JSON body or a CSV is never run as a page
  or a script.
* On every HTML page a Content-Security-Policy, unless the view set a stricter one of its own
  (the LTI auto-post page, whose policy lets its one inline script run): the pages load only the
  stylesheet and the console's one script shipped in the package (``'self'``, never inline, no
  CDN), and nothing else (``default-src 'none'``). No page may be framed
  (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` for older browsers): the portal
  launches tools at the top level, never inside a frame of its own, so no gateway page ever needs
  to be framed, by a tool or by anyone (a framed sign-in page is a clickjacking target). The
  one exception is the LTI tool role's pages (``/lms/...``, and the authorization answer of a
  launch an LMS brokered): the registered LMSs frame them, so their ``frame-ancestors`` names
  those origins and no ``X-Frame-Options`` is sent (it cannot name several origins; browsers
  that know ``frame-ancestors`` ignore it anyway).
  There is no ``form-action``: browsers apply it to the redirects that follow a form post, and the
  portal's launch forms are answered with a redirect to the tool's login URL on another origin.
* ``Strict-Transport-Security`` on every response when the gateway is served over HTTPS
  (``GATEWAY_ISSUER`` starting with ``https://``; RFC 6797), so a browser never again sends the
  session cookie or a password over plain HTTP. No ``includeSubDomains``: the district's other
  hosts are not the gateway's to decide.
"""
from __future__ import annotations

from flask import Flask, Response

PAGE_CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'")
HSTS = "max-age=31536000"


def init_app(app: Flask) -> None:
    """Add the security headers to every response of ``app``."""
    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if response.mimetype == "text/html":
            headers.setdefault("Content-Security-Policy", PAGE_CSP)
            if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
                headers.setdefault("X-Frame-Options", "DENY")
        if str(app.config.get("ISSUER", "")).startswith("https://"):
            headers.setdefault("Strict-Transport-Security", HSTS)
        return response
