"""The platform's signing keys: encrypted at rest, published with kids, rotated without breaking
tokens already signed; and the OpenID configuration that describes the platform."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from gateway.cli import cli
from gateway.lti.keys import (KeyDecryptionError, KeyRing, decrypt_private_key,
                                       derive_encryption_key, jwks_document, rotate_keys)
from gateway.store.lti import PlatformKey
from gateway.store.models import utcnow

WINDOW = dt.timedelta(seconds=310)  # id_token / hint lifetime 300 s + leeway 10 s


def stored_keys(database) -> list[PlatformKey]:
    with database.session_scope() as session:
        return list(session.execute(select(PlatformKey).order_by(PlatformKey.created_at)).scalars())


def test_jwks_publishes_an_rsa_2048_key_with_kid_alg_and_use(client, database):
    response = client.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    [key] = response.get_json()["keys"]
    assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}
    assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
    assert KeySet.import_key_set({"keys": [key]}).keys[0].raw_value.key_size == 2048
    [row] = stored_keys(database)
    assert row.kid == key["kid"]
    # The JWKS is the same on the next request: the key is made once.
    assert client.get("/.well-known/jwks.json").get_json() == {"keys": [key]}


def test_private_key_is_stored_encrypted_under_the_secret(app, database, client):
    client.get("/.well-known/jwks.json")
    [row] = stored_keys(database)
    blob = row.encrypted_private_key

    assert b"PRIVATE KEY" not in blob and b"\x30\x82" != blob[:2]  # not PEM, not bare DER
    key = decrypt_private_key(derive_encryption_key("test-secret-key"), row.kid, blob)
    assert key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(KeyDecryptionError, match="GATEWAY_SECRET_KEY"):
        decrypt_private_key(derive_encryption_key("another secret"), row.kid, blob)
    # The kid is bound to the ciphertext: a row's key cannot be passed off under another kid.
    with pytest.raises(KeyDecryptionError):
        decrypt_private_key(derive_encryption_key("test-secret-key"), "other-kid", blob)


def test_signed_tokens_name_their_kid_and_verify_against_the_jwks(client, database):
    ring = KeyRing("test-secret-key")
    with database.session_scope() as session:
        token = ring.sign(session, {"hello": "world"}, utcnow())
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    decoded = jwt.decode(token, keys, algorithms=["RS256"])

    assert decoded.claims == {"hello": "world"}
    assert decoded.header["alg"] == "RS256"
    assert decoded.header["kid"] == keys.keys[0].kid


def test_rotation_keeps_the_old_key_published_until_its_tokens_have_expired(database):
    encryption_key = derive_encryption_key("test-secret-key")
    start = utcnow()
    ring = KeyRing("test-secret-key")
    with database.session_scope() as session:
        old_token = ring.sign(session, {"n": 1}, start)
        old_kid = ring.current(session, start).kid
        rotation = rotate_keys(session, encryption_key, start + dt.timedelta(seconds=5), WINDOW)
        new_token = ring.sign(session, {"n": 2}, start + dt.timedelta(seconds=6))

    assert rotation.retired == old_kid and rotation.kid != old_kid and rotation.dropped == ()
    with database.session_scope() as session:
        # Right after the rotation both keys are published, the new one first.
        just_after = jwks_document(session, start + dt.timedelta(seconds=6), WINDOW)
        assert [k["kid"] for k in just_after["keys"]] == [rotation.kid, old_kid]
        keys = KeySet.import_key_set(just_after)
        assert jwt.decode(old_token, keys, algorithms=["RS256"]).claims == {"n": 1}
        assert jwt.decode(new_token, keys, algorithms=["RS256"]).claims == {"n": 2}
        assert jwt.decode(new_token, keys).header["kid"] == rotation.kid
        # Still published at the last moment a token it signed could be accepted...
        edge = jwks_document(session, start + dt.timedelta(seconds=5) + WINDOW - dt.timedelta(seconds=1), WINDOW)
        assert old_kid in [k["kid"] for k in edge["keys"]]
        # ...and gone after it.
        later = jwks_document(session, start + dt.timedelta(seconds=5) + WINDOW, WINDOW)
        assert [k["kid"] for k in later["keys"]] == [rotation.kid]

    with database.session_scope() as session:
        # The next rotation, long after, drops it from the store.
        again = rotate_keys(session, encryption_key, start + dt.timedelta(hours=1), WINDOW)
    assert again.dropped == (old_kid,) and again.retired == rotation.kid
    assert {row.kid for row in stored_keys(database)} == {rotation.kid, again.kid}


def test_keys_rotate_command(runner, client, database):
    first = client.get("/.well-known/jwks.json").get_json()["keys"][0]["kid"]

    result = runner.invoke(cli, ["keys", "rotate"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    new = lines[0].removeprefix("signing key: ")
    assert lines[1] == f"retired:     {first} (published 310 s more, until every token it signed has expired)"
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]] == [new, first]
    listed = runner.invoke(cli, ["keys", "list", "--json"])
    assert [(k["kid"], k["state"]) for k in json.loads(listed.output)] == [
        (new, "signing"), (first, "published")]


def test_openid_configuration_describes_the_platform(client):
    response = client.get("/.well-known/openid-configuration")

    assert response.status_code == 200
    body = response.get_json()
    assert body["issuer"] == "http://gateway.test"
    assert body["authorization_endpoint"] == "http://gateway.test/lti/authorize"
    assert body["token_endpoint"] == "http://gateway.test/lti/token"
    assert body["jwks_uri"] == "http://gateway.test/.well-known/jwks.json"
    assert body["registration_endpoint"] == "http://gateway.test/lti/register"
    assert body["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert body["token_endpoint_auth_signing_alg_values_supported"] == ["RS256"]
    assert body["id_token_signing_alg_values_supported"] == ["RS256"]
    assert body["response_types_supported"] == ["id_token"]
    assert body["scopes_supported"] == [
        "openid", "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
        "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]
    platform = body["https://purl.imsglobal.org/spec/lti-platform-configuration"]
    assert platform["product_family_code"] == "k12-gateway"
    assert platform["messages_supported"] == [{"type": "LtiResourceLinkRequest"},
                                              {"type": "LtiDeepLinkingRequest"}]


def test_urls_come_from_the_issuer_not_the_host_header(client):
    body = client.get("/.well-known/openid-configuration",
                      headers={"Host": "evil.example"}).get_json()
    assert body["token_endpoint"] == "http://gateway.test/lti/token"
