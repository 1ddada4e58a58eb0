"""Tables for connected apps: their OAuth clients and tokens. (Filled in by the OAuth work.)"""
from __future__ import annotations

from gateway.store.models import Base  # noqa: F401
