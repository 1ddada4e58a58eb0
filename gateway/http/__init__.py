"""The HTTP layer: blueprints only. Each view parses, authorizes, calls a service, serializes."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register every blueprint of the gateway, the policy cache and rate limits they share,
    and what every request leaves behind (request id, access line, metrics)."""
    from gateway.http import (admin, events, exports, forms, gradebook, headers, home, limits,
                              lms, lti, oauth, observe, ops, portal, privacy, resources, rostering,
                              visibility)

    # Outermost: it times and logs the whole request, and ids every response, errors included.
    app.wsgi_app = observe.Observer(app.wsgi_app, access_log=bool(app.config["ACCESS_LOG"]),
                                    metrics=bool(app.config["METRICS"]))
    # First of the hooks: a request over its limit is refused before anything else is done.
    limits.init_app(app)
    visibility.init_app(app)
    headers.init_app(app)
    forms.init_app(app)
    app.register_blueprint(ops.blueprint)
    ops.init_app(app)
    app.register_blueprint(home.blueprint)
    app.register_blueprint(lti.blueprint)
    app.register_blueprint(lms.blueprint)
    app.register_blueprint(oauth.blueprint)
    app.register_blueprint(portal.blueprint)
    app.register_blueprint(rostering.blueprint)
    app.register_blueprint(resources.blueprint)
    app.register_blueprint(gradebook.blueprint)
    app.register_blueprint(exports.blueprint)
    app.register_blueprint(events.blueprint)
    app.register_blueprint(admin.blueprint)
    app.register_blueprint(privacy.blueprint)
