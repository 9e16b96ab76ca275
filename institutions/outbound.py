"""Requests to addresses that institutions or members give: the public internet only.

Webhook endpoints (institution IT), CalDAV servers (lending) and push endpoints (a member's
browser) are URLs typed by people outside the platform's operators. A worker that follows
them would otherwise reach whatever the platform's network reaches: the database, Redis,
a cloud metadata service, the admin on localhost. So such requests run inside
`public_only()`, which refuses to open a connection to any address that is not global
(loopback, private, link-local, shared, reserved, multicast), checked on the address the
socket is about to connect to — after DNS, after any redirect or service discovery the
library did — so a name that resolves to an inside address, or starts to, is refused too.

`OUTBOUND_ALLOWED_NETWORKS` (CIDRs) lets an operator allow inside networks (an institution's
calendar server reached over a private link); development and the tests allow every address
(`OUTBOUND_PRIVATE_ALLOWED`), since their peers run on this machine.

`url_problem()` says at save time what is wrong with a URL whose host is an inside address
(a literal, or a name that resolves to one), for forms to show; a name that does not resolve
yet is left to the check at connection time.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

_guarded: ContextVar[bool] = ContextVar("chimney_outbound_guarded", default=False)
_install_lock = threading.Lock()
_installed = False


class AddressRefused(ConnectionRefusedError):
    """A connection to an address outside the public internet, refused before it was made.

    An OSError (a ConnectionRefusedError), so callers that retry network failures and
    record them treat it as one, with this message."""


@lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def address_allowed(host: str) -> bool:
    """Whether a connection to this IP address may be opened from a guarded block."""
    if getattr(settings, "OUTBOUND_PRIVATE_ALLOWED", False):
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    allowed = _networks(tuple(getattr(settings, "OUTBOUND_ALLOWED_NETWORKS", ())))
    public = address.is_global and not address.is_multicast
    return public or any(address in network for network in allowed)


def _refusal(host: str) -> str:
    return (
        f"{host} is not a public internet address: the platform does not connect to "
        "loopback, private, link-local or reserved addresses for a URL given to it"
    )


def _check(sock, address) -> None:
    if _guarded.get() and sock.family in (socket.AF_INET, socket.AF_INET6):
        host = str(address[0])
        if not address_allowed(host):
            raise AddressRefused(_refusal(host))


def _install() -> None:
    """Wrap socket connects once per process; they check only inside `public_only()`."""
    global _installed
    with _install_lock:
        if _installed:
            return
        connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

        def guarded_connect(self, address):
            _check(self, address)
            return connect(self, address)

        def guarded_connect_ex(self, address):
            _check(self, address)
            return connect_ex(self, address)

        socket.socket.connect = guarded_connect
        socket.socket.connect_ex = guarded_connect_ex
        _installed = True


@contextmanager
def public_only() -> Iterator[None]:
    """Inside this block, this thread's connections go to public addresses only."""
    _install()
    token = _guarded.set(True)
    try:
        yield
    finally:
        _guarded.reset(token)


def url_problem(url: str) -> str:
    """Why a URL's host is refused (empty when it is not, or does not resolve yet)."""
    host = urlsplit(url).hostname
    if not host or getattr(settings, "OUTBOUND_PRIVATE_ALLOWED", False):
        return ""
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return ""  # checked again when a connection is made
        addresses = sorted({str(info[4][0]) for info in found})
    refused = [a for a in addresses if not address_allowed(a)]
    if not refused:
        return ""
    shown = host if refused == [host] else f"{host} ({refused[0]})"
    return _refusal(shown) + "."


def refused_in(error: BaseException | None) -> AddressRefused | None:
    """The AddressRefused that caused this error, however a library wrapped it."""
    seen = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
    return None
