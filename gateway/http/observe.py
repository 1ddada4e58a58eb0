"""What every request leaves behind: its id, its access log line, its metrics.

A WSGI middleware around the whole app (outside Flask, so it also sees the errors Flask's own
handlers answer and times the request's teardown, where its transaction commits):

* **Request id**: the client's ``X-Request-Id`` when it is sane (1 to 128 of ``A-Za-z0-9._-``;
  anything else could forge log lines or carry data), else a new random one. It is returned as
  ``X-Request-Id`` on every response, errors included, and is in every log line written while
  the request is served (:data:`gateway.logs.REQUEST_ID`), so a client's report finds its lines.
* **Access line** (``GATEWAY_ACCESS_LOG``): method, endpoint (the URL rule), path, status,
  duration and client address. The path never carries its query string: queries carry filters
  such as ``email='...'``, and personal data must not reach the logs.
* **Metrics** (``GATEWAY_METRICS``): :meth:`gateway.metrics.ProcessMetrics.observe_request`.

The URL rule is read from the request Flask made, which werkzeug leaves in the WSGI environment
(``werkzeug.request``) while the response starts: no hook runs inside Flask for it.
"""
from __future__ import annotations

import logging
import os
import re
import time
from typing import Any, Callable, Iterable

from gateway.logs import REQUEST_ID
from gateway.metrics import UNMATCHED, process_metrics

REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}\Z").match
ACCESS_LOGGER = "gateway.access"

access_logger = logging.getLogger(ACCESS_LOGGER)


def new_request_id() -> str:
    """A fresh request id: 96 random bits, hex."""
    return os.urandom(12).hex()


def request_id_from(header: str | None) -> str:
    """The request id of a request whose ``X-Request-Id`` is ``header``: the header when sane,
    else a new one."""
    if header is not None and _SANE_REQUEST_ID(header):
        return header
    return new_request_id()


class Observer:
    """WSGI middleware: request ids, access lines, request metrics (see the module)."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]], *, access_log: bool,
                 metrics: bool) -> None:
        self.wsgi_app = wsgi_app
        self.access_log = access_log
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        context_token = REQUEST_ID.set(request_id)
        # The status, and Flask's request: it is in the environment while the response starts,
        # and removed when Flask's request context ends. 500 and none when the app raised
        # instead of answering (the server answers 500 then).
        seen: list[Any] = [500, None]

        def start(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen[0] = int(status_line[:3])
            seen[1] = environ.get("werkzeug.request")
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status_line, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            if self.access_log or self.metrics:
                self._record(environ, seen[0], seen[1], time.perf_counter() - started, request_id)
            REQUEST_ID.reset(context_token)

    def _record(self, environ: dict[str, Any], status: int, request: Any, seconds: float,
                request_id: str) -> None:
        rule = getattr(request, "url_rule", None)
        endpoint = rule.rule if rule is not None else UNMATCHED
        method = environ.get("REQUEST_METHOD", "")
        if self.metrics:
            process_metrics().observe_request(endpoint, method, status, seconds)
        if self.access_log and access_logger.isEnabledFor(logging.INFO):
            if request is not None:
                path, client = request.path, request.remote_addr
            else:
                path, client = environ.get("PATH_INFO", ""), environ.get("REMOTE_ADDR")
            access_logger.info("request", extra={"fields": {
                "request_id": request_id, "method": method, "endpoint": endpoint, "path": path,
                "status": status, "duration_ms": round(seconds * 1000, 3), "client": client}})
