"""Tools' public keys, and the verification of the JWTs tools sign (client assertions for the
token endpoint, deep linking responses).

LTI Security Framework §6.3: a tool publishes its keys at a JWKS URL, and a platform verifies a
tool's JWT with the key the header's ``kid`` names. :class:`ToolKeys` caches each JWKS for
``LTI_JWKS_CACHE_SECONDS`` and, when a token names a ``kid`` the cached set lacks (the tool
rotated its keys), fetches the set again once before refusing. A refetch is not repeated within
``LTI_JWKS_MIN_REFETCH_SECONDS``, so a stream of made-up ``kid``s cannot turn the platform into a
request amplifier against the tool.

:func:`verify_tool_jwt` refuses anything but RS256 before looking at a key: unsigned tokens
(``alg: none``) and HMAC tokens (``HS256``, which a confused verifier would check with the public
key as the secret) never reach signature verification.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.jws import extract_compact

from gateway.lti.vocabulary import ALGORITHM

JwksFetcher = Callable[[str], Mapping[str, Any]]


class TokenRejected(Exception):
    """A tool's JWT is not acceptable; the message says why (safe to show the tool)."""


class UnknownKey(TokenRejected):
    """The JWT names a ``kid`` the tool does not publish (even after a refetch)."""


class KeyFetchError(TokenRejected):
    """The tool's JWKS could not be fetched or is not a JWK Set."""


def http_fetcher(timeout: float, session: Any = None) -> JwksFetcher:
    """A fetcher that GETs a JWKS URL with ``requests`` (``timeout`` seconds, no redirects)."""
    import requests

    client = session or requests.Session()

    def fetch(url: str) -> Mapping[str, Any]:
        try:
            response = client.get(url, timeout=timeout, allow_redirects=False,
                                  headers={"Accept": "application/json"})
        except requests.RequestException as error:
            raise KeyFetchError(f"the tool's JWKS at {url} could not be fetched") from error
        if response.status_code != 200:
            raise KeyFetchError(f"the tool's JWKS at {url} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError as error:
            raise KeyFetchError(f"the tool's JWKS at {url} is not JSON") from error
        return body
    return fetch


def _rsa_keys(jwks: Any) -> dict[str, RSAKey]:
    """The RSA signing keys of a JWK Set, by ``kid`` (keys without a kid cannot be chosen)."""
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise KeyFetchError("the tool's JWKS is not a JWK Set (RFC 7517 §5)")
    found: dict[str, RSAKey] = {}
    for item in jwks["keys"]:
        if not isinstance(item, Mapping) or item.get("kty") != "RSA":
            continue
        kid = item.get("kid")
        if not isinstance(kid, str) or item.get("use", "sig") != "sig":
            continue
        if item.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            found[kid] = RSAKey.import_key(dict(item))
        except (JoseError, ValueError, TypeError):
            continue
    return found


@dataclass
class _Entry:
    keys: dict[str, RSAKey]
    fetched_at: float


class ToolKeys:
    """Each tool's JWKS, fetched on demand and cached; refetched once on an unknown ``kid``.

    One per application (a cache per process); thread-safe.
    """

    def __init__(self, fetch: JwksFetcher, cache_seconds: float, min_refetch_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fetch = fetch
        self.cache_seconds = cache_seconds
        self.min_refetch_seconds = min_refetch_seconds
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def _load(self, url: str) -> _Entry:
        entry = _Entry(_rsa_keys(self.fetch(url)), self.clock())
        with self._lock:
            self._entries[url] = entry
        return entry

    def key(self, kid: str, *, jwks_url: str | None,
            public_jwks: Mapping[str, Any] | None) -> RSAKey:
        """The tool's key ``kid``: from its registered JWK Set, or from its JWKS URL."""
        if public_jwks is not None:
            keys = _rsa_keys(public_jwks)
            if kid in keys:
                return keys[kid]
            raise UnknownKey(f"the tool has no registered key with kid {kid!r}")
        if not jwks_url:
            raise KeyFetchError("the tool has neither a JWKS URL nor registered keys")
        now = self.clock()
        entry = self._entries.get(url := jwks_url)
        if entry is None or now - entry.fetched_at >= self.cache_seconds:
            entry = self._load(url)
        elif kid not in entry.keys and now - entry.fetched_at >= self.min_refetch_seconds:
            # The tool may have rotated its keys since we fetched them (Moodle, oat-sa #68).
            entry = self._load(url)
        if kid in entry.keys:
            return entry.keys[kid]
        raise UnknownKey(f"the tool's JWKS has no key with kid {kid!r}")


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        compact = extract_compact(token.encode("ascii"))
        claims = json.loads(compact.payload)
    except (JoseError, UnicodeError, ValueError) as error:
        raise TokenRejected("the token is not a compact JWS (RFC 7515 §7.1)") from error
    if not isinstance(claims, dict):
        raise TokenRejected("the token's payload is not a JSON object")
    return dict(compact.protected), claims


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified: only to find out which tool must have signed it."""
    return _segments(token)[1]


def verify_tool_jwt(token: str, key_for: Callable[[str], RSAKey]) -> dict[str, Any]:
    """The claims of a JWT signed RS256 by the key ``key_for(kid)`` returns; signature only.

    Raises :class:`TokenRejected` for any other algorithm (``none``, ``HS256``...), a header
    without ``kid``, an unknown key (:class:`UnknownKey`) or a bad signature.
    """
    header, _ = _segments(token)
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(f"the token must be signed with {ALGORITHM}, "
                            f"not {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("the token's header names no key (kid)")
    key = key_for(kid)
    try:
        return jwt.decode(token, key, algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError) as error:
        raise TokenRejected("the token's signature does not verify") from error


def check_times(claims: Mapping[str, Any], now: float, leeway: int, max_age: int,
                max_lifetime: int) -> None:
    """``iat`` no later than now (+leeway) and no older than ``max_age``; ``exp`` not passed
    (-leeway) and at most ``max_lifetime`` after ``iat``; ``nbf``, if present, reached."""
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _number(iat) or not _number(exp):
        raise TokenRejected("the token must carry numeric iat and exp claims")
    if iat > now + leeway:
        raise TokenRejected("the token was issued in the future (iat)")
    if iat < now - max_age - leeway:
        raise TokenRejected(f"the token was issued more than {max_age} seconds ago (iat)")
    if exp <= now - leeway:
        raise TokenRejected("the token has expired (exp)")
    if exp - iat > max_lifetime:
        raise TokenRejected(f"the token may live at most {max_lifetime} seconds (exp - iat)")
    nbf = claims.get("nbf")
    if nbf is not None and (not _number(nbf) or nbf > now + leeway):
        raise TokenRejected("the token is not valid yet (nbf)")


def single_audience(claims: Mapping[str, Any], expected: str) -> bool:
    """Whether ``aud`` is exactly ``expected``: the string, or a list holding only it."""
    aud = claims.get("aud")
    if isinstance(aud, list):
        return aud == [expected]
    return aud == expected


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
