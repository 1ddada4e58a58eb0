"""The K-12 interoperability gateway: OneRoster 1.2 in and out, LTI 1.3, district-controlled sharing."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gateway.config import build_settings
from gateway.logs import configure_logging
from gateway.store.private import (PRIVATE_FILE_MODE, create_private_file, make_private_folder,
                                   protect_sqlite_files)

__all__ = ["create_app"]


def _instance_path(settings: Mapping[str, Any]) -> str | None:
    path = settings.get("INSTANCE_PATH") or os.environ.get("GATEWAY_INSTANCE_PATH")
    return str(Path(path).resolve()) if path else None


def _ensure_secret_key(app: Flask) -> None:
    """Use GATEWAY_SECRET_KEY, or a random key kept in the instance folder so sessions and
    encrypted keys survive restarts of a self-hosted install."""
    if app.config.get("SECRET_KEY"):
        return
    key_file = Path(app.instance_path) / "secret_key"
    if key_file.exists():
        # Made readable by an older version, or by hand: owner-only, like everything here.
        key_file.chmod(PRIVATE_FILE_MODE)
    else:
        create_private_file(key_file).write_text(secrets.token_urlsafe(48))
    app.config["SECRET_KEY"] = key_file.read_text().strip()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: defaults, then ``GATEWAY_*`` environment variables, then ``config``."""
    settings = build_settings(config)
    # Before Flask makes app.logger, which would otherwise get a handler of its own.
    configure_logging(str(settings["LOG_FORMAT"]))
    app = Flask(__name__, instance_path=_instance_path(settings))
    app.config.update(settings)
    if int(app.config["PROXY_COUNT"]):
        # The client address (throttling counts failures per address) is the one the trusted
        # proxies saw, not the last proxy's.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["PROXY_COUNT"]))
    # Owner-only: it holds the secret key and, by default, the SQLite store (every student record).
    make_private_folder(app.instance_path)
    _ensure_secret_key(app)

    from gateway import errors, http
    from gateway import database

    database.init_app(app)
    # The SQLite store (and the files SQLite keeps beside it) is created owner-only.
    protect_sqlite_files(database.get_database(app).engine)
    errors.register_error_handlers(app)
    http.init_app(app)
    return app
