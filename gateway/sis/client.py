"""A client of a SIS's OneRoster 1.2 rostering REST service: OAuth 2.0 client credentials, then
every page of a collection, with the errors a source can answer with as classes.

- Token (RFC 6749 §4.4): HTTP Basic client authentication (§2.3.1) at the token URL, asking for
  the rostering scopes; a server that refuses a scope set (``invalid_scope``) is asked for a
  smaller one. The token is fetched again before it expires and once on a 401 mid-pull.
- Paging (1.2 REST binding §3.4): ``limit`` as large as the server takes (1000, or the binding's
  default 100 if it refuses that), the ``Link`` header's ``rel="next"`` followed while it points
  at the source itself, else ``offset`` with ``X-Total-Count``. A server that says there is more
  and returns nothing ends the collection, and a count that disagrees with the records received
  is an error: a partial collection must never reach a bulk import.
- Every failure is a :class:`SourceError` subclass with a one-line message naming the address.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import re
import time
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import urljoin

import orjson
import requests

from gateway.errors import GatewayError
from gateway.oneroster.vocabulary import (SCOPE_ROSTER, SCOPE_ROSTER_CORE,
                                          SCOPE_ROSTER_DEMOGRAPHICS)
from gateway.urls import url_origin

PAGE_SIZE = 1000
# The binding's default limit: every server takes it.
FALLBACK_PAGE_SIZE = 100
# A page of 1000 users is a few MB; a body past this is not a page of a rostering service.
MAX_BODY_BYTES = 64 * 1024 * 1024
# Statuses worth a few retries within one pull: the server or a proxy is briefly overloaded.
RETRIED_STATUSES = (429, 502, 503, 504)
RETRIES = 3
MAX_RETRY_WAIT_SECONDS = 30.0
# Fetch a token again this long before the server says it expires.
TOKEN_MARGIN_SECONDS = 30.0
# What to ask the token endpoint for, in order: a server that refuses one set (invalid_scope,
# e.g. because the client lacks demographics) is asked for the next.
SCOPE_CHOICES: tuple[tuple[str, ...], ...] = (
    (SCOPE_ROSTER, SCOPE_ROSTER_DEMOGRAPHICS),
    (SCOPE_ROSTER_CORE, SCOPE_ROSTER_DEMOGRAPHICS),
    (SCOPE_ROSTER,),
    (SCOPE_ROSTER_CORE,),
)
USER_AGENT = "k12-gateway-sis-pull"


class SourceError(GatewayError):
    """A pull from a SIS failed; the message says where and why, in one line."""


class SourceUnreachable(SourceError):
    """The source's address could not be reached (refused, unknown host, TLS failure)."""


class SourceTimeout(SourceError):
    """The source did not answer within the timeout."""


class CredentialsRefused(SourceError):
    """The token endpoint refused the client credentials (RFC 6749 §5.2 ``invalid_client``)."""


class NotOneRoster(SourceError):
    """The address answered, but not as an OAuth 2.0 token endpoint or a OneRoster 1.2
    rostering service."""


class SourceFailed(SourceError):
    """The source answered a request with an error status."""


class AccessRefused(SourceFailed):
    """The source refused a collection to this client (401/403 with a valid token): its scopes
    or its policy at the SIS leave it out."""

    def __init__(self, description: str, status: int) -> None:
        super().__init__(description)
        self.status_code = status


class PagingInconsistent(SourceError):
    """The source's pages disagree with its own count (or repeat): the collection is incomplete."""


def _short_reason(error: Exception) -> str:
    """The gist of a connection error (``Connection refused``), not urllib3's whole chain."""
    text = str(error)
    found = re.findall(r"\[Errno -?\d+\] ([^'\"\)\]]+)", text)
    if found:
        return found[-1].strip()
    if isinstance(error, requests.exceptions.SSLError):
        return "TLS handshake or certificate check failed"
    return "the connection failed"


def _server_date(response: requests.Response) -> dt.datetime | None:
    """The response's ``Date`` (RFC 9110 §6.6.1) as naive UTC, or None."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


class OneRosterClient:
    """One pull's conversation with a source: its token and the collections it reads.

    ``clock`` (monotonic seconds) and ``sleep`` are passed in so that expiry and retries can be
    tested without waiting.
    """

    def __init__(self, base_url: str, token_url: str, client_id: str, client_secret: str, *,
                 timeout: float = 60.0, page_size: int = PAGE_SIZE,
                 http: requests.Session | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.token_url = token_url
        self.timeout = timeout
        self.page_size = page_size
        self.http = http or requests.Session()
        self.http.headers["User-Agent"] = USER_AGENT
        self._credentials = (client_id, client_secret)
        self._clock = clock
        self._sleep = sleep
        self._token: str | None = None
        self._token_expires = 0.0
        self.granted_scopes: frozenset[str] | None = None
        # The source's clock at its first rostering answer: the anchor of the next delta.
        self.server_date: dt.datetime | None = None
        # Every rostering URL requested, in order (what a run reports it asked).
        self.requested: list[str] = []

    # ------------------------------------------------------------------------------ transport

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request; network failures become :class:`SourceError` subclasses."""
        try:
            response = self.http.request(method, url, timeout=(self.timeout, self.timeout),
                                         stream=True, **kwargs)
        except requests.exceptions.Timeout:
            raise SourceTimeout(f"{url}: no answer within {self.timeout:g} s "
                                "(GATEWAY_SIS_PULL_TIMEOUT_SECONDS)") from None
        except requests.exceptions.ConnectionError as error:
            raise SourceUnreachable(f"cannot reach {url}: {_short_reason(error)}") from None
        except requests.exceptions.RequestException as error:
            raise SourceUnreachable(f"cannot request {url}: {type(error).__name__}") from None
        try:
            body = bytearray()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    raise NotOneRoster(f"{url}: the answer is larger than {MAX_BODY_BYTES} bytes, "
                                       "not a page of a rostering service")
        except requests.exceptions.Timeout:
            raise SourceTimeout(f"{url}: no answer within {self.timeout:g} s "
                                "(GATEWAY_SIS_PULL_TIMEOUT_SECONDS)") from None
        except requests.exceptions.RequestException as error:
            raise SourceUnreachable(f"{url}: the connection broke while reading the answer "
                                    f"({_short_reason(error)})") from None
        finally:
            response.close()
        response._content = bytes(body)
        return response

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None

    # ---------------------------------------------------------------------------------- token

    def _fetch_token(self) -> None:
        """Trade the client credentials for a bearer token (RFC 6749 §4.4.2, §5.1)."""
        url = self.token_url
        for scopes in SCOPE_CHOICES:
            response = self._send("POST", url, auth=self._credentials, allow_redirects=False,
                                  data={"grant_type": "client_credentials",
                                        "scope": " ".join(scopes)})
            body = self._json(response)
            error = body.get("error") if isinstance(body, dict) else None
            if response.status_code == 200:
                self._take_token(body, scopes)
                return
            if response.status_code == 400 and error == "invalid_scope":
                continue
            if response.status_code == 401 or error in ("invalid_client", "unauthorized_client"):
                raise CredentialsRefused(
                    f"the token endpoint {url} refused the client credentials "
                    f"({response.status_code} {error or 'unauthorized'}): check the client_id "
                    "and secret")
            if response.status_code == 429:
                raise SourceFailed(f"the token endpoint {url} refuses this client for now after "
                                   f"failed attempts (429); try again in "
                                   f"{response.headers.get('Retry-After', 'a few')} s")
            if 300 <= response.status_code < 400:
                location = response.headers.get("Location", "elsewhere")
                raise NotOneRoster(f"the token endpoint {url} redirects to {location}: give the "
                                   "token URL itself with --token-url")
            raise NotOneRoster(f"{url} answered {response.status_code}"
                               f"{' (' + error + ')' if error else ''}, not as an OAuth 2.0 token "
                               "endpoint: give the SIS's token URL with --token-url")
        raise CredentialsRefused(f"the token endpoint {url} refused every rostering scope "
                                 "(invalid_scope): the client is not granted roster-core.readonly")

    def _take_token(self, body: Any, asked: tuple[str, ...]) -> None:
        url = self.token_url
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise NotOneRoster(f"{url} answered 200 without an access_token: not an OAuth 2.0 "
                               "token endpoint")
        if str(body.get("token_type", "bearer")).lower() != "bearer":
            raise NotOneRoster(f"{url} issued a {body.get('token_type')!r} token; OneRoster "
                               "uses bearer tokens")
        self._token = body["access_token"]
        expires_in = body.get("expires_in")
        valid = isinstance(expires_in, (int, float)) and expires_in > 0
        lifetime = float(expires_in) if valid else 3600.0
        self._token_expires = self._clock() + max(lifetime - TOKEN_MARGIN_SECONDS, lifetime / 2)
        # RFC 6749 §5.1: a server that omits scope granted what was asked.
        scope = body.get("scope")
        self.granted_scopes = frozenset(scope.split() if isinstance(scope, str) else asked)

    def _bearer(self) -> str:
        if self._token is None or self._clock() >= self._token_expires:
            self._fetch_token()
        assert self._token is not None
        return self._token

    def connect(self) -> None:
        """Fetch a token now, so that bad credentials fail before any page is read."""
        self._bearer()

    # ------------------------------------------------------------------------------ rostering

    def _get(self, url: str, params: Mapping[str, str] | None) -> requests.Response:
        """GET a rostering URL with the token, fetching a new one once on a 401 and waiting
        out brief overloads."""
        renewed = False
        attempt = 0
        while True:
            response = self._send("GET", url, params=params,
                                  headers={"Authorization": f"Bearer {self._bearer()}",
                                           "Accept": "application/json"})
            if response.status_code == 401 and not renewed:
                # Expired or revoked mid-pull: one new token, then the answer stands.
                self._token = None
                renewed = True
                continue
            if response.status_code in RETRIED_STATUSES and attempt < RETRIES:
                attempt += 1
                self._sleep(self._retry_wait(response, attempt))
                continue
            if self.server_date is None:
                self.server_date = _server_date(response)
            self.requested.append(response.url)
            return response

    @staticmethod
    def _retry_wait(response: requests.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            return min(float(retry_after), MAX_RETRY_WAIT_SECONDS)
        return min(2.0 ** (attempt - 1), MAX_RETRY_WAIT_SECONDS)

    def _check(self, response: requests.Response, collection: str) -> list[dict[str, Any]]:
        """The records of a collection page, or the error the answer amounts to."""
        url = response.url
        status = response.status_code
        body = self._json(response)
        if status != 200:
            described = body.get("imsx_description") if isinstance(body, dict) else None
            detail = f": {described}" if isinstance(described, str) and described else ""
            if status in (401, 403):
                raise AccessRefused(f"{url} refused this client ({status}){detail}", status)
            if status == 404:
                raise NotOneRoster(f"{url} answered 404: no OneRoster 1.2 rostering service here "
                                   "(its base URL ends in /ims/oneroster/rostering/v1p2)")
            raise SourceFailed(f"{url} answered {status}{detail}")
        if not isinstance(body, dict) or not isinstance(body.get(collection), list):
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise NotOneRoster(f"{url} answered 200 with {kind}, not a OneRoster 1.2 "
                               f"{collection!r} collection")
        records = body[collection]
        if not all(isinstance(record, dict) and isinstance(record.get("sourcedId"), str)
                   for record in records):
            raise NotOneRoster(f"{url}: a record of {collection!r} is not an object with a "
                               "sourcedId")
        return records

    def pages(self, collection: str, filter: str | None = None
              ) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
        """Each page of ``collection`` (optionally with a ``filter``): its records and the
        total the server announced (None if it announces none)."""
        url = f"{self.base_url}/{collection}"
        query = {"limit": str(self.page_size), **({"filter": filter} if filter else {})}
        params: dict[str, str] | None = query
        received = 0
        visited: set[str] = set()
        previous: list[str] = []
        while True:
            response = self._get(url, params)
            if (not visited and response.status_code == 400
                    and int(query["limit"]) > FALLBACK_PAGE_SIZE):
                # A server that refuses a large limit instead of capping it takes the default.
                query["limit"] = str(FALLBACK_PAGE_SIZE)
                continue
            records = self._check(response, collection)
            ids = [record["sourcedId"] for record in records]
            if ids and ids == previous:
                # A server that ignores offset answers every page alike: it would never end.
                raise PagingInconsistent(f"{response.url}: the same records as the page before; "
                                         "the source ignores the paging parameters")
            previous = ids
            visited.add(response.url)
            announced = response.headers.get("X-Total-Count", "").strip()
            total = int(announced) if announced.isdigit() else None
            received += len(records)
            yield records, total
            linked = response.links.get("next", {}).get("url")
            next_url = urljoin(response.url, linked) if linked else None
            # Links to another address are ignored: the token is never sent elsewhere.
            links_usable = "Link" in response.headers and (
                next_url is None or url_origin(next_url) == url_origin(self.base_url))
            if links_usable:
                more = next_url is not None
            elif total is not None:
                more = received < total
            else:
                more = bool(records)  # neither links nor a count: read until an empty page
            if not more or not records:
                # Done, or the server says there is more and gave nothing: either way the
                # records received must be all it counted.
                if total is not None and received != total:
                    raise PagingInconsistent(
                        f"{self.base_url}/{collection}: the source counted {total} records "
                        f"(X-Total-Count) but its pages held {received}")
                return
            if links_usable:
                assert next_url is not None
                if next_url in visited:
                    raise PagingInconsistent(f"{next_url}: the Link header's next page repeats "
                                             "an earlier one; the collection cannot be read whole")
                url, params = next_url, None
            else:
                url, params = f"{self.base_url}/{collection}", {**query, "offset": str(received)}
