"""Sources' client secrets at rest: sealed under GATEWAY_SECRET_KEY, bound to where they go."""
from __future__ import annotations

import pytest

from gateway.sis.secrets import (SecretUnreadable, open_client_secret, seal_client_secret,
                                 secrets_key)

URL, TOKEN_URL = "https://sis.example/ims/oneroster/rostering/v1p2", "https://sis.example/oauth/token"


def test_a_sealed_secret_opens_for_its_own_source_only():
    key = secrets_key("app-secret")
    sealed = seal_client_secret(key, URL, TOKEN_URL, "cid", "s3cret")
    assert b"s3cret" not in sealed
    assert open_client_secret(key, URL, TOKEN_URL, "cid", sealed) == "s3cret"
    # Two seals of one secret differ (a fresh nonce each time).
    assert seal_client_secret(key, URL, TOKEN_URL, "cid", "s3cret") != sealed
    # A row altered to send the secret elsewhere cannot open it.
    for args in ((URL, "https://attacker.example/oauth/token", "cid"), (URL, TOKEN_URL, "other")):
        with pytest.raises(SecretUnreadable):
            open_client_secret(key, *args, sealed)


def test_another_gateway_secret_key_cannot_open_it():
    sealed = seal_client_secret(secrets_key("app-secret"), URL, TOKEN_URL, "cid", "s3cret")
    with pytest.raises(SecretUnreadable) as error:
        open_client_secret(secrets_key("another"), URL, TOKEN_URL, "cid", sealed)
    assert str(error.value) == (
        "the source's client secret cannot be decrypted with this GATEWAY_SECRET_KEY (or its "
        "addresses were changed in the store): remove the source and add it again with its secret")
