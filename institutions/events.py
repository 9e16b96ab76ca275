"""Member events, decoupled: lower apps emit them, a higher app (flags) records them.

homes emits engagement events (offer viewed, saved, selected) without importing flags;
flags registers a sink in its AppConfig.ready() that validates them against the data plan
and stores them. `is_test` is always derived from the member, never given by a caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone


@dataclass(frozen=True)
class MemberEvent:
    environment_id: int
    name: str  # e.g. "offer_viewed"
    member_id: int | None
    is_test: bool  # derived from the member by emit(); never from a client
    properties: dict[str, Any] = field(default_factory=dict)
    source: str = "server"  # server | web | api
    occurred_at: datetime = field(default_factory=timezone.now)


Sink = Callable[[MemberEvent], None]
_sinks: list[Sink] = []


def register_sink(sink: Sink) -> Sink:
    """Receive every emitted event (called inside the emitter's transaction)."""
    if sink not in _sinks:
        _sinks.append(sink)
    return sink


def emit(
    *,
    environment,
    name: str,
    member=None,
    properties: dict[str, Any] | None = None,
    source: str = "server",
    occurred_at: datetime | None = None,
) -> MemberEvent:
    """Emit one member event to every registered sink."""
    event = MemberEvent(
        environment_id=environment.pk,
        name=name,
        member_id=getattr(member, "pk", None),
        is_test=bool(getattr(member, "is_test", False)),
        properties=dict(properties or {}),
        source=source,
        occurred_at=occurred_at or timezone.now(),
    )
    for sink in list(_sinks):
        sink(event)
    return event
