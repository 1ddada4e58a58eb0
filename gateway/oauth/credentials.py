"""Client identifiers, client secrets and access tokens: how they are made and how they are stored.

Client secrets are kept as salted scrypt hashes: a stolen database must not hand out working
credentials, and the cost (tens of milliseconds) is paid only when a client asks for a token.
Access tokens are random and high-entropy, so a plain SHA-256 is enough to keep them out of the
database while letting every API request find its token with one indexed lookup.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from typing import Mapping
from urllib.parse import unquote

from gateway.passwords import hash_password, verify_password


def _argument_safe_token(nbytes: int) -> str:
    """``secrets.token_urlsafe(nbytes)`` that never starts with ``-``: credentials are pasted as
    command-line arguments (``gateway apps revoke CLIENT_ID``, ``curl -u ID:SECRET``), where a
    leading dash reads as an option."""
    while True:
        token = secrets.token_urlsafe(nbytes)
        if not token.startswith("-"):
            return token


def generate_client_id() -> str:
    """A new public client identifier (URL-safe, so it survives HTTP Basic encoding untouched)."""
    return _argument_safe_token(18)


def generate_client_secret() -> str:
    """A new client secret with 256 bits of entropy."""
    return _argument_safe_token(32)


def generate_access_token() -> str:
    """A new opaque bearer token with 256 bits of entropy (RFC 6750 §2.1 b64token characters)."""
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    """The stored form of ``secret`` (the same salted scrypt as every other secret)."""
    return hash_password(secret)


def verify_client_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches the stored hash (compared in constant time)."""
    return verify_password(stored, secret)


def hash_access_token(token: str) -> str:
    """The stored form of an access token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def presented_credentials(authorization: str | None,
                          form: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The (client_id, client_secret) a token request presents: from its HTTP Basic header
    (RFC 6749 §2.3.1, each part form-urlencoded before encoding), else from its form fields.
    Either may be None; nothing is verified here. Decoded as leniently as authlib decodes it, so
    that this is the client_id authlib then authenticates."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() == "basic" and encoded.strip():
        try:
            decoded = base64.b64decode(encoded.strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        client_id, colon, secret = decoded.partition(":")
        return unquote(client_id), (unquote(secret) if colon else None)
    return form.get("client_id"), form.get("client_secret")
