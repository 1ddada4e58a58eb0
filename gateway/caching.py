"""A bounded in-process cache, shared by the layers that remember derived data between requests
(page counts and anchors, parsed sharing policies). No flask, no database."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Hashable


class LRUCache:
    """A bounded, thread-safe mapping that forgets the least recently used entry.

    ``get`` answers None for a missing key, so a caller that must remember None stores it
    wrapped (e.g. in a one-tuple).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The value under ``key`` (now the most recently used), or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def get_many(self, keys: list[Hashable]) -> list[Any]:
        """The values under ``keys`` (None for each missing one), in order, found ones now the
        most recently used: one lock for a page's worth of lookups."""
        with self._lock:
            items = self._items
            found = [items.get(key) for key in keys]
            touch = items.move_to_end
            for key, value in zip(keys, found):
                if value is not None:
                    touch(key)
            return found

    def put(self, key: Hashable, value: Any) -> None:
        """Remember ``value`` under ``key``, forgetting the oldest entries beyond ``size``."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class Unshared:
    """A cache identity that belongs to one object only (e.g. a visibility made without a known
    policy version): it keeps that object's entries apart from every other's, and tells caches of
    per-record results not to fill with what no other request will ever ask for. Equal only to
    itself."""

    __slots__ = ("label",)

    def __init__(self, label: str) -> None:
        self.label = label

    def __repr__(self) -> str:
        return f"Unshared({self.label!r}, {id(self):#x})"
