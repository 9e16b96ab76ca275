"""Who is asking: the client's network address, behind as many proxies as we trust.

Per-client limits (member login, unsubscribe) key on this address. Behind a load balancer
REMOTE_ADDR is the balancer's own address, the same for everyone; the client's address is
in X-Forwarded-For, which each proxy extends with the address it received the request
from. Only the entries our own proxies appended can be trusted (a client can send any
header it likes), so with TRUSTED_PROXY_HOPS = n the client is the n-th entry from the
right. With 0 (no proxy in front) the header is never read.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request) -> str:
    """The client's IP address: REMOTE_ADDR, or the TRUSTED_PROXY_HOPS-th entry from the
    right of X-Forwarded-For when proxies we run sit in front of us."""
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    hops = getattr(settings, "TRUSTED_PROXY_HOPS", 0)
    if hops <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    entries = forwarded.split(",") if forwarded else []
    if len(entries) < hops:
        # Fewer entries than proxies: the request bypassed one of them, so no entry is
        # known to come from a proxy of ours.
        return remote
    return _address(entries[-hops]) or remote
