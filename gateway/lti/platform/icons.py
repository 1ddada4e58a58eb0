"""A tool's icon on its launchpad tiles: an https URL the browser loads, or an image uploaded and
kept in the store (served by the gateway, so it works without internet). Without one, the tile
shows the tool's initial.

Uploaded images are PNG, JPEG, GIF or WebP, recognised by their first bytes rather than by what
the upload claims, and at most :data:`MAX_ICON_BYTES`: no SVG, which is a document that can
carry script.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import UsageError
from gateway.lti.platform.registration import check_url, find_tool
from gateway.store.lti import TOOL_APPROVED, Tool, ToolIcon

MAX_ICON_BYTES = 256 * 1024

_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def image_type(data: bytes) -> str | None:
    """The media type of an icon image by its signature (None: not an image we keep)."""
    for signature, media_type in _SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def set_icon(session: Session, tool: Tool, *, url: str | None = None,
             image: bytes | None = None) -> None:
    """Give ``tool`` an icon: ``url`` (https) or ``image`` (kept in the store); neither clears
    it. One replaces the other."""
    if url and image:
        raise UsageError("give an icon URL or an image, not both")
    media_type = None
    if image is not None:
        if len(image) > MAX_ICON_BYTES:
            raise UsageError(f"an icon image is at most {MAX_ICON_BYTES // 1024} KiB")
        media_type = image_type(image)
        if media_type is None:
            raise UsageError("an icon image is a PNG, JPEG, GIF or WebP file")
    icon = session.get(ToolIcon, tool.id)
    if not url and image is None:
        if icon is not None:
            session.delete(icon)
        session.flush()
        return
    if icon is None:
        icon = ToolIcon(tool_id=tool.id)
        session.add(icon)
    icon.url = check_url(url, "the icon URL") if url else None
    icon.image = image
    icon.media_type = media_type
    session.flush()


def set_icon_of(session: Session, client_id: str, *, url: str | None = None,
                image: bytes | None = None) -> Tool:
    """:func:`set_icon` for the tool ``client_id`` (``gateway tools icon``)."""
    tool = find_tool(session, client_id)
    set_icon(session, tool, url=url, image=image)
    return tool


def stored_icon(session: Session, client_id: str) -> tuple[bytes, str] | None:
    """The uploaded icon of an approved tool and its media type (None if it has none)."""
    row = session.execute(select(ToolIcon.image, ToolIcon.media_type)
                          .join(Tool, Tool.id == ToolIcon.tool_id).where(
        Tool.client_id == client_id, Tool.status == TOOL_APPROVED,
        ToolIcon.image.is_not(None))).one_or_none()
    return (row[0], row[1]) if row is not None else None


def icon_origins(urls) -> list[str]:
    """The origins of icon URLs, for the page's ``img-src`` (sorted, each once)."""
    origins = set()
    for url in urls:
        if url:
            parts = urlsplit(url)
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return sorted(origins)
