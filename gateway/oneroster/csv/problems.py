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
