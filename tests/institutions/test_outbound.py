"""Requests to URLs that institutions or members give reach public addresses only."""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from institutions import outbound


class _Peer:
    """A local HTTP server that counts the requests it gets."""

    def __init__(self) -> None:
        self.hits = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                peer.hits += 1
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def peer():
    server = _Peer()
    yield server
    server.close()


@pytest.fixture
def public_only(settings):
    settings.OUTBOUND_PRIVATE_ALLOWED = False
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    return settings


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # shared address space (carrier-grade NAT)
        ("0.0.0.0", False),  # noqa: S104
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1%eth0", False),
        ("::ffff:127.0.0.1", False),  # IPv4 inside IPv6
        ("224.0.0.1", False),
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("not an address", False),
    ],
)
def test_address_allowed__public_addresses_only(public_only, address, allowed):
    assert outbound.address_allowed(address) is allowed


def test_address_allowed__an_allowed_network_and_the_development_switch(settings):
    settings.OUTBOUND_PRIVATE_ALLOWED = False
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert outbound.address_allowed("10.20.5.6")
    assert not outbound.address_allowed("10.21.5.6")
    settings.OUTBOUND_PRIVATE_ALLOWED = True
    assert outbound.address_allowed("10.21.5.6")


@pytest.mark.parametrize("client", ["urllib", "requests"])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_public_only__inside_address__refused_before_any_request(public_only, peer, client, host):
    url = peer.url(host)
    get = {
        "urllib": lambda: urllib.request.urlopen(url, timeout=5),  # noqa: S310
        "requests": lambda: requests.get(url, timeout=5),
    }[client]
    with (
        pytest.raises(OSError, match="not a public internet address") as caught,
        outbound.public_only(),
    ):
        get()
    refused = outbound.refused_in(caught.value)
    assert refused is not None
    assert "is not a public internet address" in str(refused)
    assert peer.hits == 0
    # Outside the block (the platform's own services) nothing changes.
    assert requests.get(url, timeout=5).status_code == 200
    assert peer.hits == 1


def test_public_only__guards_only_its_own_thread(public_only, peer):
    results = []
    inside, done = threading.Event(), threading.Event()

    def other_thread():
        inside.wait(5)
        results.append(requests.get(peer.url(), timeout=5).status_code)
        done.set()

    threading.Thread(target=other_thread).start()
    with outbound.public_only():
        inside.set()
        done.wait(5)
    assert results == [200]


def test_url_problem__inside_host_named_at_save_time(public_only):
    assert "127.0.0.1 is not a public internet address" in outbound.url_problem(
        "http://127.0.0.1:8000/hook"
    )
    assert "localhost (127.0.0.1)" in outbound.url_problem("https://localhost/hook")
    assert outbound.url_problem("https://8.8.8.8/hook") == ""
    # A name that does not resolve (yet) is checked when the connection is made.
    assert outbound.url_problem("https://no-such-host.invalid/hook") == ""


def test_refused_in__other_errors_with_text_reasons__none():
    import urllib.error

    assert outbound.refused_in(urllib.error.URLError("Name or service not known")) is None
    assert outbound.refused_in(ValueError("x")) is None
    wrapped = urllib.error.URLError(outbound.AddressRefused("10.0.0.1 is not public"))
    assert outbound.refused_in(wrapped) is wrapped.reason
