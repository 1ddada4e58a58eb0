"""The gateway's own signing keys: RSA 2048, encrypted at rest, published as a JWK Set.

LTI Security Framework §6.1: each party signs its messages with RS256 and publishes its public
keys, each with a ``kid``, at a JWKS URL (the gateway's is ``/.well-known/jwks.json``); the other
party picks the key by the ``kid`` of the JWT header. A key's ``kid`` is its RFC 7638 thumbprint.
The platform role signs its launches with these keys; the other party's keys are
:mod:`gateway.lti.signed`'s.

At rest the private key is encrypted with AES-256-GCM under a key derived from
``GATEWAY_SECRET_KEY`` by HKDF-SHA256 (RFC 5869), the key's ``kid`` bound in as associated data
so that one row's ciphertext cannot be swapped into another. A stolen database therefore holds no
usable signing key.

Rotation (``gateway keys rotate``) adds a key that signs from then on and retires the old one,
which stays in the JWKS for :func:`publication_window` after its retirement: the longest a token
it signed can still be accepted (its lifetime plus the clock leeway). Only then is it dropped.
"""
from __future__ import annotations

import datetime as dt
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from joserfc.jws import extract_compact
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.lti.vocabulary import ALGORITHM
from gateway.store.lti import PlatformKey

KEY_SIZE = 2048
_HKDF_INFO = b"k12-gateway/lti/platform-signing-keys/v1"
_NONCE_BYTES = 12


class KeyDecryptionError(UsageError):
    """A stored platform key cannot be decrypted: GATEWAY_SECRET_KEY is not the one it was
    encrypted with. Restore that secret, or run `gateway keys rotate` to start a new key."""


class UntrustedToken(Exception):
    """A token that claims to be signed by this platform is not (bad signature, unknown kid)."""


def derive_encryption_key(secret_key: str | bytes) -> bytes:
    """The AES-256 key that encrypts platform keys, derived from the app's secret (RFC 5869)."""
    if isinstance(secret_key, str):
        secret_key = secret_key.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key)


def encrypt_private_key(encryption_key: bytes, kid: str, key: rsa.RSAPrivateKey) -> bytes:
    """``nonce || AES-GCM(PKCS#8 DER)``, with ``kid`` as associated data."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(encryption_key).encrypt(nonce, der, kid.encode("utf-8"))


def decrypt_private_key(encryption_key: bytes, kid: str, blob: bytes) -> rsa.RSAPrivateKey:
    """The private key stored as ``blob`` (see :func:`encrypt_private_key`)."""
    try:
        der = AESGCM(encryption_key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:],
                                             kid.encode("utf-8"))
    except InvalidTag as error:
        raise KeyDecryptionError(f"platform key {kid} cannot be decrypted with this "
                                 "GATEWAY_SECRET_KEY") from error
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def public_jwk(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> dict[str, Any]:
    """The public JWK of ``key`` with its thumbprint ``kid``, ``alg`` RS256 and ``use`` sig."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    jwk = RSAKey.import_key(public)
    return {**jwk.as_dict(private=False), "kid": jwk.thumbprint(), "alg": ALGORITHM, "use": "sig"}


def publication_window(token_lifetimes: list[int], leeway: int) -> dt.timedelta:
    """How long a retired key stays published: the longest lifetime of a token it signs, plus
    the leeway its verifier may allow."""
    return dt.timedelta(seconds=max(token_lifetimes) + leeway)


def create_key(session: Session, encryption_key: bytes, now: dt.datetime) -> PlatformKey:
    """Generate a key pair, store it encrypted and return its row (flushed)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    jwk = public_jwk(private)
    row = PlatformKey(kid=jwk["kid"], encrypted_private_key=encrypt_private_key(
        encryption_key, jwk["kid"], private), public_jwk=jwk, created_at=now)
    session.add(row)
    session.flush()
    return row


def current_key(session: Session) -> PlatformKey | None:
    """The key that signs now: the newest one not retired."""
    return session.execute(
        select(PlatformKey).where(PlatformKey.retired_at.is_(None))
        .order_by(PlatformKey.created_at.desc(), PlatformKey.kid).limit(1)).scalar_one_or_none()


def published_keys(session: Session, now: dt.datetime, window: dt.timedelta) -> list[PlatformKey]:
    """The keys in the JWKS: the current one and those retired less than ``window`` ago."""
    return list(session.execute(
        select(PlatformKey).where(PlatformKey.retired_at.is_(None)
                                  | (PlatformKey.retired_at > now - window))
        .order_by(PlatformKey.created_at.desc(), PlatformKey.kid)).scalars())


def jwks_document(session: Session, now: dt.datetime, window: dt.timedelta) -> dict[str, Any]:
    """The platform's JWK Set (RFC 7517 §5)."""
    return {"keys": [row.public_jwk for row in published_keys(session, now, window)]}


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the new signing key, the key it retired, and the keys dropped."""

    kid: str
    retired: str | None
    dropped: tuple[str, ...]


def rotate_keys(session: Session, encryption_key: bytes, now: dt.datetime,
                window: dt.timedelta) -> Rotation:
    """Start signing with a new key; keep retired keys published for ``window``, then drop them."""
    retired = []
    for row in session.execute(select(PlatformKey).where(PlatformKey.retired_at.is_(None))).scalars():
        row.retired_at = now
        retired.append(row.kid)
    dropped = tuple(session.execute(select(PlatformKey.kid).where(
        PlatformKey.retired_at <= now - window)).scalars())
    if dropped:
        session.execute(delete(PlatformKey).where(PlatformKey.kid.in_(dropped)))
    session.flush()
    row = create_key(session, encryption_key, now)
    return Rotation(kid=row.kid, retired=retired[0] if retired else None, dropped=dropped)


class KeyRing:
    """Signs with the current platform key and verifies the platform's own tokens.

    Decrypted keys are cached by ``kid`` (a kid always names the same key). Which key is current,
    and which are published, is read again after :attr:`refresh_seconds`: a rotation made by
    another process (``gateway keys rotate``) takes effect within that time, which is harmless
    because the previous key stays published far longer. Thread-safe; one per application.
    """

    refresh_seconds = 5.0

    def __init__(self, secret_key: str | bytes, clock: Callable[[], float] = time.monotonic) -> None:
        self.encryption_key = derive_encryption_key(secret_key)
        self.clock = clock
        self._private: dict[str, RSAKey] = {}
        self._public: dict[str, RSAKey] = {}
        self._current: tuple[str, float] | None = None
        self._published_at: float | None = None
        self._lock = threading.Lock()

    def _signing_key(self, row: PlatformKey) -> RSAKey:
        key = self._private.get(row.kid)
        if key is None:
            private = decrypt_private_key(self.encryption_key, row.kid, row.encrypted_private_key)
            key = RSAKey.import_key(private, {"kid": row.kid})
            with self._lock:
                self._private[row.kid] = key
        return key

    def current(self, session: Session, now: dt.datetime) -> PlatformKey:
        """The current key, created on first use."""
        return current_key(session) or create_key(session, self.encryption_key, now)

    def _current_signing_key(self, session: Session, now: dt.datetime) -> RSAKey:
        cached = self._current
        if cached is not None and self.clock() - cached[1] < self.refresh_seconds:
            return self._private[cached[0]]
        row = current_key(session)
        if row is None:
            # Not remembered until committed: if this request rolls back, the key never existed.
            return self._signing_key(create_key(session, self.encryption_key, now))
        key = self._signing_key(row)
        self._current = (row.kid, self.clock())
        return key

    def sign(self, session: Session, claims: dict[str, Any], now: dt.datetime) -> str:
        """A compact JWS of ``claims`` signed RS256 with the current key, its ``kid`` in the header."""
        key = self._current_signing_key(session, now)
        return jwt.encode({"alg": ALGORITHM, "typ": "JWT", "kid": key.kid}, claims, key,
                          algorithms=[ALGORITHM])

    def signing_pems(self, session: Session, now: dt.datetime) -> tuple[str, str]:
        """The current key as PEM (private PKCS#8, public SPKI): for pylti1p3, which signs the
        tool role's messages and client assertions with the same key the JWKS publishes."""
        key = self._current_signing_key(session, now)
        return (key.as_pem(private=True).decode("ascii"),
                key.as_pem(private=False).decode("ascii"))

    def _published_key(self, session: Session, kid: str, now: dt.datetime,
                       window: dt.timedelta) -> RSAKey | None:
        fresh = self._published_at is not None and self.clock() - self._published_at < self.refresh_seconds
        if not fresh or kid not in self._public:
            keys = {row.kid: RSAKey.import_key(row.public_jwk)
                    for row in published_keys(session, now, window)}
            with self._lock:
                self._public = keys
                self._published_at = self.clock()
        return self._public.get(kid)

    def verify(self, session: Session, token: str, now: dt.datetime,
               window: dt.timedelta) -> dict[str, Any]:
        """The claims of a token this platform signed with a published key (signature only: the
        caller checks the claims); :class:`UntrustedToken` otherwise."""
        try:
            header = extract_compact(token.encode("ascii")).protected
        except (JoseError, UnicodeError, ValueError) as error:
            raise UntrustedToken("not a compact JWS") from error
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise UntrustedToken("not signed RS256 with a key id")
        key = self._published_key(session, header["kid"], now, window)
        if key is None:
            raise UntrustedToken("unknown key id")
        try:
            return jwt.decode(token, key, algorithms=[ALGORITHM]).claims
        except (JoseError, ValueError) as error:
            raise UntrustedToken("bad signature") from error
