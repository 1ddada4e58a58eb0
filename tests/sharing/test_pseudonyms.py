"""Pseudonyms (AES-SIV, key per app by HKDF): opaque, URL-safe, stable, reversible, and refused
when forged, altered, or used in another namespace, district or app."""
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sharing.pseudonyms import Pseudonymizer, derive_app_key

URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")


@given(value=st.text(min_size=1, max_size=255))
def test_round_trip_and_url_safe(value):
    pseudonyms = Pseudonymizer("secret", 7, 1)
    token = pseudonyms.encode("user", value)
    assert URL_SAFE.fullmatch(token)
    assert value not in token or len(value) < 8
    assert Pseudonymizer("secret", 7, 1).decode("user", token) == value


def test_deterministic_per_app_district_and_namespace():
    token = Pseudonymizer("secret", 1, 1).encode("user", "u1")
    assert Pseudonymizer("secret", 1, 1).encode("user", "u1") == token
    assert Pseudonymizer("secret", 2, 1).encode("user", "u1") != token
    assert Pseudonymizer("secret", 1, 2).encode("user", "u1") != token
    assert Pseudonymizer("secret", 1, 1).encode("class", "u1") != token
    assert Pseudonymizer("other", 1, 1).encode("user", "u1") != token


def test_decoding_refuses_other_contexts():
    token = Pseudonymizer("secret", 1, 1).encode("user", "u1")
    assert Pseudonymizer("secret", 2, 1).decode("user", token) is None
    assert Pseudonymizer("secret", 1, 2).decode("user", token) is None
    assert Pseudonymizer("secret", 1, 1).decode("class", token) is None
    assert Pseudonymizer("other", 1, 1).decode("user", token) is None


@pytest.mark.parametrize("garbage", ["", "=", "abc", "a" * 5, "!!!!", "a" * 2000, "é" * 24,
                                     "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_garbage_decodes_to_nothing(garbage):
    assert Pseudonymizer("secret", 1, 1).decode("user", garbage) is None


def test_altered_and_non_canonical_tokens_are_refused():
    pseudonyms = Pseudonymizer("secret", 1, 1)
    token = pseudonyms.encode("user", "u1")  # 23 bytes: the last character carries 2 spare bits
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert Pseudonymizer("secret", 1, 1).decode("user", flipped) is None
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(token[-1])
    variants = [token[:-1] + alphabet[value ^ bit] for bit in (1, 2)]
    for variant in variants:
        assert Pseudonymizer("secret", 1, 1).decode("user", variant) is None


def test_empty_values_stay_empty():
    assert Pseudonymizer("secret", 1, 1).encode("user.username", "") == ""


def test_a_secret_is_required():
    with pytest.raises(ValueError):
        derive_app_key("", 1)
