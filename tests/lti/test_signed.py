"""gateway.lti.signed on its own, as either LTI role uses it: a message the other party signed,
and a client assertion, verified without a request, a store or the platform."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.lti.signed import ClientAssertion, TokenRejected, timestamp, verify_message

from lti_support import ToolKeyPair

NOW = dt.datetime(2026, 12, 5, 10, 0, 0)
AT = int(timestamp(NOW))
PLATFORM = "https://platform.example"
TOKEN_URL = "https://gateway.example/lti/token"


@pytest.fixture(scope="module")
def keys() -> ToolKeyPair:
    return ToolKeyPair.generate()


def lookup(keys: ToolKeyPair):
    return {keys.kid: keys.private}.__getitem__


def message(keys: ToolKeyPair, **claims: Any) -> str:
    base = {"iss": PLATFORM, "aud": "tool-client-id", "iat": AT, "exp": AT + 60, "nonce": "n"}
    base.update(claims)
    return keys.sign({k: v for k, v in base.items() if v is not None})


def verify(token: str, keys: ToolKeyPair) -> dict[str, Any]:
    return verify_message(token, lookup(keys), issuer=PLATFORM, audience="tool-client-id",
                          now=NOW, leeway=10, max_age=300, max_lifetime=3600)


def test_a_message_from_the_expected_issuer_to_us_is_accepted(keys):
    assert verify(message(keys), keys)["nonce"] == "n"


@pytest.mark.parametrize("claims, reason", [
    ({"iss": "https://other.example"}, f"its iss must be {PLATFORM}"),
    ({"aud": ["tool-client-id", "someone-else"]}, "its aud must be exactly tool-client-id"),
    ({"iat": None}, "the token must carry numeric iat and exp claims"),
    ({"exp": AT - 11}, "the token has expired (exp)"),
    ({"iat": AT + 11, "exp": AT + 71}, "the token was issued in the future (iat)"),
    ({"nbf": AT + 11}, "the token is not valid yet (nbf)"),
    ({"iat": AT - 311}, "the token was issued more than 300 seconds ago (iat)"),
    ({"exp": AT + 3601}, "the token may live at most 3600 seconds (exp - iat)"),
])
def test_a_message_is_refused_for_each_claim_out_of_bounds(keys, claims, reason):
    with pytest.raises(TokenRejected) as refused:
        verify(message(keys, **claims), keys)
    assert str(refused.value) == reason


@dataclass
class Request:
    form: dict[str, str]
    client: Any = None


class Client:
    """What authlib asks of an authenticated client."""

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return (method, endpoint) == ("private_key_jwt", "token")


def authenticate(keys: ToolKeyPair, used: set[str], **claims: Any):
    assertion = {"iss": "tool", "sub": "tool", "aud": TOKEN_URL, "iat": AT, "exp": AT + 60,
                 "jti": "j1", **claims}
    checker = ClientAssertion(audience=TOKEN_URL, keys_of=lambda client: lookup(keys),
                              jti_used=lambda client_id, jti: (client_id, jti) in used, now=NOW,
                              leeway=10, max_age=300)
    form = {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": keys.sign(assertion)}
    return checker, checker(lambda client_id: Client() if client_id == "tool" else None,
                            Request(form))


def test_a_client_assertion_authenticates_its_client(keys, monkeypatch):
    # authlib checks exp, nbf and iat on the wall clock: hold it at NOW.
    monkeypatch.setattr("time.time", lambda: AT)
    checker, client = authenticate(keys, set())
    assert isinstance(client, Client) and checker.claims["jti"] == "j1"


@pytest.mark.parametrize("claims, used, reason", [
    ({}, {("tool", "j1")}, "JWT ID is used before."),
    ({"sub": "other"}, set(), "its iss and sub must both be the client_id"),
    ({"aud": [TOKEN_URL, "x"]}, set(), f"its aud must be exactly {TOKEN_URL}"),
    ({"exp": AT - 11}, set(), "the token has expired (exp)"),
    ({"jti": None}, set(), "it must carry a jti"),
])
def test_a_client_assertion_is_refused(keys, monkeypatch, claims, used, reason):
    monkeypatch.setattr("time.time", lambda: AT)
    with pytest.raises(TokenRejected) as refused:
        authenticate(keys, used, **claims)
    assert str(refused.value) == reason
