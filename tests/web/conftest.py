"""Fixtures of the browser tests: Debian's chromium under Playwright, and a served demo district
(see :mod:`web_support`)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.cli import cli
from gateway.store.models import User

from web_support import PASSWORD, launch_chromium

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cli"))
from served import Served  # noqa: E402


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium under Playwright (skipped without it, except on CI)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def demo(runner, database, database_url, tmp_path):
    """A served demo district: the server, a student's username (password :data:`PASSWORD`)
    and the district's first admin, it@district-1.test (same password)."""
    assert runner.invoke(cli, ["quickstart", "--no-serve", "--students", "20"]).exit_code == 0
    with database.session_scope() as session:
        student = session.execute(select(User.username).where(User.sourced_id == "stu-0001")
                                  ).scalar_one()
    result = runner.invoke(cli, ["users", "set-password", student, "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["admins", "create", "--district", "district-1", "--email",
                                 "it@district-1.test", "--role", "district_admin"],
                           env={"GATEWAY_ADMIN_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_ISSUER"}
    env.update(GATEWAY_DATABASE_URL=database_url, GATEWAY_INSTANCE_PATH=str(tmp_path / "instance"))
    server = Served(env, ["serve"])
    yield server, student
    server.stop()
