"""Helpers of the export-format tests: edit a copied fixture."""
from __future__ import annotations

from pathlib import Path


def rewrite(path: Path, text: str) -> None:
    """Replace a file of a copied fixture."""
    path.write_text(text, encoding="utf-8")


def replace_in(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) by ``new`` in a file of a copied fixture."""
    content = path.read_text(encoding="utf-8")
    assert old in content, old
    path.write_text(content.replace(old, new), encoding="utf-8")
