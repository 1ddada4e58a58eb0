"""Deep Linking 2.0: receiving the content an instructor picked in a tool.

The request half is a launch (:func:`gateway.lti.platform.launch.begin_deep_linking`). The tool
answers by form-posting a JWT to the deep linking return URL (Deep Linking 2.0 §4.5), which
:func:`receive_response` verifies -- signed RS256 by the tool, ``iss`` the tool's client_id,
``aud`` exactly the platform's issuer, recent ``iat``, unexpired ``exp``, a ``nonce``, message
type ``LtiDeepLinkingResponse`` and version 1.3.0, one of the tool's registered deployments, and
the ``data`` of a request the platform made to that tool, unexpired and not answered yet -- and
then stores each ``ltiResourceLink`` content item as a resource link placed in the request's
class (with the line item it asks for), launched later as an ``LtiResourceLinkRequest``.

An item's URL becomes that launch's target, so it must be at one of the tool's registered
origins (:func:`~gateway.lti.platform.registration.check_content_url`); one item that is not
refuses the whole response, before anything is stored or the request is spent.

The post arrives from the tool's page, cross-site, without the portal's session cookie
(SameSite=Lax withholds it from cross-site POSTs): the request's ``data``, bound to the class and
instructor when the request was made, is what ties the answer to them.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.lti import vocabulary as v
from gateway.lti.platform.ags import create_line_item_for_link
from gateway.lti.platform.errors import BadRequest
from gateway.lti.platform.registration import (InvalidToolSetting, add_resource_link,
                                               check_content_url, tool_deployment)
from gateway.lti.platform.settings import LtiSettings
from gateway.lti.platform.tokens import find_tool_by_client_id, tool_key_lookup
from gateway.lti.signed import JwksCache, TokenRejected, unverified_claims, verify_message
from gateway.nul import holds_nul
from gateway.sharing.contract import app_contract_refusal
from gateway.store.lti import DeepLinkRequest
from gateway.store.models import Class

MAX_ITEMS = 100


@dataclass
class DeepLinkingOutcome:
    """What a deep linking response added to which class, and what the tool said."""

    class_title: str
    added: list[str] = field(default_factory=list)
    # One sentence per item not added, saying which and why.
    left_out: list[str] = field(default_factory=list)
    message: str | None = None
    error: str | None = None
    # The request answered, and the ids of the links added (an LMS's chained request, in the
    # tool role, answers its LMS with them).
    request: DeepLinkRequest | None = None
    link_ids: list[str] = field(default_factory=list)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def receive_response(session: Session, tool_keys: JwksCache, settings: LtiSettings, *,
                     token: str, now: dt.datetime) -> DeepLinkingOutcome:
    """Verify a deep linking response JWT and store its content items (Deep Linking 2.0 §4.5)."""
    if not token:
        raise BadRequest("The deep linking response carries no JWT.")
    try:
        claimed = unverified_claims(token)
    except TokenRejected as error:
        raise BadRequest(f"The deep linking response is not acceptable: {error}.") from error
    if holds_nul(claimed):
        # No id, title or URL holds one, and PostgreSQL can neither compare nor store it.
        raise BadRequest("The deep linking response is not acceptable: it contains a NUL character.")
    client_id = claimed.get("iss")
    tool = find_tool_by_client_id(session, client_id) if isinstance(client_id, str) else None
    if tool is None:
        raise BadRequest("The deep linking response does not come from a registered tool.")
    try:
        claims = verify_message(token, tool_key_lookup(tool_keys, tool), issuer=tool.client_id,
                                audience=settings.issuer, now=now, leeway=settings.leeway,
                                max_age=settings.assertion_max_age,
                                max_lifetime=settings.deep_linking_lifetime)
        if not _str(claims.get("nonce")):
            raise TokenRejected("it must carry a nonce")
        if claims.get(v.MESSAGE_TYPE) != v.DEEP_LINKING_RESPONSE:
            raise TokenRejected(f"its message type must be {v.DEEP_LINKING_RESPONSE}")
        if claims.get(v.VERSION) != v.LTI_VERSION:
            raise TokenRejected(f"its version must be {v.LTI_VERSION}")
    except TokenRejected as error:
        raise BadRequest(f"The deep linking response is not acceptable: {error}.") from error
    deployment_id = claims.get(v.DEPLOYMENT_ID)
    deployment = (tool_deployment(session, tool, deployment_id)
                  if isinstance(deployment_id, str) else None)
    if deployment is None:
        raise BadRequest("The deep linking response names a deployment that is not registered.")
    refusal = app_contract_refusal(session, tool.app_id, deployment.district_id, now.date())
    if refusal is not None:
        raise BadRequest(refusal)
    data = claims.get(v.DL_DATA)
    request = session.execute(select(DeepLinkRequest).where(
        DeepLinkRequest.data == data, DeepLinkRequest.deployment_id == deployment.id)
    ).scalar_one_or_none() if isinstance(data, str) else None
    if request is None:
        raise BadRequest("The deep linking response does not echo the data of a request made "
                         "to this tool.")
    items = claims.get(v.DL_CONTENT_ITEMS) or []
    if not isinstance(items, list):
        raise BadRequest("content_items must be a list.")
    links = _links(items[:MAX_ITEMS])
    # Every link is checked before the request is claimed or anything stored: a refused answer
    # adds nothing and leaves the request open for a corrected one.
    for item in links:
        if _str(item.get("url")):
            try:
                check_content_url(tool, item["url"])
            except InvalidToolSetting as error:
                raise BadRequest(f"Nothing was added: {error}.") from error
    # Claim the request atomically: of two concurrent answers, one marks it and the other finds
    # it already answered.
    marked = session.execute(
        update(DeepLinkRequest).where(DeepLinkRequest.id == request.id,
                                      DeepLinkRequest.used_at.is_(None),
                                      DeepLinkRequest.expires_at > now)
        .values(used_at=now)).rowcount
    if marked != 1:
        raise BadRequest("This deep linking request has already been answered or has expired.")
    klass = session.execute(select(Class).where(
        Class.district_id == deployment.district_id,
        Class.sourced_id == request.class_sourced_id)).scalar_one()

    outcome = DeepLinkingOutcome(class_title=klass.title, message=_str(claims.get(v.DL_MSG)),
                                 error=_str(claims.get(v.DL_ERRORMSG)), request=request)
    outcome.left_out = [_left_out(item) for item in items[:MAX_ITEMS] if not _is_link(item)]
    if len(items) > MAX_ITEMS:
        outcome.left_out.append(f"{len(items) - MAX_ITEMS} more item(s): a response may add at "
                                f"most {MAX_ITEMS}.")
    for item in links:
        custom = item.get("custom")
        try:
            link = add_resource_link(
                session, deployment=deployment, class_sourced_id=klass.sourced_id,
                title=_str(item.get("title")) or tool.name, text=_str(item.get("text")),
                url=_str(item.get("url")), custom=custom if isinstance(custom, dict) else None,
                source="deep_link", created_by=request.user_sourced_id, now=now)
        except InvalidToolSetting as error:
            outcome.left_out.append(f"“{_title(item)}”: {error}.")
            continue
        if isinstance(item.get("lineItem"), dict):
            create_line_item_for_link(session, tool_id=tool.id, link=link,
                                      school_sourced_id=klass.school_sourced_id,
                                      spec=item["lineItem"], now=now)
        outcome.added.append(link.title)
        outcome.link_ids.append(link.link_id)
    return outcome


def _is_link(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "ltiResourceLink"


def _links(items: list[Any]) -> list[dict[str, Any]]:
    """The ``ltiResourceLink`` items of a response; only that type was offered (accept_types),
    others are left out (§4.4.1)."""
    return [item for item in items if _is_link(item)]


def _title(item: dict[str, Any]) -> str:
    return _str(item.get("title")) or "Untitled"


# Deep Linking 2.0 §3: the other content item types, as a teacher would name them.
_OTHER_TYPES = {"link": "a plain web link", "file": "a file", "html": "an HTML fragment",
                "image": "an image"}


def _left_out(item: Any) -> str:
    """Why an item that is not an ``ltiResourceLink`` was not added, naming it. Such items
    would need the portal to show plain content in a class, which it does not: it places only
    activities that launch in the tool."""
    if not isinstance(item, dict):
        return "An item that is not a JSON object."
    kind = _OTHER_TYPES.get(item.get("type"))
    if kind is None:
        return f"“{_title(item)}”, of unknown type {item.get('type')!r}."
    url = _str(item.get("url"))
    where = f" ({url})" if url else ""
    return (f"“{_title(item)}” is {kind}{where}; this portal adds only activities that launch "
            "in the tool.")
