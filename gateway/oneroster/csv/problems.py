"""A problem found in a bundle: where it is, what was there and what was expected."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One defect of a bundle, located by file, line (1 = header) and column."""

    file: str
    line: int | None
    column: str | None
    value: str | None
    expected: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        column = f" column {self.column}:" if self.column else ""
        value = f" value {self.value!r}," if self.value is not None else ""
        return f"{where}:{column}{value} expected {self.expected}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for machine-readable reports."""
        return asdict(self)


@dataclass
class Notice:
    """Something an import normalized because its meaning was unambiguous (a date-only
    timestamp, an enumeration value in the wrong case...): where it was first seen, the value read
    and the value stored, and how many more like it followed."""

    file: str
    line: int | None
    column: str | None
    read: str | None
    stored: str | None
    what: str
    more: int = 0

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        column = f" column {self.column}:" if self.column else ""
        values = ""
        if self.read is not None:
            values = f" read {self.read!r}" + (f", stored {self.stored!r}" if self.stored is not None else "")
            values += ";"
        more = f" ({self.more} more like it)" if self.more else ""
        return f"{where}:{column}{values} {self.what}{more}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for machine-readable reports."""
        return asdict(self)

    def as_problem(self) -> Problem:
        """The refusal this notice becomes under ``--strict``."""
        more = f" ({self.more} more like it)" if self.more else ""
        stored = f"; without --strict it would be read as {self.stored!r}" if self.stored is not None else ""
        return Problem(self.file, self.line, self.column, self.read,
                       f"the binding's exact form ({self.what}{stored}){more}")


class Notices:
    """The notices of one import, one per kind of normalization per file and column: the first
    occurrence in full, the others counted."""

    def __init__(self) -> None:
        self._by_key: dict[tuple, Notice] = {}

    def add(self, notice: Notice) -> None:
        """Record ``notice``, or count it as one more like the first of its kind."""
        key = (notice.file, notice.column, notice.what)
        first = self._by_key.get(key)
        if first is None:
            self._by_key[key] = notice
        else:
            first.more += 1

    def __iter__(self):
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)
