"""The HTTP layer: blueprints only. Each view parses, authorizes, calls a service, serializes."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every blueprint of the gateway."""
    from gateway.http import home, lti, oauth, portal, rostering

    app.register_blueprint(home.blueprint)
    app.register_blueprint(lti.blueprint)
    app.register_blueprint(oauth.blueprint)
    app.register_blueprint(portal.blueprint)
    app.register_blueprint(rostering.blueprint)
