"""A real HTTP server in a thread that answers as a test scripts it: a SIS that pages oddly,
refuses, stalls or is not OneRoster at all. Every request it received is kept."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    """A request the stub received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: str

    @property
    def form(self) -> dict[str, str]:
        """The urlencoded body's fields."""
        return {k: v[0] for k, v in parse_qs(self.body).items()}


@dataclass
class Answer:
    """What the stub answers: a status, headers, and a body (a dict or list is sent as JSON)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Route = Callable[[Seen], Answer]


class StubSource:
    """``answer(request) -> Answer`` served at ``self.base`` until :meth:`close`."""

    def __init__(self, answer: Route) -> None:
        self.seen: list[Seen] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Seen(self.command, parts.path,
                               {k: v[0] for k, v in parse_qs(parts.query).items()},
                               dict(self.headers.items()), self.rfile.read(length).decode())
                stub.seen.append(request)
                answer = answer_of(request)
                if answer.delay:
                    threading.Event().wait(answer.delay)
                body = answer.body
                if isinstance(body, (dict, list)):
                    payload = json.dumps(body).encode()
                    content_type = "application/json"
                else:
                    payload = (body or "").encode()
                    content_type = "text/html"
                try:
                    if "Date" in answer.headers:
                        self.send_response_only(answer.status)  # no Date of its own
                    else:
                        self.send_response(answer.status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = _handle

        answer_of = answer
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def gets(self, path_suffix: str = "") -> list[Seen]:
        """The GET requests whose path ends with ``path_suffix``."""
        return [r for r in self.seen if r.method == "GET" and r.path.endswith(path_suffix)]

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def token_answer(request: Seen, scope: str | None = None, token: str = "token-1",
                 expires_in: int = 3600) -> Answer:
    """A token endpoint that grants what it is asked (or ``scope``)."""
    return Answer(body={"access_token": token, "token_type": "Bearer", "expires_in": expires_in,
                        "scope": scope if scope is not None else request.form.get("scope", "")})
