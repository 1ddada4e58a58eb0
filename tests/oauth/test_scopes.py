"""A token's scope: what was asked and granted (RFC 6749 §3.3)."""
from __future__ import annotations

import pytest

from gateway.oauth.scopes import format_scope, parse_scope, token_scope

GRANTED = "a b c"


@pytest.mark.parametrize(("asked", "issued"), [
    (None, "a b c"),
    ("", "a b c"),
    ("   ", "a b c"),
    ("b", "b"),
    ("c a", "a c"),
    ("c  x  c", "c"),
    ("x y", None),
])
def test_token_scope(asked, issued):
    assert token_scope(GRANTED, asked) == issued


def test_parse_and_format_drop_repeats_and_keep_order():
    assert parse_scope(" b a  b ") == ["b", "a"]
    assert parse_scope(None) == []
    assert format_scope(["b", "a", "b"]) == "b a"
