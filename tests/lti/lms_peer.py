"""An LMS for the tool-role tests, built on the independent ``lti1p3platform`` package (0.1.8,
used only as a test peer: it does not check redirect URIs, so this peer checks the one it is
sent against the gateway's registered one itself) and served over real HTTP.

It starts launches (third-party initiated login to the gateway), answers the gateway's
authentication request with a signed id_token, and publishes its JWKS.
"""
from __future__ import annotations

import typing as t
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlencode

import jwt as pyjwt
from flask import Flask, abort, jsonify, redirect, request
from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract
from lti1p3platform.oidc_login import OIDCLoginAbstract
from lti1p3platform.registration import Registration

from lti_support import pem_pair

COURSE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Course</title></head>
<body><h1>Biology (LMS)</h1>
<iframe name="tool" src="/start/LOGIN_HINT" width="900" height="600"></iframe>
<script>
window.lmsStorage = {}; window.lmsMessages = [];
window.addEventListener("message", function (event) {
  var data = event.data || {};
  window.lmsMessages.push(data.subject);
  if (event.origin !== "GATEWAY_ORIGIN") { return; }
  var answer = {message_id: data.message_id, key: data.key};
  if (data.subject === "lti.put_data") {
    window.lmsStorage[data.key] = data.value;
    answer.subject = "lti.put_data.response"; answer.value = data.value;
  } else if (data.subject === "lti.get_data") {
    answer.subject = "lti.get_data.response"; answer.value = window.lmsStorage[data.key];
  } else { return; }
  event.source.postMessage(answer, event.origin);
});
</script></body></html>"""

AUTO_SUBMIT = "<script>document.forms[0].submit();</script>"

LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


@dataclass
class LmsState:
    """The LMS's key, its registration of the gateway, and what it launches."""

    base_url: str = ""
    gateway_url: str = ""
    client_id: str = "gateway-in-lms"
    deployment_id: str = "lms-deployment-1"
    private_pem: str = ""
    public_pem: str = ""
    # Who is signed in to the LMS, by login hint.
    people: dict[str, dict[str, t.Any]] = field(default_factory=dict)
    context: dict[str, t.Any] = field(default_factory=dict)
    link: dict[str, t.Any] = field(default_factory=dict)
    custom: dict[str, str] = field(default_factory=dict)
    deep_linking: bool = False
    # LTI Client Side postMessages: the frame offered as platform storage (the login's
    # lti_storage_target), and the LMS's page that frames the launch.
    storage_target: str | None = None
    deep_link_responses: list[str] = field(default_factory=list)
    # Assignment and Grade Services: offered on launches; scores received; how many score posts
    # to answer 503 before taking them (to test the gateway's retries).
    ags: bool = True
    scores: list[dict[str, t.Any]] = field(default_factory=list)
    unavailable: int = 0
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self.private_pem, self.public_pem = pem_pair()

    def registration(self) -> Registration:
        """lti1p3platform's registration of the gateway as a tool of this LMS."""
        return (Registration().set_iss(self.base_url).set_client_id(self.client_id)
                .set_deployment_id(self.deployment_id)
                .set_oidc_login_url(self.gateway_url + "/lms/login")
                .set_launch_url(self.gateway_url + "/lms/launch")
                .set_deeplink_launch_url(self.gateway_url + "/lms/launch")
                .set_platform_private_key(self.private_pem)
                .set_platform_public_key(self.public_pem)
                .set_tool_key_set_url(self.gateway_url + "/.well-known/jwks.json"))


class _Config(LTI1P3PlatformConfAbstract):
    def init_platform_config(self, **kwargs: t.Any) -> None:
        self.state: LmsState = kwargs["state"]

    def get_registration_by_params(self, **kwargs: t.Any) -> Registration:
        return self.state.registration()


class _Login(OIDCLoginAbstract):
    def set_lti_message_hint(self, **kwargs: t.Any) -> None:
        self._lti_message_hint = kwargs["hint"]

    def get_redirect(self, url: str):
        return redirect(url)


class _Launch(LTIAdvantageMessageLaunchAbstract):
    def get_preflight_response(self) -> dict[str, t.Any]:
        return request.args.to_dict()

    def render_launch_form(self, launch_data: dict[str, t.Any], **kwargs: t.Any) -> str:
        # The template lti1p3platform ships does not escape; this one does.
        return (f'<form method="post" action="{escape(launch_data["launch_url"])}">'
                f'<input type="hidden" name="id_token" value="{escape(launch_data["id_token"])}">'
                f'<input type="hidden" name="state" value="{escape(launch_data["state"])}">'
                "</form>")


def make_lms(state: LmsState) -> Flask:
    """The LMS's Flask application."""
    app = Flask("lms_peer")

    @app.get("/jwks")
    def jwks():
        return jsonify({"keys": [Registration.get_jwk(state.public_pem)]})

    @app.get("/start/<login_hint>")
    def start(login_hint: str):
        login = _Login(request, _Config(state=state))
        login.set_lti_message_hint(hint=login_hint)
        if state.deep_linking:
            login.set_deeplinking_launch_url()
        response = login.initiate_login(login_hint)
        if state.storage_target:
            response.headers["Location"] += "&" + urlencode(
                {"lti_storage_target": state.storage_target})
        return response

    @app.get("/course/<login_hint>")
    def course(login_hint: str):
        # The LMS's course page: the launch in a frame, and the platform storage the LTI Client
        # Side postMessages spec describes (lti.put_data / lti.get_data), answered only for the
        # gateway's origin and kept in the page's memory.
        return COURSE_PAGE.replace("LOGIN_HINT", escape(login_hint)).replace(
            "GATEWAY_ORIGIN", escape(state.gateway_url))

    @app.get("/auth")
    def auth():
        if request.args.get("redirect_uri") != state.gateway_url + "/lms/launch":
            abort(400, "redirect_uri not registered")
        person = state.people[request.args["login_hint"]]
        launch = _Launch(request, _Config(state=state))
        launch.set_user_data(person["sub"], person["roles"], person.get("name"),
                             person.get("email"))
        extra: dict[str, t.Any] = {}
        lis = {}
        if person.get("sourcedid"):
            lis["person_sourcedid"] = person["sourcedid"]
        if state.context.get("sourcedid"):
            lis["course_section_sourcedid"] = state.context["sourcedid"]
        if lis:
            extra["https://purl.imsglobal.org/spec/lti/claim/lis"] = lis
        launch.set_launch_context_claim(state.context["id"], context_title=state.context["title"])
        if state.deep_linking:
            launch.set_dl(state.base_url + "/deep-link-return", title="Add content",
                          accept_types={"ltiResourceLink"})
        else:
            launch.set_resource_link_claim(state.link["id"], title=state.link["title"])
        if state.custom:
            launch.set_custom_parameters_claim(state.custom)
        if state.ags:
            launch.set_ags(state.base_url + "/lineitems", state.base_url + "/lineitems/li-1")
        launch.set_extra_claims(extra)
        page = launch.lti_launch()
        # lti1p3platform's page is the bare form: a browser needs the script an LMS adds.
        return page + AUTO_SUBMIT if isinstance(page, str) else page

    @app.post("/deep-link-return")
    def deep_link_return():
        state.deep_link_responses.append(request.form["JWT"])
        return "received"

    @app.post("/token")
    def token():
        config = _Config(state=state)
        config.get_registration()
        try:
            answer = config.get_access_token(request.form.to_dict())
        except Exception:  # noqa: BLE001 -- any refusal of lti1p3platform is a 400
            abort(400)
        # lti1p3platform 0.1.8 does not check the assertion's audience: this LMS does.
        claims = pyjwt.decode(request.form["client_assertion"], options={"verify_signature": False})
        if (claims.get("aud") != state.base_url + "/token"
                or claims.get("iss") != state.client_id or claims.get("sub") != state.client_id):
            abort(400)
        state.tokens_issued += 1
        return jsonify(answer)

    @app.post("/lineitems/<item>/scores")
    def scores(item: str):
        config = _Config(state=state)
        config.get_registration()
        bearer = request.headers.get("Authorization", "")
        if not bearer.startswith("Bearer ") or not config.validate_token(
                bearer[len("Bearer "):], allowed_scopes=[SCORE]):
            abort(401)
        if request.mimetype != "application/vnd.ims.lis.v1.score+json":
            abort(415)
        if state.unavailable > 0:
            state.unavailable -= 1
            abort(503)
        state.scores.append({"lineitem": item, **request.get_json(force=True)})
        return "", 204

    return app
