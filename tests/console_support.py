"""What the console tests share: the staff of the small district and reading a page's CSRF
token."""
from __future__ import annotations

import re

PASSWORD = "correct horse battery"
STAFF = {"admin@d1.test": ("district_admin", []), "lead@d1.test": ("tech_lead", ["s1"]),
         "help@d1.test": ("help_desk", [])}


def csrf_of(page: str) -> str:
    """The CSRF token in a page's forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)
