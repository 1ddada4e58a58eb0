"""An independent LTI 1.3 tool for the end-to-end tests, built on pylti1p3 (pylti1p3next) and
Flask, served over real HTTP: it logs in, validates launches, fetches the NRPS roster, posts
scores through AGS, answers deep linking requests, and registers itself dynamically.

pylti1p3's known gaps (LTI-NOTES.md) are closed here, in the tool, not in the platform:
nonces are consumed once (pylti1p3 keeps them valid for a day), and the id_token's ``aud`` and
``azp`` are checked to be this tool's client_id (pylti1p3 turns off PyJWT's audience check).
"""
from __future__ import annotations

import datetime as dt
import threading
import typing as t
from dataclasses import dataclass, field

from flask import Flask, abort, jsonify, request
from pylti1p3.contrib.flask import (FlaskMessageLaunch, FlaskOIDCLogin, FlaskRequest,
                                   FlaskServiceConnector)
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.dynamic_registration import DynamicRegistration
from pylti1p3.grade import Grade
from pylti1p3.launch_data_storage.cache import CacheDataStorage
from pylti1p3.lineitem import LineItem
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfDict

from lti_support import pem_pair


class _DictCache:
    """A process-local cache with the get/set interface pylti1p3's cache storage expects."""

    def __init__(self) -> None:
        self.values: dict[str, t.Any] = {}
        self.lock = threading.Lock()

    def get(self, key: str) -> t.Any:
        with self.lock:
            return self.values.get(key)

    def set(self, key: str, value: t.Any, exp: int | None = None) -> None:
        with self.lock:
            self.values[key] = value


class MemoryStorage(CacheDataStorage):
    """Launch data kept in memory, so a later request can load a launch by its id."""

    def __init__(self, cache: _DictCache) -> None:
        super().__init__(cache)
        self._cache = cache


@dataclass
class ToolState:
    """The tool's key, its registration with one platform, and what it has seen."""

    base_url: str = ""
    issuer: str = ""
    client_id: str = ""
    deployment_ids: list[str] = field(default_factory=list)
    private_pem: str = ""
    public_pem: str = ""
    used_nonces: set[str] = field(default_factory=set)
    launches: list[dict] = field(default_factory=list)
    cache: _DictCache = field(default_factory=_DictCache)

    def __post_init__(self) -> None:
        self.private_pem, self.public_pem = pem_pair()

    def config(self) -> ToolConfDict:
        """pylti1p3's configuration of the one platform this tool is registered with."""
        conf = ToolConfDict({self.issuer: [{
            "default": True, "client_id": self.client_id,
            "auth_login_url": self.issuer + "/lti/authorize",
            "auth_token_url": self.issuer + "/lti/token",
            "key_set_url": self.issuer + "/.well-known/jwks.json",
            "deployment_ids": list(self.deployment_ids)}]})
        conf.set_private_key(self.issuer, self.private_pem, client_id=self.client_id)
        conf.set_public_key(self.issuer, self.public_pem, client_id=self.client_id)
        return conf

    def storage(self) -> MemoryStorage:
        return MemoryStorage(self.cache)


def _check_gaps(state: ToolState, claims: dict) -> None:
    """What pylti1p3 does not check: a fresh nonce, and that the token is for this tool."""
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if state.client_id not in auds or (len(auds) > 1 and claims.get("azp") != state.client_id):
        abort(400, "id_token not issued to this tool")
    if claims.get("azp") not in (None, state.client_id):
        abort(400, "id_token authorized for another party")
    nonce = claims.get("nonce")
    if nonce in state.used_nonces:
        abort(400, "nonce replayed")
    state.used_nonces.add(nonce)


class _Registration(DynamicRegistration):
    client_name = "Self-registered pylti1p3 tool"

    def __init__(self, state: ToolState, openid_configuration: str, token: str) -> None:
        self.state = state
        self.openid_configuration = openid_configuration
        self.token = token

    def get_initiate_login_uri(self) -> str:
        return self.state.base_url + "/login"

    def get_jwks_uri(self) -> str:
        return self.state.base_url + "/jwks"

    def get_redirect_uris(self) -> list[str]:
        return [self.state.base_url + "/launch"]

    def get_scopes(self) -> list[str]:
        return ["https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly"]

    def get_domain(self) -> str:
        return self.state.base_url.split("://", 1)[1]

    def get_target_link_uri(self) -> str:
        return self.state.base_url + "/launch"

    def get_messages(self) -> list[dict[str, str]]:
        return [{"type": "LtiDeepLinkingRequest", "target_link_uri": self.state.base_url + "/launch",
                 "label": "Add a quiz"}]

    def get_logo_uri(self) -> str:
        return self.state.base_url + "/logo.png"

    def get_openid_configuration_endpoint(self) -> str:
        return self.openid_configuration

    def get_registration_token(self) -> str:
        return self.token

    def complete_registration(self, openid_configuration, openid_registration):
        tool_config = openid_registration["https://purl.imsglobal.org/spec/lti-tool-configuration"]
        self.state.issuer = openid_configuration["issuer"]
        self.state.client_id = openid_registration["client_id"]
        self.state.deployment_ids = [tool_config["deployment_id"]]
        return openid_registration


def make_tool(state: ToolState) -> Flask:
    """The tool's Flask application."""
    app = Flask("pylti_tool")
    app.config["SECRET_KEY"] = "tool-secret"

    @app.get("/jwks")
    def jwks():
        return jsonify({"keys": [Registration.get_jwk(state.public_pem)]})

    @app.route("/login", methods=["GET", "POST"])
    def login():
        target = request.values.get("target_link_uri")
        oidc = FlaskOIDCLogin(FlaskRequest(), state.config(), launch_data_storage=state.storage())
        # Every launch comes back to /launch, which tells the message types apart.
        assert target
        return oidc.redirect(state.base_url + "/launch")

    @app.post("/launch")
    def launch():
        message = FlaskMessageLaunch(FlaskRequest(), state.config(),
                                     launch_data_storage=state.storage())
        claims = message.get_launch_data()
        _check_gaps(state, claims)
        state.launches.append(claims)
        if message.is_deep_link_launch():
            quiz = (DeepLinkResource().set_title("Fractions quiz").set_url(state.base_url + "/launch")
                    .set_custom_params({"quiz": "fractions"})
                    .set_lineitem(LineItem().set_score_maximum(20).set_label("Fractions quiz")
                                  .set_tag("dl-quiz")))
            return message.get_deep_link().output_response_form([quiz])
        return jsonify({"launch_id": message.get_launch_id(), "sub": claims["sub"],
                        "name": claims.get("name"), "email": claims.get("email"),
                        "roles": claims["https://purl.imsglobal.org/spec/lti/claim/roles"],
                        "context": claims["https://purl.imsglobal.org/spec/lti/claim/context"],
                        "custom": claims.get("https://purl.imsglobal.org/spec/lti/claim/custom")})

    def _cached_launch() -> FlaskMessageLaunch:
        # pylti1p3next's from_cache passes the abstract ServiceConnector unless told otherwise.
        return FlaskMessageLaunch.from_cache(request.args["launch_id"], FlaskRequest(),
                                             state.config(), launch_data_storage=state.storage(),
                                             service_connector_cls=FlaskServiceConnector)

    @app.get("/roster")
    def roster():
        members = _cached_launch().get_nrps().get_members()
        return jsonify(members)

    @app.post("/score")
    def score():
        message = _cached_launch()
        ags = message.get_ags()
        timestamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
        grade = (Grade().set_score_given(float(request.args["score"])).set_score_maximum(100)
                 .set_timestamp(timestamp).set_activity_progress("Completed")
                 .set_grading_progress("FullyGraded").set_user_id(request.args["user_id"])
                 .set_comment("graded by the pylti1p3 tool"))
        column = (LineItem().set_tag("quiz").set_score_maximum(50).set_label("Quiz")
                  .set_resource_id("quiz-1"))
        if request.args.get("for_link"):
            # A column of the launched link (AGS 2.0 §3.2.8 resourceLinkId).
            column.set_resource_link_id(message.get_launch_data()[
                "https://purl.imsglobal.org/spec/lti/claim/resource_link"]["id"])
        ags.put_grade(grade, column)
        item = ags.find_lineitem_by_tag("quiz")
        return jsonify({"lineitem": item.get_id(), "results": list(ags.get_grades(item))})

    @app.get("/register")
    def register():
        registration = _Registration(state, request.args["openid_configuration"],
                                     request.args["registration_token"])
        registration.register()
        return registration.complete_html()

    return app
