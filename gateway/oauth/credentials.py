"""Client identifiers, client secrets and access tokens: how they are made and how they are stored.

Client secrets are kept as salted scrypt hashes: a stolen database must not hand out working
credentials, and the cost (tens of milliseconds) is paid only when a client asks for a token.
Access tokens are random and high-entropy, so a plain SHA-256 is enough to keep them out of the
database while letting every API request find its token with one indexed lookup.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt at n=2**14, r=8, p=1 needs 16 MiB and about 50 ms: the interactive-login parameters.
_SCRYPT_N = 2 ** 14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_LENGTH = 32
_SALT_BYTES = 16


def generate_client_id() -> str:
    """A new public client identifier (URL-safe, so it survives HTTP Basic encoding untouched)."""
    return secrets.token_urlsafe(18)


def generate_client_secret() -> str:
    """A new client secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def generate_access_token() -> str:
    """A new opaque bearer token with 256 bits of entropy (RFC 6750 §2.1 b64token characters)."""
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=2 * 128 * r * n)


def hash_client_secret(secret: str) -> str:
    """The stored form of ``secret``: ``scrypt$n$r$p$salt$hash``, parameters kept so they can grow."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LENGTH)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_client_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches the stored hash (compared in constant time)."""
    try:
        algorithm, n, r, p, salt, digest = stored.split("$")
        if algorithm != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(secret, _unb64(salt), int(n), int(r), int(p), len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def hash_access_token(token: str) -> str:
    """The stored form of an access token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
