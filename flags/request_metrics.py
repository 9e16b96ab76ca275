"""Request metrics per environment, minute and cohort, recorded cheaply.

Each process adds to an in-memory buffer under a lock (a dict update, no I/O); the buffer
is written to RequestMetric with one increment-upsert per (environment, minute, cohort)
at most every FLAGS_METRICS_FLUSH_SECONDS, by the request that crosses the interval and
by a daemon thread in long-running processes, so an idle process flushes too. Readers
(the oracle, the dashboards) flush their own process first.
"""

from __future__ import annotations

import atexit
import bisect
import logging
import threading
import time
from datetime import datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from flags.flusher import Flusher
from flags.models import BUCKET_FIELDS, LATENCY_BOUNDS_MS, RequestMetric

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_buffer: dict[tuple[int, datetime, str], list[float]] = {}
_last_flush = time.monotonic()


def _interval() -> float:
    return float(getattr(settings, "FLAGS_METRICS_FLUSH_SECONDS", 5.0))


def record(environment_id: int, cohort: str, status: int, latency_ms: float) -> None:
    """Count one response (cost: a lock and a few additions)."""
    minute = timezone.now().replace(second=0, microsecond=0)
    key = (environment_id, minute, cohort)
    slot = bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)
    with _lock:
        row = _buffer.get(key)
        if row is None:
            row = _buffer[key] = [0.0] * (3 + len(BUCKET_FIELDS))
        row[0] += 1
        row[1] += status >= 500
        row[2] += latency_ms
        row[3 + slot] += 1
    if time.monotonic() - _last_flush >= _interval():
        try:
            flush()
        except Exception:  # the counts stay buffered; never fail a response over metrics
            logger.exception("Request metrics flush failed; will retry")
    _flusher.ensure_started()


def _upsert(key, row) -> None:
    from institutions.models import Environment
    from institutions.tenancy import environment_scope

    environment_id, minute, cohort = key
    increments = {
        "count": F("count") + int(row[0]),
        "errors": F("errors") + int(row[1]),
        "latency_ms_sum": F("latency_ms_sum") + row[2],
        **{name: F(name) + int(row[3 + i]) for i, name in enumerate(BUCKET_FIELDS) if row[3 + i]},
    }
    environment = Environment(pk=environment_id)
    with environment_scope(environment):
        rows = RequestMetric.objects.filter(
            environment_id=environment_id, minute=minute, cohort=cohort
        )
        if rows.update(**increments):
            return
        try:
            with transaction.atomic():
                RequestMetric.objects.create(
                    environment_id=environment_id,
                    minute=minute,
                    cohort=cohort,
                    count=int(row[0]),
                    errors=int(row[1]),
                    latency_ms_sum=row[2],
                    **{name: int(row[3 + i]) for i, name in enumerate(BUCKET_FIELDS)},
                )
        except IntegrityError:  # another process created the minute first
            rows.update(**increments)


def flush() -> int:
    """Write this process's buffered counts; returns the number of rows touched."""
    global _last_flush
    with _lock:
        pending = dict(_buffer)
        _buffer.clear()
        _last_flush = time.monotonic()
    items = list(pending.items())
    for done, (key, row) in enumerate(items):
        try:
            _upsert(key, row)
        except Exception:
            # Keep the counts of this key and of every key not yet written for the next
            # flush rather than lose them (database down).
            with _lock:
                for unwritten_key, unwritten in items[done:]:
                    merged = _buffer.setdefault(unwritten_key, [0.0] * len(unwritten))
                    for i, value in enumerate(unwritten):
                        merged[i] += value
            raise
    return len(pending)


# A failed round is retried silently: the counts stay buffered, and record() logs.
_flusher = Flusher("chimney-metrics-flush", flush, _interval)
atexit.register(_flusher.flush_at_exit)
