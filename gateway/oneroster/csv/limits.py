"""Bounds on what an import reads, so that a hostile or broken bundle is refused before it costs
memory or time: the zip's directory is checked before anything is extracted, and lines and
fields are cut off as soon as they pass their limit (a 1 GB line is never held whole).

Each limit is a ``GATEWAY_IMPORT_*`` setting (gateway.config); every refusal names the setting,
so an administrator with a genuinely larger district knows what to raise.
"""
from __future__ import annotations

import csv
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Iterator, Mapping


@dataclass(frozen=True)
class ImportLimits:
    """The bounds of one import (defaults admit a 1M-student district with room to spare)."""

    # Uncompressed bytes of all the bundle's files together.
    max_bundle_bytes: int = 4 * 1024 ** 3
    # Uncompressed size over compressed size, per zip entry (real CSV exports stay under 20).
    max_compression_ratio: float = 100.0
    # Entries in a zip (folders included) or files in a bundle folder.
    max_entries: int = 1000
    # Characters of one physical line, line break excluded.
    max_line_length: int = 1024 * 1024
    # Characters of one field (a quoted field may span lines).
    max_field_length: int = 128 * 1024

    # The setting behind each limit, named in refusals.
    SETTINGS = {"max_bundle_bytes": "GATEWAY_IMPORT_MAX_BUNDLE_BYTES",
                "max_compression_ratio": "GATEWAY_IMPORT_MAX_COMPRESSION_RATIO",
                "max_entries": "GATEWAY_IMPORT_MAX_ENTRIES",
                "max_line_length": "GATEWAY_IMPORT_MAX_LINE_LENGTH",
                "max_field_length": "GATEWAY_IMPORT_MAX_FIELD_LENGTH"}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ImportLimits":
        """The limits from the app's settings (``IMPORT_MAX_BUNDLE_BYTES``...)."""
        return cls(**{name: config[setting[len("GATEWAY_"):]] for name, setting in cls.SETTINGS.items()})

    def setting(self, name: str) -> str:
        """``limit value (GATEWAY_SETTING)``, as refusals quote it."""
        return f"{getattr(self, name)} ({self.SETTINGS[name]})"


class LineTooLong(Exception):
    """A physical line passed ``max_line_length``; reading stopped there."""


def bounded_lines(handle: IO[str], max_line_length: int) -> Iterator[str]:
    """The lines of ``handle`` (line breaks kept, for csv), each read with a bound so that a
    line longer than ``max_line_length`` raises :class:`LineTooLong` after at most that many
    characters have been read, rather than after the whole line is in memory."""
    readline = handle.readline
    # Room for the limit plus a CRLF: a line exactly at the limit is still accepted.
    chunk = max_line_length + 2
    while True:
        line = readline(chunk)
        if not line:
            return
        if len(line) > max_line_length and len(line.rstrip("\r\n")) > max_line_length:
            raise LineTooLong()
        yield line


@contextmanager
def field_size_limit(limit: int) -> Iterator[None]:
    """Apply csv's field size limit for the block (csv keeps it per process), then restore it."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def is_field_too_large(exc: csv.Error) -> bool:
    """Whether csv refused a field for passing the field size limit."""
    return "field larger than field limit" in str(exc)
