"""How secrets and tokens are made and stored."""
from __future__ import annotations

import hashlib

from gateway.oauth.credentials import (generate_access_token, generate_client_id,
                                       generate_client_secret, hash_access_token,
                                       hash_client_secret, verify_client_secret)


def test_client_secret_hash_verifies_only_the_secret():
    secret = generate_client_secret()
    stored = hash_client_secret(secret)

    assert secret not in stored
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_client_secret(secret, stored)
    assert not verify_client_secret(secret + "x", stored)
    assert not verify_client_secret("", stored)


def test_each_hash_has_its_own_salt():
    secret = generate_client_secret()
    first, second = hash_client_secret(secret), hash_client_secret(secret)

    assert first != second
    assert verify_client_secret(secret, first) and verify_client_secret(secret, second)


def test_a_malformed_stored_hash_never_verifies():
    for stored in ("", "plain", "md5$1$1$1$AA$AA", "scrypt$x$8$1$AA$AA", "scrypt$16384$8$1$!!$AA"):
        assert not verify_client_secret("secret", stored)


def test_generated_values_are_long_random_and_url_safe():
    values = [generate_client_id(), generate_client_secret(), generate_access_token()]
    assert len(values[0]) == 24
    assert len(values[1]) == len(values[2]) == 43
    assert all(set(v) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
               for v in values)
    assert generate_access_token() != values[2]


def test_access_token_hash_is_hex_sha256():
    assert hash_access_token("abc") == hashlib.sha256(b"abc").hexdigest()


def test_client_ids_and_secrets_never_start_with_a_dash(monkeypatch):
    # A leading dash makes `gateway apps revoke CLIENT_ID` (and `curl -u ID:SECRET`) read the
    # credential as an option; token_urlsafe starts with one about once in 64 draws.
    import secrets

    draws = iter(["-dash-first", "fine-one", "-again", "fine-two"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes: next(draws))
    assert generate_client_id() == "fine-one"
    assert generate_client_secret() == "fine-two"
