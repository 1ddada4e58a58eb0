"""JWTs the other party of an LTI exchange signs, and that party's public keys: one place for
every role of the gateway to verify them.

The platform role verifies what tools sign: client assertions at its token endpoint (RFC 7523,
:class:`ClientAssertion`) and deep linking responses (:func:`verify_message`); the tool role will
verify the platform's id_tokens the same way.

LTI Security Framework §6.3: a party publishes its keys at a JWKS URL, and the other verifies a
JWT with the key the header's ``kid`` names. :class:`JwksCache` caches each JWKS for
``LTI_JWKS_CACHE_SECONDS`` and, when a token names a ``kid`` the cached set lacks (the keys were
rotated), fetches the set again once before refusing. A refetch is not repeated within
``LTI_JWKS_MIN_REFETCH_SECONDS``, so a stream of made-up ``kid``s cannot turn the gateway into a
request amplifier against the other party.

Anything but RS256 is refused before a key is looked at: unsigned tokens (``alg: none``) and HMAC
tokens (``HS256``, which a confused verifier would check with the public key as the secret) never
reach signature verification. The registered claims (RFC 7519 §4.1) are checked by joserfc's
claims registry, which authlib's RFC 7523 support uses too, with the gateway's small explicit
leeway; on top of it the gateway asks for an ``aud`` that is exactly its own (no other audience
beside it), a recent ``iat`` and a near ``exp``. Every refusal is a :class:`TokenRejected` whose
message says why, in words safe to show the signer.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import RSAKey
from joserfc.jws import extract_compact

from gateway.lti.vocabulary import ALGORITHM

JwksFetcher = Callable[[str], Mapping[str, Any]]
KeyLookup = Callable[[str], RSAKey]
"""The signer's key with a ``kid``; raises :class:`UnknownKey` or :class:`KeyFetchError`."""

MAX_JTI_LENGTH = 255


class TokenRejected(Exception):
    """A JWT is not acceptable; the message says why (safe to show the signer)."""


class UnknownKey(TokenRejected):
    """The JWT names a ``kid`` the signer does not publish (even after a refetch)."""


class KeyFetchError(TokenRejected):
    """The signer's JWKS could not be fetched or is not a JWK Set."""


# -- the other party's keys -------------------------------------------------------------------

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


class JwksCache:
    """Each signer's JWKS, fetched on demand and cached; refetched once on an unknown ``kid``.

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
        """The signer's key ``kid``: from its registered JWK Set, or from its JWKS URL."""
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

    def lookup(self, *, jwks_url: str | None, public_jwks: Mapping[str, Any] | None) -> KeyLookup:
        """A ``kid -> key`` function over one signer's registered keys or JWKS URL."""
        return lambda kid: self.key(kid, jwks_url=jwks_url, public_jwks=public_jwks)


# -- the JWT --------------------------------------------------------------------------------

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
    """The claims of a JWT, unverified: only to find out who must have signed it."""
    return _segments(token)[1]


def signing_key_id(header: Mapping[str, Any]) -> str:
    """The ``kid`` of a JWS header that asks for RS256; :class:`TokenRejected` for any other
    algorithm (``none``, ``HS256``...) or a header without ``kid``."""
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(f"the token must be signed with {ALGORITHM}, "
                            f"not {header.get('alg')!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("the token's header names no key (kid)")
    return kid


def verify_signature(token: str, key_for: KeyLookup) -> dict[str, Any]:
    """The claims of a JWT signed RS256 by the key ``key_for(kid)`` returns; signature only.

    Raises :class:`TokenRejected` for another algorithm, a header without ``kid``, an unknown key
    (:class:`UnknownKey`) or a bad signature.
    """
    header, _ = _segments(token)
    key = key_for(signing_key_id(header))
    try:
        return jwt.decode(token, key, algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError) as error:
        raise TokenRejected("the token's signature does not verify") from error


def timestamp(now: dt.datetime) -> float:
    """A naive UTC datetime as a NumericDate (RFC 7519 §2)."""
    return now.replace(tzinfo=dt.timezone.utc).timestamp()


def single_audience(claims: Mapping[str, Any], expected: str) -> bool:
    """Whether ``aud`` is exactly ``expected``: the string, or a list holding only it."""
    aud = claims.get("aud")
    if isinstance(aud, list):
        return aud == [expected]
    return aud == expected


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_gateway_rules(claims: Mapping[str, Any], *, audience: str, now: float, leeway: int,
                         max_age: int, max_lifetime: int) -> None:
    """What the gateway asks beyond RFC 7519: ``aud`` exactly ``audience``; numeric ``iat`` and
    ``exp``, ``iat`` no older than ``max_age`` (+leeway), ``exp`` at most ``max_lifetime`` after
    ``iat``. A short-lived token bounds how long its single-use values must be remembered."""
    if not single_audience(claims, audience):
        raise TokenRejected(f"its aud must be exactly {audience}")
    iat, exp = claims.get("iat"), claims.get("exp")
    if not _number(iat) or not _number(exp):
        raise TokenRejected("the token must carry numeric iat and exp claims")
    if iat < now - max_age - leeway:
        raise TokenRejected(f"the token was issued more than {max_age} seconds ago (iat)")
    if exp - iat > max_lifetime:
        raise TokenRejected(f"the token may live at most {max_lifetime} seconds (exp - iat)")


def _claim_refusal(error: JoseError, *, issuer: str | None, audience: str) -> TokenRejected:
    """The :class:`TokenRejected` that says why joserfc's claims registry refused a claim."""
    claim = str(getattr(error, "claim", "")).split(",")[0]
    if isinstance(error, ExpiredTokenError):
        reason = "the token has expired (exp)"
    elif claim == "iat":
        reason = "the token was issued in the future (iat)"
    elif claim == "nbf":
        reason = "the token is not valid yet (nbf)"
    elif claim == "aud":
        reason = f"its aud must be exactly {audience}"
    elif claim == "iss" and issuer is not None:
        reason = f"its iss must be {issuer}"
    else:
        reason = f"its {claim or 'claims'} claim is not acceptable"
    return TokenRejected(reason)


def verify_message(token: str, key_for: KeyLookup, *, issuer: str, audience: str,
                   now: dt.datetime, leeway: int, max_age: int,
                   max_lifetime: int) -> dict[str, Any]:
    """The claims of a message the other party signed (a deep linking response, an id_token):
    signed RS256 by ``key_for(kid)``, ``iss`` exactly ``issuer``, ``aud`` exactly ``audience``,
    unexpired ``exp``, ``iat`` not in the future and no older than ``max_age``, a lifetime of at
    most ``max_lifetime``, ``nbf`` if present reached (all within ``leeway`` seconds). The
    message's own claims are the caller's to check."""
    claims = verify_signature(token, key_for)
    at = timestamp(now)
    _check_gateway_rules(claims, audience=audience, now=at, leeway=leeway, max_age=max_age,
                         max_lifetime=max_lifetime)
    registry = jwt.JWTClaimsRegistry(now=at, leeway=leeway,
                                     iss={"essential": True, "value": issuer},
                                     aud={"essential": True, "value": audience},
                                     exp={"essential": True}, iat={"essential": True})
    try:
        registry.validate(claims)
    except JoseError as error:
        raise _claim_refusal(error, issuer=issuer, audience=audience) from error
    return claims


# -- client assertions (RFC 7523) ----------------------------------------------------------

class ClientAssertion(JWTBearerClientAssertion):
    """Client authentication with a signed JWT ("private_key_jwt", RFC 7523 §2.2 and §3) as
    authlib verifies it -- the assertion taken apart, the client its ``sub`` names, the signature
    by that client's key, ``iss`` = ``sub``, ``aud``, ``exp``, ``nbf`` and ``iat`` within the
    leeway, a ``jti`` not seen before -- with the gateway's own rules on top: RS256 with a ``kid``
    before any key is fetched, the key found by ``kid`` (:class:`JwksCache`: one refetch on an
    unknown one), ``aud`` exactly ``audience``, a recent ``iat`` and a near ``exp``, a ``jti`` of
    bounded length.

    Use: ``ClientAssertion(...)(query_client, request)``, ``request`` having ``form`` and a
    ``client`` to set; it returns the client. Refusals raise :class:`TokenRejected`;
    ``query_client`` and ``jti_used`` raise what the caller wants said of an unknown client and
    of a used ``jti``. authlib reads the wall clock for ``exp``, ``nbf`` and ``iat``; ``now``,
    for the age and lifetime, must be the wall clock too.
    """

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, *, audience: str, keys_of: Callable[[Any], KeyLookup],
                 jti_used: Callable[[str, str], bool], now: dt.datetime, leeway: int,
                 max_age: int) -> None:
        super().__init__(leeway=leeway)
        self.audience = audience
        self.keys_of = keys_of
        self.jti_used = jti_used
        self.now = timestamp(now)
        self.max_age = max_age
        self.claims: dict[str, Any] = {}

    def get_audiences(self) -> list[str]:
        """This token endpoint's URL, the one audience an assertion may name (RFC 7523 §3 3.)."""
        return [self.audience]

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """authlib's parsing, then: RS256 with a ``kid``, and one client named as both ``iss``
        and ``sub`` (§3 1. and 2.), before anyone's keys are fetched."""
        try:
            header, claims = super().extract_assertion(assertion)
        except InvalidClientError as error:
            # Same words for every caller of this module, whatever authlib says.
            raise TokenRejected("the token is not a compact JWS (RFC 7515 §7.1)") from error
        signing_key_id(header)
        if not isinstance(claims.get("iss"), str) or claims.get("sub") != claims["iss"]:
            raise TokenRejected("its iss and sub must both be the client_id")
        return header, claims

    def resolve_client_public_key(self, client: Any) -> Callable[[Any], RSAKey]:
        """The client's key that the assertion's ``kid`` names."""
        lookup = self.keys_of(client)
        return lambda token: lookup(token.headers()["kid"])

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        """authlib's signature check and :meth:`verify_claims`; a bad signature in our words.
        The verified claims are kept as :attr:`claims`."""
        try:
            self.claims = super().process_assertion_claims(assertion, resolve_key)
        except InvalidClientError as error:
            if isinstance(error.__cause__, JoseError):
                raise TokenRejected("the token's signature does not verify") from error
            raise
        return self.claims

    def verify_claims(self, claims: dict[str, Any]) -> None:
        """The gateway's rules, then authlib's checks of the registered claims and the ``jti``."""
        _check_gateway_rules(claims, audience=self.audience, now=self.now, leeway=self.leeway,
                             max_age=self.max_age, max_lifetime=self.max_age)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LENGTH:
            raise TokenRejected("it must carry a jti")
        try:
            super().verify_claims(claims)
        except InvalidClientError as error:
            if isinstance(error.__cause__, JoseError):
                raise _claim_refusal(error.__cause__, issuer=None,
                                     audience=self.audience) from error
            raise TokenRejected(error.description) from error

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """Whether the ``jti`` is new for the client ``sub`` names (RFC 7523 §3 7.);
        ``jti_used`` may raise instead, to say so in its own words."""
        return not self.jti_used(claims["sub"], jti)
