"""Page views, written in batches: each process keeps the rows of its page-view events for
at most FLAGS_EVENTS_FLUSH_SECONDS, then writes them with one COPY.

A page view is recorded on every visit of the busiest pages. Written one by one, its
INSERT is a database round trip of its own on every page: about a sixth of the page's
processor time, measured on the member dashboard. Buffered, a process writes a second's
views at once, and a view costs the page a list append.

What is buffered is the row as it would have been inserted: classified under the data plan
in force at the view, with its times, so a later write changes nothing but the event's id
(drawn at the write, so ids follow writes, not views, by up to the interval).

Durability, and what can lose a view:
- the rows are written by the request that finds the oldest one FLAGS_EVENTS_FLUSH_SECONDS
  old, by a daemon thread in long-running processes (so an idle process writes too), and
  when the process exits (gunicorn's graceful stop, a worker recycled after max_requests,
  a deploy);
- a database error keeps the rows for the next write, which retries (logged each time);
  a row the database refuses (its member or environment deleted since the view) is
  dropped alone, and logged; beyond MAX_BUFFERED rows the oldest are dropped, logged;
- a process killed outright (SIGKILL, out of memory) loses the views it had not written:
  at most the interval's. The commit itself does not wait for the disk flush, as before:
  a database crash can lose the last fraction of a second of committed views.
Events that record a member's decision (a save, a select, a consent) are never buffered:
they are written in the caller's transaction.

Readers in this process (the analytics selectors) write the buffer first, so a view shows
at once in the same process; other processes see it within the interval.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from django.conf import settings
from django.db import DataError, IntegrityError, connection

from flags.flusher import Flusher

# Refusals of a row itself (a constraint, a value): retrying cannot help.
_ROW_REFUSED = (IntegrityError, DataError)

logger = logging.getLogger(__name__)
_NOT_WRITTEN = "Page-view events not written; will retry"

#: Rows written by a request as soon as this many are waiting, whatever their age.
MAX_BATCH = 1000
#: While the database is unreachable, a process keeps at most this many rows (the oldest
#: are dropped beyond it, and the drop is logged as an error).
MAX_BUFFERED = 100_000

_lock = threading.Lock()
_rows: list[tuple] = []
_oldest = 0.0  # time.monotonic() of the oldest waiting row


def interval() -> float:
    """Seconds a row may wait; 0 = no buffering (every view is written at once)."""
    return float(getattr(settings, "FLAGS_EVENTS_FLUSH_SECONDS", 0.0))


def add(values: tuple) -> None:
    """Buffer one row of column values (flags.services.events._column_values)."""
    global _oldest
    now = time.monotonic()
    with _lock:
        if not _rows:
            _oldest = now
        _rows.append(values)
        due = len(_rows) >= MAX_BATCH or now - _oldest >= interval()
    if due:
        try:
            flush()
        except Exception:  # the rows stay buffered; never fail a page over its view
            logger.exception(_NOT_WRITTEN)
    _flusher.ensure_started()


def pending() -> int:
    """How many rows this process has not written yet."""
    with _lock:
        return len(_rows)


def flush() -> int:
    """Write this process's buffered rows; returns how many were written.

    On a database error the rows are put back (ahead of newer ones) and the error raised.
    Inside a transaction nothing is written: the views must not commit, or roll back, with
    the caller's work (the interval's next write takes them).
    """
    from flags.services.events import copy_rows

    if connection.in_atomic_block:
        return 0
    with _lock:
        batch = _rows[:]
        _rows.clear()
    if not batch:
        return 0
    try:
        copy_rows(batch, wait_for_flush=False)
    except _ROW_REFUSED:
        return _write_one_by_one(batch)
    except Exception:
        _put_back(batch)
        raise
    return len(batch)


def _write_one_by_one(batch: list[tuple]) -> int:
    """A row the database refused fails the whole COPY: write each row alone, drop those
    refused (a member or an environment deleted since the view)."""
    from flags.services.events import copy_rows

    written = refused = 0
    for index, row in enumerate(batch):
        try:
            copy_rows([row], wait_for_flush=False)
        except _ROW_REFUSED:
            refused += 1
        except Exception:
            _put_back(batch[index:])
            raise
        else:
            written += 1
    logger.warning("Dropped %d page-view event(s) the database refused", refused)
    return written


def _put_back(batch: list[tuple]) -> None:
    global _oldest
    with _lock:
        _rows[:0] = batch
        _oldest = time.monotonic() - interval()  # due again on the next view
        excess = len(_rows) - MAX_BUFFERED
        if excess > 0:
            del _rows[:excess]
    if excess > 0:
        logger.error("Dropped the %d oldest unwritten page-view event(s): buffer full", excess)


_flusher = Flusher("chimney-events-flush", flush, interval, error_message=_NOT_WRITTEN)
atexit.register(_flusher.flush_at_exit)
