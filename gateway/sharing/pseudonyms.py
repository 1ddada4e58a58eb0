"""Pseudonyms: stable per app, opaque, not joinable across apps, and reversible by the gateway.

A pseudonym is the deterministic authenticated encryption (AES-SIV, RFC 5297) of the clear value,
in unpadded URL-safe base64. The key is derived per app from the gateway's secret key with HKDF
(RFC 5869; the app id is the ``info``), so two apps receive unrelated values for the same record
and cannot join their data, while the gateway can turn a pseudonym an app sends back (a path
parameter, a by-id request) into the stored value without keeping a mapping table.

The namespace (``user``, ``class``, ``user.email``...) and the district are authenticated as
associated data: a user's pseudonym does not decrypt as a class id, nor in another district.
Pseudonyms only contain ``A-Z a-z 0-9 - _``, so they travel in URLs unescaped.
"""
from __future__ import annotations

import base64
import binascii
import functools

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# AES-SIV with a 512-bit key is AES-256 for both the MAC and the cipher.
_KEY_BYTES = 64
_SALT = b"k12-gateway/sharing/pseudonyms/v1"
# Far longer than any pseudonym of a 255-character sourcedId: anything longer is not one of ours.
_MAX_TOKEN = 1024
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def derive_app_key(secret_key: str | bytes, app_id: int) -> bytes:
    """The AES-SIV key of one app: HKDF-SHA256 over the gateway's secret, with the app id as info."""
    secret = secret_key.encode("utf-8") if isinstance(secret_key, str) else bytes(secret_key)
    if not secret:
        raise ValueError("pseudonyms need the gateway's SECRET_KEY")
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=_SALT,
                info=f"app:{int(app_id)}".encode("ascii")).derive(secret)


@functools.lru_cache(maxsize=256)
def _cipher(secret_key: str | bytes, app_id: int) -> AESSIV:
    # Deriving the key costs a few microseconds; keeping the cipher spares it on every request.
    return AESSIV(derive_app_key(secret_key, app_id))


class Pseudonymizer:
    """Encode and decode the pseudonyms one app sees in one district."""

    __slots__ = ("_cipher", "_district", "_encoded", "_decoded")

    def __init__(self, secret_key: str | bytes, app_id: int, district_id: int) -> None:
        self._cipher = _cipher(secret_key, int(app_id))
        self._district = str(int(district_id)).encode("ascii")
        # Per instance (one request): the same school, term or course id recurs on every row.
        self._encoded: dict[tuple[str, str], str] = {}
        self._decoded: dict[tuple[str, str], str | None] = {}

    def encode(self, namespace: str, value: str) -> str:
        """The pseudonym of ``value`` in ``namespace`` (an empty value stays empty)."""
        if not value:
            return value
        key = (namespace, value)
        found = self._encoded.get(key)
        if found is None:
            sealed = self._cipher.encrypt(value.encode("utf-8"),
                                          [namespace.encode("utf-8"), self._district])
            found = base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")
            self._encoded[key] = found
            self._decoded[(namespace, found)] = value
        return found

    def decode(self, namespace: str, token: str) -> str | None:
        """The clear value behind ``token`` in ``namespace``; None if it is not such a pseudonym."""
        key = (namespace, token)
        if key in self._decoded:
            return self._decoded[key]
        value = self._open(namespace, token)
        self._decoded[key] = value
        return value

    def _open(self, namespace: str, token: str) -> str | None:
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN:
            return None
        if not _TOKEN_ALPHABET.issuperset(token) or len(token) % 4 == 1:
            return None
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            clear = self._cipher.decrypt(sealed, [namespace.encode("utf-8"), self._district])
            value = clear.decode("utf-8")
        except (binascii.Error, ValueError, InvalidTag, UnicodeDecodeError):
            return None
        # base64 ignores the unused low bits of the last character: only the canonical spelling of
        # a pseudonym names the record, so an app never holds two ids for one record.
        return value if self.encode(namespace, value) == token else None
