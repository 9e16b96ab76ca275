"""Member events, decoupled: lower apps emit them, a higher app (flags) records them.

homes emits engagement events (offer viewed, saved, selected) without importing flags;
flags registers a sink in its AppConfig.ready() that validates them against the data plan
and stores them. `is_test` is always derived from the member, never given by a caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
    # False for a page view (one on every visit): the sink may hold it for a moment and
    # write it with others, committed without waiting for the database's disk flush. An
    # error after emit cannot lose it; a process killed outright, or a crash of the
    # database server, can lose the last second or so of such events (the flags sink:
    # flags.services.event_buffer). True: written in the emitter's transaction.
    sync_commit: bool = True


# What the platform itself records, from what the member did or what happened to them;
# pages may not send these through the analytics beacon (a member could forge selections).
SERVER_EVENTS = frozenset(
    {
        "dashboard_viewed",
        "offer_viewed",
        "offer_saved",
        "offer_selected",
        "offer_matched",
        "home_value_changed",
        "member_enrolled",
        "member_opted_out",
        "channel_preference_set",
        "flag_impression",
    }
)

Sink = Callable[[MemberEvent], None]
BatchSink = Callable[[list[MemberEvent]], None]
_sinks: list[Sink] = []
_batch_sinks: dict[Sink, BatchSink] = {}
_muted: ContextVar[bool] = ContextVar("chimney_events_muted", default=False)


@contextmanager
def muted() -> Iterator[None]:
    """Deliver no event to the sinks inside: a bulk data load (mock data, an anonymized copy
    into staging) is not member activity, and must not start journeys or fill analytics."""
    token = _muted.set(True)
    try:
        yield
    finally:
        _muted.reset(token)


def register_sink(sink: Sink, *, batch: BatchSink | None = None) -> Sink:
    """Receive every emitted event (called inside the emitter's transaction).

    `batch`, when given, receives the events of one emit_many() call at once (bulk writes).
    """
    if sink not in _sinks:
        _sinks.append(sink)
    if batch is not None:
        _batch_sinks[sink] = batch
    return sink


def emit(
    *,
    environment,
    name: str,
    member=None,
    properties: dict[str, Any] | None = None,
    source: str = "server",
    occurred_at: datetime | None = None,
    sync_commit: bool = True,
) -> MemberEvent:
    """Emit one member event to every registered sink (sync_commit: see MemberEvent)."""
    event = MemberEvent(
        environment_id=environment.pk,
        name=name,
        member_id=getattr(member, "pk", None),
        is_test=bool(getattr(member, "is_test", False)),
        properties=dict(properties or {}),
        source=source,
        occurred_at=occurred_at or timezone.now(),
        sync_commit=sync_commit,
    )
    if _muted.get():
        return event
    for sink in list(_sinks):
        sink(event)
    return event


def emit_many(*, environment, items, source: str = "server") -> list[MemberEvent]:
    """Emit many events at once: items are (name, member, properties) triples.

    Batch-capable sinks get the whole list in one call, so a refresh of many homes can
    record its events with bulk writes.
    """
    now = timezone.now()
    batch = [
        MemberEvent(
            environment_id=environment.pk,
            name=name,
            member_id=getattr(member, "pk", None),
            is_test=bool(getattr(member, "is_test", False)),
            properties=dict(properties or {}),
            source=source,
            occurred_at=now,
        )
        for name, member, properties in items
    ]
    if not batch or _muted.get():
        return batch
    for sink in list(_sinks):
        if sink in _batch_sinks:
            _batch_sinks[sink](batch)
        else:
            for event in batch:
                sink(event)
    return batch
