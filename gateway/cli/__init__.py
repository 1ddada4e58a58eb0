"""The ``gateway`` command: thin click commands over service functions.

Each command group lives in its own module and is attached here. Commands run inside an app
context so they see the same configuration as the server.
"""
from __future__ import annotations

import click
from flask.cli import AppGroup, ScriptInfo

from gateway.cli import (admins, apps, backup, db, demo, exports, imports, jobs, keys, ledger,
                         lms, quickstart, serve, sources, tools, users, webhooks)


@click.group(cls=AppGroup)
def cli() -> None:
    """K-12 interoperability gateway: OneRoster 1.2 in and out, LTI 1.3, district-controlled sharing."""


for module in (admins, apps, backup, db, demo, exports, imports, jobs, keys, ledger, lms, quickstart,
               serve, sources, tools, users, webhooks):
    module.register(cli)


def main() -> None:
    """Console-script entry point: run the CLI against ``create_app()``."""
    from gateway import create_app

    cli.main(obj=ScriptInfo(create_app=lambda: create_app()), prog_name="gateway")
