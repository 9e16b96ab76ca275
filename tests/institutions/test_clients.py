"""The client's address behind our own proxies: X-Forwarded-For is read only as far as the
proxies we trust appended to it."""

import pytest
from django.test import RequestFactory

from institutions.clients import client_address


def _request(remote="10.0.0.1", forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


def test_client_address__no_trusted_proxy__ignores_the_header(settings):
    settings.TRUSTED_PROXY_HOPS = 0
    assert client_address(_request(forwarded="203.0.113.9")) == "10.0.0.1"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the first entry is the client's word
        (2, "198.51.100.1, 203.0.113.9, 192.0.2.7", "203.0.113.9"),
        (1, " 2001:db8::1 ", "2001:db8::1"),
    ],
    ids=["one-proxy", "one-proxy-spoofed-entry", "two-proxies", "ipv6"],
)
def test_client_address__behind_trusted_proxies__takes_the_entry_that_many_from_the_right(
    settings, hops, forwarded, expected
):
    settings.TRUSTED_PROXY_HOPS = hops
    assert client_address(_request(forwarded=forwarded)) == expected


@pytest.mark.parametrize(
    ("hops", "forwarded"),
    [(1, None), (1, ""), (2, "203.0.113.9"), (1, "not-an-address"), (1, "203.0.113.9, ")],
    ids=["no-header", "empty", "fewer-entries-than-proxies", "garbage", "blank-last-entry"],
)
def test_client_address__header_missing_short_or_garbled__falls_back_to_the_peer(
    settings, hops, forwarded
):
    settings.TRUSTED_PROXY_HOPS = hops
    assert client_address(_request(forwarded=forwarded)) == "10.0.0.1"
