"""Client identifiers, client secrets and access tokens: how they are made and how they are stored.

Client secrets are kept as salted scrypt hashes: a stolen database must not hand out working
credentials, and the cost (tens of milliseconds) is paid only when a client asks for a token.
Access tokens are random and high-entropy, so a plain SHA-256 is enough to keep them out of the
database while letting every API request find its token with one indexed lookup.
"""
from __future__ import annotations

import hashlib
import secrets

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
