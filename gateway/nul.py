"""NUL characters: PostgreSQL cannot store or compare one in text (SQLite can), and no value the
gateway takes (an id, a name, a filter, a claim) legitimately holds one, so every way in refuses
them before they reach the database. No flask here."""
from __future__ import annotations

from typing import Any

NUL = "\x00"


def holds_nul(value: Any) -> bool:
    """Whether a string, or a decoded JSON document in any string, key or value, holds a NUL."""
    # A stack, not recursion: a document may nest deeper than Python's recursion limit.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
