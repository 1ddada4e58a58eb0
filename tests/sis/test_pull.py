"""What `gateway sources add` accepts: intervals, addresses, the default token URL."""
from __future__ import annotations

import pytest

from gateway.sis.pull import (InvalidSource, check_url, default_token_url, format_interval,
                              parse_interval)


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("6h", 21600), ("1d", 86400),
                                           ("1d12h", 129600), (" 90M ", 5400), ("5m", 300)])
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text, message", [
    ("", "interval '': give minutes, hours or days, e.g. 30m, 6h, 1d"),
    ("24", "interval '24': give minutes, hours or days, e.g. 30m, 6h, 1d"),
    ("1w", "interval '1w': give minutes, hours or days, e.g. 30m, 6h, 1d"),
    ("-1h", "interval '-1h': give minutes, hours or days, e.g. 30m, 6h, 1d"),
    ("2m", "interval '2m': between 5m and 366d"),
    ("400d", "interval '400d': between 5m and 366d"),
])
def test_bad_intervals(text, message):
    with pytest.raises(InvalidSource) as error:
        parse_interval(text)
    assert str(error.value) == message


def test_intervals_print_in_their_largest_unit():
    assert [format_interval(s) for s in (86400, 21600, 5400, 300)] == ["1d", "6h", "90m", "5m"]


def test_addresses():
    assert check_url("https://sis.example/ims/oneroster/rostering/v1p2/", "--oneroster-url") == \
        "https://sis.example/ims/oneroster/rostering/v1p2"
    assert check_url("http://127.0.0.1:5000/x", "--oneroster-url") == "http://127.0.0.1:5000/x"
    assert check_url("http://localhost:5000/x", "--oneroster-url") == "http://localhost:5000/x"
    assert check_url("http://[::1]:5000/x", "--oneroster-url") == "http://[::1]:5000/x"


@pytest.mark.parametrize("url, message", [
    ("sis.example/v1p2", "--oneroster-url 'sis.example/v1p2': an absolute https:// URL"),
    ("ftp://sis.example/", "--oneroster-url 'ftp://sis.example/': an absolute https:// URL"),
    ("https://u:p@sis.example/", "--oneroster-url 'https://u:p@sis.example/': no credentials in "
     "the URL (use --client-id and --client-secret)"),
    ("https://sis.example/?a=1", "--oneroster-url 'https://sis.example/?a=1': the address alone, "
     "without ?query or #fragment"),
    ("http://sis.example/", "--oneroster-url 'http://sis.example/': https:// (plain http is "
     "accepted only for this host, localhost or 127.0.0.1: the client secret and the rosters "
     "would cross the network in clear)"),
])
def test_bad_addresses(url, message):
    with pytest.raises(InvalidSource) as error:
        check_url(url, "--oneroster-url")
    assert str(error.value) == message


def test_the_default_token_url_is_beside_the_rostering_service():
    assert default_token_url("https://sis.example/ims/oneroster/rostering/v1p2") == \
        "https://sis.example/oauth/token"
    assert default_token_url("https://sis.example/district/ims/oneroster/rostering/v1p2") == \
        "https://sis.example/district/oauth/token"
    assert default_token_url("https://sis.example:8443/api") == "https://sis.example:8443/oauth/token"
