"""``gateway import`` and ``gateway imports``: OneRoster CSV ingestion."""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Attach the import commands."""
