"""``gateway demo``: (to be filled in)."""
from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Attach the commands of this module."""
