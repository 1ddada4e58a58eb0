"""The client secrets of SIS sources, encrypted at rest.

AES-256-GCM under a key derived from ``GATEWAY_SECRET_KEY`` by HKDF-SHA256 (RFC 5869), as the LTI
platform's signing keys are (:mod:`gateway.lti.keys`), rather than a key file of its own:
one secret to keep and back up, and every host that runs ``gateway sources run`` against a shared
PostgreSQL store can read the secrets when they share ``GATEWAY_SECRET_KEY``, whatever their
instance folders hold.

The source's token URL, REST URL and client_id are bound in as associated data: a store whose
rows were altered to send the secret to another address cannot decrypt it for that address.
"""
from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.errors import UsageError

_HKDF_INFO = b"k12-gateway/sis-sources/client-secrets/v1"
_NONCE_BYTES = 12


class SecretUnreadable(UsageError):
    """A source's client secret cannot be decrypted: GATEWAY_SECRET_KEY is not the one it was
    encrypted with, or the source's addresses were changed in the store."""


def secrets_key(secret_key: str | bytes) -> bytes:
    """The AES-256 key that encrypts sources' client secrets, derived from the app's secret."""
    if isinstance(secret_key, str):
        secret_key = secret_key.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key)


def _bound_to(base_url: str, token_url: str, client_id: str) -> bytes:
    return "\x1f".join((base_url, token_url, client_id)).encode("utf-8")


def seal_client_secret(key: bytes, base_url: str, token_url: str, client_id: str,
                       client_secret: str) -> bytes:
    """``nonce || AES-GCM(secret)``, bound to the source's URLs and client_id."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, client_secret.encode("utf-8"),
                                       _bound_to(base_url, token_url, client_id))


def open_client_secret(key: bytes, base_url: str, token_url: str, client_id: str,
                       sealed: bytes) -> str:
    """The secret sealed by :func:`seal_client_secret` for this source."""
    try:
        clear = AESGCM(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:],
                                    _bound_to(base_url, token_url, client_id))
    except InvalidTag as error:
        raise SecretUnreadable(
            "the source's client secret cannot be decrypted with this GATEWAY_SECRET_KEY (or its "
            "addresses were changed in the store): remove the source and add it again with its "
            "secret") from error
    return clear.decode("utf-8")
