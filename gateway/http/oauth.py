"""The OAuth 2.0 token endpoint. (Filled in by the OAuth work.)"""
from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("oauth", __name__)
