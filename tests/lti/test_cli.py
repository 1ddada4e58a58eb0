"""``gateway tools`` and ``gateway users``: registering tools, placing them, inviting dynamic
registrations, and setting portal passwords."""
from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from gateway.cli import cli
from gateway.lti.keys import public_jwk
from gateway.passwords import verify_password
from gateway.store.lti import Deployment, ResourceLink, Tool
from gateway.store.models import User

ALL_SCOPES = ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
              "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
              "https://purl.imsglobal.org/spec/lti-ags/scope/score",
              "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]


def register_args(app_id: int, *extra: str) -> list[str]:
    return ["tools", "register", "--app", str(app_id),
            "--login-url", "https://tool.example/login",
            "--redirect-uri", "https://tool.example/launch",
            "--redirect-uri", "https://tool.example/launch2",
            "--target-link-uri", "https://tool.example/launch",
            "--jwks-url", "https://tool.example/jwks", *extra]


def test_register_prints_client_id_and_deployment_id(runner, database, app_id):
    result = runner.invoke(cli, register_args(app_id, "--json"))

    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"client_id", "deployment_id", "district", "issuer",
                        "authorization_endpoint", "token_endpoint", "jwks_uri"}
    assert len(out["client_id"]) == 32 and len(out["deployment_id"]) == 16
    assert out["district"] == "d1"
    assert out["issuer"] == "http://gateway.test"
    assert out["token_endpoint"] == "http://gateway.test/lti/token"
    with database.session_scope() as session:
        tool = session.execute(select(Tool)).scalar_one()
        deployment = session.execute(select(Deployment)).scalar_one()
        assert tool.client_id == out["client_id"] and tool.app_id == app_id
        assert tool.status == "approved" and tool.on_portal is True
        assert tool.redirect_uris == ["https://tool.example/launch", "https://tool.example/launch2"]
        assert tool.jwks_url == "https://tool.example/jwks"
        assert tool.scope.split() == ALL_SCOPES
        assert deployment.deployment_id == out["deployment_id"]


def test_register_plain_output_and_list(runner, app_id):
    result = runner.invoke(cli, register_args(app_id, "--name", "Fractions Lab",
                                              "--custom", "level=3", "--scope", ALL_SCOPES[4]))
    assert result.exit_code == 0, result.output
    fields = dict(line.split(":", 1) for line in result.output.splitlines())
    client_id = fields["client_id"].strip()
    deployment_id = fields["deployment_id"].strip()

    listed = runner.invoke(cli, ["tools", "list"])
    assert listed.exit_code == 0
    header, row = listed.output.splitlines()
    assert header.split() == ["CLIENT_ID", "NAME", "APP", "STATUS", "DEPLOYMENTS"]
    assert row.split() == [client_id, "Fractions", "Lab", str(app_id), "approved",
                           f"{deployment_id}@d1"]
    [entry] = json.loads(runner.invoke(cli, ["tools", "list", "--json"]).output)
    assert entry["scopes"] == [ALL_SCOPES[4]]
    assert entry["deployments"] == [{"deployment_id": deployment_id, "district": "d1"}]


def test_register_with_a_public_key_file(runner, database, app_id, tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "tool.pem"
    pem.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    args = [a for a in register_args(app_id, "--public-key", str(pem), "--json")
            if a not in ("--jwks-url", "https://tool.example/jwks")]

    result = runner.invoke(cli, args)

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["kid"] == public_jwk(key)["kid"]
    with database.session_scope() as session:
        tool = session.execute(select(Tool)).scalar_one()
        assert tool.jwks_url is None
        assert tool.public_jwks == {"keys": [public_jwk(key)]}


def test_register_refuses_bad_settings(runner, app_id):
    cases = [
        (["--redirect-uri", "http://tool.example/cb"], "must use https"),
        (["--redirect-uri", "https://tool.example/cb#frag"], "without fragment"),
        (["--scope", "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"],
         "unknown LTI service scope"),
        (["--custom", "novalue"], "is not NAME=VALUE"),
    ]
    for extra, message in cases:
        result = runner.invoke(cli, register_args(app_id, *extra))
        assert result.exit_code != 0, extra
        assert message in result.output, (extra, result.output)
    no_keys = [a for a in register_args(app_id) if a not in ("--jwks-url", "https://tool.example/jwks")]
    result = runner.invoke(cli, no_keys)
    assert "give the tool's JWKS URL or its public key" in result.output
    result = runner.invoke(cli, register_args(999))
    assert "no app with id '999'" in result.output


def test_http_is_allowed_to_loopback_only(runner, app_id):
    args = ["tools", "register", "--app", str(app_id), "--login-url", "http://127.0.0.1:9000/login",
            "--redirect-uri", "http://localhost:9000/launch", "--target-link-uri",
            "http://127.0.0.1:9000/launch", "--jwks-url", "http://127.0.0.1:9000/jwks"]
    assert runner.invoke(cli, args).exit_code == 0


def test_place_puts_a_tool_in_a_class(runner, database, app_id):
    client_id = json.loads(runner.invoke(cli, register_args(app_id, "--json")).output)["client_id"]

    result = runner.invoke(cli, ["tools", "place", client_id, "--class", "k1", "--title",
                                 "Fractions", "--custom", "unit=4", "--json"])

    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    with database.session_scope() as session:
        link = session.execute(select(ResourceLink)).scalar_one()
        assert (link.link_id, link.class_sourced_id, link.title, link.custom, link.source) == (
            out["resource_link_id"], "k1", "Fractions", {"unit": "4"}, "placement")
    missing = runner.invoke(cli, ["tools", "place", client_id, "--class", "nope"])
    assert "no active class 'nope'" in missing.output


def test_invite_makes_a_one_time_registration_token(runner, app_id):
    result = runner.invoke(cli, ["tools", "invite", "--app", str(app_id), "--url",
                                 "https://tool.example/register", "--json"])

    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["openid_configuration"] == "http://gateway.test/.well-known/openid-configuration"
    assert out["open"] == ("https://tool.example/register?openid_configuration=http%3A%2F%2F"
                           "gateway.test%2F.well-known%2Fopenid-configuration&registration_token="
                           + out["registration_token"])


def test_users_set_password(runner, database, district):
    result = runner.invoke(cli, ["users", "set-password", "lisa", "--password", "s3cret-pass"])

    assert result.exit_code == 0, result.output
    assert result.output == "password set for lisa (Lisa Simpson, Springfield District)\n"
    with database.session_scope() as session:
        stored = session.execute(select(User.password_hash).where(User.username == "lisa")).scalar_one()
    assert stored.startswith("scrypt$") and "s3cret-pass" not in stored
    assert verify_password(stored, "s3cret-pass")


def test_users_set_password_prompts_when_not_given(runner, database, district):
    result = runner.invoke(cli, ["users", "set-password", "bart"], input="long-enough\nlong-enough\n")

    assert result.exit_code == 0, result.output
    with database.session_scope() as session:
        stored = session.execute(select(User.password_hash).where(User.username == "bart")).scalar_one()
    assert verify_password(stored, "long-enough")


def test_users_set_password_errors(runner, district):
    assert "no user with username 'nobody'" in runner.invoke(
        cli, ["users", "set-password", "nobody", "--password", "long-enough"]).output
    assert "a password needs 8 to 1024 characters" in runner.invoke(
        cli, ["users", "set-password", "lisa", "--password", "short"]).output


def test_deploy_in_another_district(runner, database, app_id, tmp_path):
    from bundles import small_district, write_bundle
    from gateway.oneroster.csv.importer import ImportOptions, import_bundle
    from gateway.store.apps import AppClient
    from gateway.store.models import utcnow

    rows = small_district()
    rows["orgs"][0].update(sourcedId="d2", name="Shelbyville District")
    for org in rows["orgs"][1:]:
        org["parentSourcedId"] = "d2"
    for role in rows["roles"]:
        if role["orgSourcedId"] == "d1":
            role["orgSourcedId"] = "d2"
    with database.session_scope() as session:
        assert import_bundle(session, write_bundle(tmp_path / "d2", rows),
                             ImportOptions(force=True)).outcome == "applied"
    client_id = json.loads(runner.invoke(cli, register_args(app_id, "--json")).output)["client_id"]

    refused = runner.invoke(cli, ["tools", "deploy", client_id, "--district", "d2"])
    assert "is not connected to district 'd2'" in refused.output
    with database.session_scope() as session:
        # The app gets connected to d2 too.
        session.add(AppClient(app_id=app_id, district_id=2, client_id="second-client",
                              client_secret_hash="x", scope="", created_at=utcnow()))
    result = runner.invoke(cli, ["tools", "deploy", client_id, "--district", "d2"])
    assert result.exit_code == 0, result.output
    deployment_id = result.output.removeprefix("deployment_id: ").strip()
    again = runner.invoke(cli, ["tools", "deploy", client_id, "--district", "d2"])
    assert again.output.strip() == f"deployment_id: {deployment_id}"
    [entry] = json.loads(runner.invoke(cli, ["tools", "list", "--json"]).output)
    assert [d["district"] for d in entry["deployments"]] == ["d1", "d2"]
