"""Paging links of the OneRoster REST binding: the ``Link`` header (first, prev, next, last) a
collection page carries beside ``X-Total-Count``, the same for every service. No flask here."""
from __future__ import annotations

from urllib.parse import quote, urlencode


def paging_links(url: str, query: list[tuple[str, str]], offset: int, limit: int,
                 total: int) -> str:
    """The ``Link`` header value for a page at ``offset`` of ``limit`` among ``total`` records.

    ``query`` is the request's other query parameters (kept, in order). Pages lie on the grid of
    the current offset; a request past the end gets first, prev (the last page) and last.
    """
    if offset < total:
        last = offset + (total - 1 - offset) // limit * limit
    else:
        last = max(0, (total - 1) // limit * limit)
    others = urlencode([(name, value) for name, value in query if name not in ("limit", "offset")],
                       quote_via=quote)
    # The other parameters are encoded once; limit and offset are numbers, which need no quoting.
    prefix = f"<{url}?{others}&limit={limit}&offset=" if others else f"<{url}?limit={limit}&offset="

    def link(at: int, rel: str) -> str:
        return f'{prefix}{at}>; rel="{rel}"'

    links = [link(0, "first")]
    if offset > 0:
        links.append(link(max(0, min(offset - limit, last)), "prev"))
    if offset + limit < total:
        links.append(link(offset + limit, "next"))
    links.append(link(last, "last"))
    return ", ".join(links)
