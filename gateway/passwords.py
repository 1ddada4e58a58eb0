"""Salted scrypt hashes (RFC 7914) for every secret a person or client presents: portal
passwords (hashed on import, never stored in clear) and OAuth client secrets.

Stored form: ``scrypt$n$r$p$salt$hash`` (URL-safe base64), parameters kept so they can grow.
scrypt at n=2**14, r=8, p=1 needs 16 MiB of memory per hash: the parameters commonly used for
interactive logins.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# The password rule, the same for `gateway users set-password` and for passwords imported from
# users.csv: a one-letter password must not sign anyone in, whichever way it arrived.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
PASSWORD_RULE = f"a password of {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"

_SCRYPT_N = 2 ** 14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_LENGTH = 32
_SALT_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length,
                          maxmem=2 * 128 * r * n)


def follows_password_rule(password: str) -> bool:
    """Whether ``password`` may be a portal password (see :data:`PASSWORD_RULE`)."""
    return MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH


# A well-formed hash (today's parameters, all-zero salt and digest) that no password matches in
# practice: verified in place of a missing hash, so that a failure costs the same scrypt work
# whether the account is unknown, has no password, or has a wrong one.
UNUSABLE_HASH = (f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
                 f"{_b64(bytes(_SALT_BYTES))}${_b64(bytes(_SCRYPT_LENGTH))}")


def hash_password(password: str) -> str:
    """The stored form of ``password``: a salted scrypt hash."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LENGTH)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the ``stored`` hash (compared in constant time)."""
    if not stored:
        return False
    try:
        algorithm, n, r, p, salt, digest = stored.split("$")
        if algorithm != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p), len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)
