"""Fixtures of the console tests: the small district (d1: schools s1 and s2) imported, one staff
account per role, and browsers signed in to the console."""
from __future__ import annotations

import pytest

from gateway.admin.accounts import create_admin
from gateway.store.models import utcnow

from bundles import import_small_district
from console_support import PASSWORD, STAFF, csrf_of

@pytest.fixture
def district(database, tmp_path) -> dict:
    """The small district imported, with one staff account per role (password :data:`PASSWORD`)."""
    with database.session_scope() as session:
        rows = import_small_district(session, tmp_path / "bundle")
        for email, (role, schools) in STAFF.items():
            create_admin(session, district="d1", email=email, role=role, password=PASSWORD,
                         schools=schools, now=utcnow())
    return rows


@pytest.fixture
def console(app, district):
    """``console(email)``: a browser signed in to the console as ``email``, and its CSRF token."""
    def sign_in(email: str, password: str = PASSWORD):
        browser = app.test_client()
        token = csrf_of(browser.get("/admin/login").get_data(as_text=True))
        response = browser.post("/admin/login", data={"email": email, "password": password,
                                                      "csrf_token": token})
        assert response.status_code == 303, response.get_data(as_text=True)
        return browser, csrf_of(browser.get("/admin/").get_data(as_text=True))
    return sign_in
