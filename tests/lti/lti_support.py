"""Helpers of the LTI platform tests: constants, a tool's key pair, a stand-in for tools' JWKS
URLs, HTML form parsing, the steps of a launch, client assertions and a restrictive visibility."""
from __future__ import annotations

import html.parser
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from gateway.lti.keys import public_jwk
from gateway.lti.signed import KeyFetchError

ISSUER = "http://gateway.test"
PASSWORD = "correct horse battery"
TOOL = "https://tool.example"


def pem_pair() -> tuple[str, str]:
    """A new RSA key as PEM: private (PKCS#8) and public (SPKI), as pylti1p3 and lti1p3platform
    take them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@dataclass
class ToolKeyPair:
    """A tool's RSA key: signs its JWTs, and its JWKS is what the platform fetches."""

    private: RSAKey
    kid: str

    @classmethod
    def generate(cls) -> "ToolKeyPair":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = public_jwk(private)["kid"]
        return cls(RSAKey.import_key(private, {"kid": kid}), kid)

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [{**self.private.as_dict(private=False), "kid": self.kid, "alg": "RS256",
                          "use": "sig"}]}

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        return jwt.encode(header or {"alg": "RS256", "kid": self.kid}, claims, self.private,
                          algorithms=["RS256"])


@dataclass
class RegisteredTool:
    """A tool registered for the app, its keys, and its deployment in d1."""

    client_id: str
    deployment_id: str
    keys: ToolKeyPair
    jwks_url: str


class JwksServer:
    """Stands in for tools' JWKS URLs: the platform's fetcher reads from here, and counts."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.fetches: list[str] = []

    def __call__(self, url: str):
        self.fetches.append(url)
        if url not in self.documents:
            raise KeyFetchError(f"the tool's JWKS at {url} answered 404")
        return self.documents[url]


class _Forms(html.parser.HTMLParser):
    """The forms of a page: action, method and hidden/named input values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action"), "method": attrs.get("method"),
                               "fields": {}})
        elif tag == "input" and self.forms and attrs.get("name"):
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")


def forms(page: str) -> list[dict[str, Any]]:
    """Parse the forms of an HTML page."""
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def portal_csrf(browser) -> str:
    """The CSRF token of a signed-in browser's portal page."""
    return csrf_of(browser.get("/portal").get_data(as_text=True))


def start_launch(browser, link_id: str) -> dict[str, str]:
    """Click a portal link: the login initiation parameters the tool receives."""
    response = browser.post(f"/portal/launch/{link_id}", data={"csrf_token": portal_csrf(browser)})
    assert response.status_code == 303, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return {name: values[0] for name, values in query.items()}


def auth_request(login: dict[str, str], redirect_uri: str, **overrides: str | None) -> dict[str, str]:
    """The tool's authentication request answering a login initiation (§5.1.1.2); an override
    of None leaves that parameter out."""
    params = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
              "prompt": "none", "client_id": login["client_id"], "redirect_uri": redirect_uri,
              "login_hint": login["login_hint"], "lti_message_hint": login["lti_message_hint"],
              "nonce": secrets.token_hex(8), "state": secrets.token_hex(8)}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def posted_form(response) -> dict[str, Any]:
    """The auto-posted form of an authorization response page."""
    [form] = forms(response.get_data(as_text=True))
    return form


def verify_platform_token(client, token: str) -> dict[str, Any]:
    """The claims of a token the platform signed, checked against its published JWKS."""
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    return jwt.decode(token, keys, algorithms=["RS256"]).claims


def client_assertion(registered: RegisteredTool, **overrides) -> str:
    """A client assertion (RFC 7523) the tool signs for the token endpoint; an override of None
    leaves that claim out."""
    now = int(time.time())
    claims = {"iss": registered.client_id, "sub": registered.client_id,
              "aud": f"{ISSUER}/lti/token", "iat": now, "exp": now + 60,
              "jti": secrets.token_hex(12)}
    claims.update(overrides)
    return registered.keys.sign({k: v for k, v in claims.items() if v is not None})


class MaskingVisibility:
    """A restrictive policy for the tests, through the Visibility protocol: users' ids
    pseudonymized (``p-`` prefix), family names masked to an initial, emails withheld, the
    student u3 hidden; records every disclosure."""

    def __init__(self) -> None:
        self.disclosures: list[tuple[str, str, str, list[dict], list[str]]] = []

    def refusal(self):
        return None

    def preferred_names(self):
        return True

    def where(self, entity, table):
        if entity == "user":
            return table.c.sourced_id != "u3"
        if entity == "enrollment":
            return table.c.user_sourced_id != "u3"
        return None

    def driver(self, entity, table):
        return None

    def fields(self, entity):
        if entity == "user":
            return frozenset({"sourcedId", "status", "dateLastModified", "givenName", "familyName"})
        return None

    def filterable(self, entity):
        return None

    def resolve_id(self, entity, external_id):
        if entity == "user":
            return external_id[2:] if external_id.startswith("p-") else None
        return external_id

    def present(self, entity, record):
        record = dict(record)
        if entity == "user":
            record["sourcedId"] = "p-" + record["sourcedId"]
            if record.get("familyName"):
                record["familyName"] = record["familyName"][0] + "."
        return record

    def disclosed(self, channel, endpoint, entity, records, stored_ids):
        self.disclosures.append((channel, endpoint, entity, list(records), list(stored_ids)))
