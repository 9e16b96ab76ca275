"""A daemon thread that writes a process's buffer every interval (flags.request_metrics,
flags.services.event_buffer): requests write what they find due, and the thread writes
what an idle process holds. Not started in tests (TESTING) or with an interval of 0.
The buffer's module registers `flush_at_exit` with atexit, so an ending process writes
what it still holds."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)


class Flusher:
    """Calls `flush` every `interval()` seconds in a thread of its own, started once.

    A failed flush is logged with `error_message` (None: not logged, the buffer's own
    add path logs) and retried at the next interval; the thread's database connection
    is closed when unusable or too old after every round, as after a request.
    """

    def __init__(
        self,
        name: str,
        flush: Callable[[], object],
        interval: Callable[[], float],
        *,
        error_message: str | None = None,
    ) -> None:
        self.name = name
        self._flush = flush
        self._interval = interval
        self._error_message = error_message
        self._lock = threading.Lock()
        self._started = False

    def ensure_started(self) -> None:
        if self._started or getattr(settings, "TESTING", False) or self._interval() <= 0:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name=self.name, daemon=True).start()

    def _run(self) -> None:
        while True:
            time.sleep(self._interval())
            self.run_once()

    def run_once(self) -> None:
        """One round: flush, log a failure (the buffer keeps what it could not write)."""
        try:
            self._flush()
        except Exception:
            if self._error_message is not None:
                logger.exception(self._error_message)
        finally:
            close_old_connections()

    def flush_at_exit(self) -> None:
        """The process is ending: one last flush, whose failure has nothing left to retry
        with. Not in tests: by the time a test process exits, its test database is gone
        and the connection names the real database again."""
        if getattr(settings, "TESTING", False):
            return
        with contextlib.suppress(Exception):
            self._flush()
