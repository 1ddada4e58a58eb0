"""The HTTP layer: blueprints only. Each view parses, authorizes, calls a service, serializes."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every blueprint of the gateway, and the policy cache they share."""
    from gateway.http import headers, home, lti, oauth, portal, rostering, visibility

    visibility.init_app(app)
    headers.init_app(app)
    app.register_blueprint(home.blueprint)
    app.register_blueprint(lti.blueprint)
    app.register_blueprint(oauth.blueprint)
    app.register_blueprint(portal.blueprint)
    app.register_blueprint(rostering.blueprint)
