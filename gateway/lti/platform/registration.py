"""Tools, their deployments in districts, and their placements in classes.

A tool belongs to an app (the one holding the OneRoster client and the sharing policy), so a
tool can only be deployed in a district the app is connected to, and stops working there when
the app's connection is revoked. Registration by an admin (``gateway tools register``) approves
the tool at once; a dynamic registration (:mod:`gateway.lti.platform.dynamic`) waits for
``gateway tools approve``.

Every function takes the session and flushes; the caller commits once.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.lti.keys import public_jwk
from gateway.lti.vocabulary import SERVICE_SCOPES
from gateway.oauth.scopes import format_scope, parse_scope
from gateway.store.apps import App, AppClient, live_client_exists
from gateway.store.lti import (AUDIENCES, FOR_EVERYONE, PLACED_AT_SCHOOL, PLACED_DISTRICT_WIDE,
                               PLACED_IN_CLASS, TOOL_APPROVED, Deployment, ResourceLink, Tool)
from gateway.store.models import Class, District, Org
from gateway.urls import DEFAULT_PORTS, is_loopback_host, url_origin


class UnknownApp(UsageError):
    """No app has this id."""


class UnknownTool(UsageError):
    """No tool has this client_id."""


class InvalidToolSetting(UsageError):
    """A registration value is not acceptable; the message says which and why."""


@dataclass(frozen=True)
class ToolDeployment:
    """A deployment of a tool, as listed."""

    deployment_id: str
    district: str


@dataclass(frozen=True)
class ToolSummary:
    """A tool as ``gateway tools list`` shows it."""

    client_id: str
    name: str
    app_id: int
    app_name: str
    status: str
    on_portal: bool
    login_url: str
    redirect_uris: tuple[str, ...]
    target_link_uri: str
    deep_linking_uri: str | None
    jwks_url: str | None
    scopes: tuple[str, ...]
    deployments: tuple[ToolDeployment, ...]
    created_at: dt.datetime
    approved_at: dt.datetime | None


@dataclass(frozen=True)
class Registered:
    """What registering a tool produced: the ids the tool's developer must configure."""

    client_id: str
    deployment_id: str
    district: str
    status: str


def check_url(url: str, what: str) -> str:
    """``url`` if it is an absolute https URL without fragment (http only to loopback, for
    development); :class:`InvalidToolSetting` otherwise."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.fragment:
        raise InvalidToolSetting(f"{what} must be an absolute https URL without fragment: {url!r}")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InvalidToolSetting(f"{what} must use https (http is allowed to localhost only): {url!r}")
    if parts.username or parts.password:
        raise InvalidToolSetting(f"{what} must not carry credentials: {url!r}")
    return url


def tool_origins(tool: Tool) -> list[str]:
    """The origins a tool is registered at: those of its target link URI, its login URL and its
    redirect URIs, in that order, each once."""
    urls = [tool.target_link_uri, tool.login_url, *tool.redirect_uris]
    return list(dict.fromkeys(o for o in map(url_origin, urls) if o is not None))


def _shown(origin: str) -> str:
    """An origin as people write it: without its scheme's default port."""
    return origin.removesuffix(f":{DEFAULT_PORTS[origin.split(':', 1)[0]]}")


def check_content_url(tool: Tool, url: str) -> str:
    """``url`` if a content item may point there: a URL :func:`check_url` accepts whose origin
    (scheme, host and port) is one of :func:`tool_origins`. A launch of the item goes to the
    tool's login URL with the item's URL as its target, and a tool serves only its own
    targets; so an https tool's content must be https on one of its hosts, never elsewhere."""
    url = check_url(url, "the content item URL")
    origins = tool_origins(tool)
    if url_origin(url) not in origins:
        shown = ", ".join(_shown(origin) for origin in origins)
        raise InvalidToolSetting(f"the content item URL {url!r} is not on a site registered for "
                                 f"this tool ({shown}), so it could never be launched")
    return url


def check_scopes(scopes: Iterable[str] | None) -> list[str]:
    """The LTI service scopes asked for (all of them when None); unknown ones are refused."""
    chosen = list(dict.fromkeys(scopes)) if scopes is not None else list(SERVICE_SCOPES)
    unknown = [scope for scope in chosen if scope not in SERVICE_SCOPES]
    if unknown:
        raise InvalidToolSetting(f"unknown LTI service scope {', '.join(map(repr, unknown))}; "
                                 "known: " + ", ".join(SERVICE_SCOPES))
    return chosen


def check_custom(custom: Mapping[str, Any] | None) -> dict[str, str]:
    """Custom parameters (LTI 1.3 Core §5.4.6): string names and string values."""
    out: dict[str, str] = {}
    for name, value in (custom or {}).items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise InvalidToolSetting(f"custom parameter {name!r} must map a name to a string")
        out[name] = value
    return out


def public_jwks_from(text: str) -> dict[str, Any]:
    """A JWK Set from a PEM public key, a JWK or a JWK Set (``--public-key FILE``). A PEM key's
    ``kid`` is its RFC 7638 thumbprint, which the tool must put in its JWT headers."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except ValueError as error:
            raise InvalidToolSetting("the public key is not a PEM public key") from error
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidToolSetting("the public key must be an RSA key (RS256)")
        return {"keys": [public_jwk(key)]}
    try:
        document = json.loads(text)
    except ValueError as error:
        raise InvalidToolSetting("the public key is neither PEM nor JSON (JWK or JWK Set)") from error
    if isinstance(document, dict) and "keys" not in document:
        document = {"keys": [document]}
    if (not isinstance(document, dict) or not isinstance(document.get("keys"), list)
            or not all(isinstance(k, dict) and k.get("kty") == "RSA" and k.get("kid")
                       for k in document["keys"])):
        raise InvalidToolSetting("the JWK Set must hold RSA keys, each with a kid")
    return {"keys": [{k: v for k, v in key.items() if k not in ("d", "p", "q", "dp", "dq", "qi")}
                     for key in document["keys"]]}


def find_app(session: Session, app: int | str) -> App:
    """The app with this id."""
    found = session.get(App, int(app)) if str(app).isdigit() else None
    if found is None:
        raise UnknownApp(f"no app with id {app!r}; see `gateway apps list`")
    return found


def app_district(session: Session, app_id: int, district_sourced_id: str | None) -> District:
    """The district an app is actively connected to: the one named, or its only one."""
    districts = list(session.execute(
        select(District).join(AppClient, AppClient.district_id == District.id)
        .where(AppClient.app_id == app_id, AppClient.revoked_at.is_(None))
        .distinct().order_by(District.sourced_id)).scalars())
    if district_sourced_id is not None:
        for district in districts:
            if district.sourced_id == district_sourced_id:
                return district
        raise UsageError(f"app {app_id} is not connected to district {district_sourced_id!r}")
    if len(districts) == 1:
        return districts[0]
    if not districts:
        raise UsageError(f"app {app_id} is not connected to any district (see `gateway apps create`)")
    raise UsageError(f"app {app_id} is connected to several districts "
                     f"({', '.join(d.sourced_id for d in districts)}): name one with --district")


def new_client_id() -> str:
    """A fresh client_id: 128 random bits in hex (never starts with '-', unlike base64url)."""
    return secrets.token_hex(16)


def new_deployment_id() -> str:
    """A fresh deployment_id."""
    return secrets.token_hex(8)


def register_tool(session: Session, *, app: int | str, district: str | None, name: str | None,
                  login_url: str, redirect_uris: Iterable[str], target_link_uri: str,
                  jwks_url: str | None = None, public_jwks: Mapping[str, Any] | None = None,
                  deep_linking_uri: str | None = None, custom: Mapping[str, Any] | None = None,
                  scopes: Iterable[str] | None = None, on_portal: bool = True,
                  status: str = TOOL_APPROVED, registration: Mapping[str, Any] | None = None,
                  now: dt.datetime) -> Registered:
    """Register a tool of ``app`` and deploy it in the app's district (LTI 1.3 Core §3.1.3)."""
    found = find_app(session, app)
    target_district = app_district(session, found.id, district)
    uris = [check_url(uri, "redirect URI") for uri in redirect_uris]
    if not uris:
        raise InvalidToolSetting("give at least one redirect URI")
    if (jwks_url is None) == (public_jwks is None):
        raise InvalidToolSetting("give the tool's JWKS URL or its public key (one of them)")
    tool = Tool(app_id=found.id, client_id=new_client_id(), name=(name or found.name).strip()[:255],
                login_url=check_url(login_url, "login URL"), redirect_uris=list(dict.fromkeys(uris)),
                target_link_uri=check_url(target_link_uri, "target link URI"),
                deep_linking_uri=check_url(deep_linking_uri, "deep linking URI")
                if deep_linking_uri else None,
                jwks_url=check_url(jwks_url, "JWKS URL") if jwks_url else None,
                public_jwks=dict(public_jwks) if public_jwks is not None else None,
                custom=check_custom(custom), scope=format_scope(check_scopes(scopes)),
                on_portal=on_portal, status=status,
                registration=dict(registration) if registration is not None else None,
                created_at=now, approved_at=now if status == TOOL_APPROVED else None)
    session.add(tool)
    session.flush()
    deployment = Deployment(tool_id=tool.id, district_id=target_district.id,
                            deployment_id=new_deployment_id(), created_at=now)
    session.add(deployment)
    session.flush()
    return Registered(client_id=tool.client_id, deployment_id=deployment.deployment_id,
                      district=target_district.sourced_id, status=tool.status)


def deploy_tool(session: Session, client_id: str, district: str, now: dt.datetime) -> Deployment:
    """Deploy a tool in another district its app is connected to (or return the deployment it
    already has there)."""
    tool = find_tool(session, client_id)
    target = app_district(session, tool.app_id, district)
    existing = session.execute(select(Deployment).where(
        Deployment.tool_id == tool.id, Deployment.district_id == target.id)).scalars().first()
    if existing is not None:
        return existing
    deployment = Deployment(tool_id=tool.id, district_id=target.id,
                            deployment_id=new_deployment_id(), created_at=now)
    session.add(deployment)
    session.flush()
    return deployment


def find_tool(session: Session, client_id: str) -> Tool:
    """The tool with this client_id."""
    tool = session.execute(select(Tool).where(Tool.client_id == client_id)).scalar_one_or_none()
    if tool is None:
        raise UnknownTool(f"no tool with client_id {client_id!r}; see `gateway tools list`")
    return tool


def approve_tool(session: Session, client_id: str, now: dt.datetime) -> Tool:
    """Let a pending (dynamically registered) tool launch and call services."""
    tool = find_tool(session, client_id)
    if tool.status != TOOL_APPROVED:
        tool.status = TOOL_APPROVED
        tool.approved_at = now
        session.flush()
    return tool


def list_tools(session: Session) -> list[ToolSummary]:
    """Every tool with its app and deployments, oldest first."""
    tools = session.execute(select(Tool, App.name).join(App, App.id == Tool.app_id)
                            .order_by(Tool.id)).all()
    deployments: dict[int, list[ToolDeployment]] = {}
    for tool_id, deployment_id, district in session.execute(
            select(Deployment.tool_id, Deployment.deployment_id, District.sourced_id)
            .join(District, District.id == Deployment.district_id).order_by(Deployment.id)):
        deployments.setdefault(tool_id, []).append(ToolDeployment(deployment_id, district))
    return [ToolSummary(client_id=tool.client_id, name=tool.name, app_id=tool.app_id,
                        app_name=app_name, status=tool.status, on_portal=tool.on_portal,
                        login_url=tool.login_url, redirect_uris=tuple(tool.redirect_uris),
                        target_link_uri=tool.target_link_uri,
                        deep_linking_uri=tool.deep_linking_uri, jwks_url=tool.jwks_url,
                        scopes=tuple(parse_scope(tool.scope)),
                        deployments=tuple(deployments.get(tool.id, ())),
                        created_at=tool.created_at, approved_at=tool.approved_at)
            for tool, app_name in tools]


def place_tool(session: Session, *, client_id: str, class_sourced_id: str | None = None,
               district: str | None, title: str | None, text: str | None = None,
               url: str | None = None, custom: Mapping[str, Any] | None = None,
               source: str = "placement", created_by: str | None = None,
               school_sourced_id: str | None = None, district_wide: bool = False,
               audience: str = FOR_EVERYONE, now: dt.datetime) -> ResourceLink:
    """Place a tool in a class (its members see it), at a school (the people of the school) or
    district-wide (everyone in the district) -- the last two for everyone or for staff only --:
    a resource link on the launchpads of those the app's policy lets it see."""
    wanted = [name for name, given in (("a class", class_sourced_id), ("a school", school_sourced_id),
                                       ("district-wide", district_wide)) if given]
    if len(wanted) != 1:
        raise UsageError("place a tool in one class, at one school, or district-wide")
    if audience not in AUDIENCES:
        raise UsageError(f"the audience is one of {', '.join(AUDIENCES)}")
    if class_sourced_id and audience != FOR_EVERYONE:
        raise UsageError("a class placement is for the class's members")
    tool = find_tool(session, client_id)
    deployments = list(session.execute(
        select(Deployment, District.sourced_id).join(District, District.id == Deployment.district_id)
        .where(Deployment.tool_id == tool.id)).all())
    if district is not None:
        deployments = [(d, s) for d, s in deployments if s == district]
    if not deployments:
        raise UsageError(f"tool {client_id} is not deployed in "
                         + (f"district {district!r}" if district else "any district"))
    if len(deployments) > 1:
        raise UsageError(f"tool {client_id} is deployed in several districts: name one with --district")
    deployment, _ = deployments[0]
    for table, sourced_id, what in ((Class, class_sourced_id, "class"),
                                    (Org, school_sourced_id, "school")):
        if sourced_id and session.execute(select(table.id).where(
                table.district_id == deployment.district_id, table.sourced_id == sourced_id,
                table.status == "active")).first() is None:
            raise UsageError(f"no active {what} {sourced_id!r} in the tool's district")
    placement = (PLACED_IN_CLASS if class_sourced_id else
                 PLACED_AT_SCHOOL if school_sourced_id else PLACED_DISTRICT_WIDE)
    return add_resource_link(session, deployment=deployment, class_sourced_id=class_sourced_id,
                             title=title or tool.name, text=text, url=url, custom=custom,
                             source=source, created_by=created_by, placement=placement,
                             school_sourced_id=school_sourced_id, audience=audience, now=now)


def add_resource_link(session: Session, *, deployment: Deployment, class_sourced_id: str | None,
                      title: str, text: str | None, url: str | None,
                      custom: Mapping[str, Any] | None, source: str, created_by: str | None,
                      placement: str = PLACED_IN_CLASS, school_sourced_id: str | None = None,
                      audience: str = FOR_EVERYONE, now: dt.datetime) -> ResourceLink:
    """Store a resource link of ``deployment`` in a class, at a school or district-wide
    (flushed)."""
    link = ResourceLink(link_id=secrets.token_hex(16), deployment_id=deployment.id,
                        district_id=deployment.district_id, class_sourced_id=class_sourced_id,
                        placement=placement, school_sourced_id=school_sourced_id,
                        audience=audience,
                        title=(title or "Untitled").strip()[:255] or "Untitled",
                        text=text, url=check_url(url, "content item URL") if url else None,
                        custom=check_custom(custom) or None, source=source, created_by=created_by,
                        created_at=now)
    session.add(link)
    session.flush()
    return link


def live_deployment(session: Session, deployment_pk: int) -> tuple[Tool, Deployment] | None:
    """A deployment whose tool is approved and whose app is still connected to its district."""
    row = session.execute(
        select(Tool, Deployment).join(Deployment, Deployment.tool_id == Tool.id)
        .where(Deployment.id == deployment_pk, Tool.status == TOOL_APPROVED,
               live_client_exists(Tool.app_id, Deployment.district_id))).one_or_none()
    return (row[0], row[1]) if row is not None else None


def tool_deployment(session: Session, tool: Tool, deployment_id: str) -> Deployment | None:
    """The tool's deployment ``deployment_id``, if the app is still connected to its district."""
    return session.execute(
        select(Deployment).where(Deployment.tool_id == tool.id,
                                 Deployment.deployment_id == deployment_id,
                                 live_client_exists(tool.app_id, Deployment.district_id))
    ).scalar_one_or_none()
