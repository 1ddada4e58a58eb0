"""Logging: one JSON object per line on stderr (``GATEWAY_LOG_FORMAT=json``, the default) or
plain text for humans (``text``), and the id of the request being served in every line logged
while it is served. No web framework here: :mod:`gateway.http.observe` sets the request id.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, ``request_id``
inside a request, ``exception`` when there is one, and the ``fields`` a caller passes
(``extra={"fields": {...}}``), such as those of the access line.
"""
from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any

import orjson

ROOT_LOGGER = "gateway"
"""The logger of the whole package (also the Flask app's ``app.logger``)."""

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("gateway_request_id",
                                                                        default=None)
"""The id of the request this context is serving, or None."""

FORMATS = ("json", "text")


def _timestamp(record: logging.LogRecord) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + \
        f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        """The line for ``record``."""
        entry: dict[str, Any] = {"time": _timestamp(record), "level": record.levelname,
                                 "logger": record.name, "message": record.getMessage()}
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # default=str: a field of an unexpected type must not lose the line.
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """A record as one line for a person: time, level, logger, request id, message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The line for ``record``."""
        request_id = REQUEST_ID.get()
        parts = [_timestamp(record), record.levelname, record.name]
        if request_id is not None:
            parts.append(f"[{request_id}]")
        parts.append(record.getMessage())
        fields = getattr(record, "fields", None)
        if fields:
            parts.extend(f"{name}={value}" for name, value in fields.items()
                         if name != "request_id")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is written (test runners replace it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        """The current standard error."""
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging(log_format: str) -> None:
    """Send the package's log lines to stderr in ``log_format`` (``json`` or ``text``), at INFO
    and above. Idempotent: the handler is made once per process and its format replaced."""
    if log_format not in FORMATS:
        raise ValueError(f"GATEWAY_LOG_FORMAT={log_format!r}: use one of {', '.join(FORMATS)}")
    logger = logging.getLogger(ROOT_LOGGER)
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        logger.addHandler(handler)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
