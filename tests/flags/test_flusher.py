"""The buffers' background writer (flags.flusher): one thread per buffer, every interval."""

from __future__ import annotations

import logging
import threading

import pytest

from flags.flusher import Flusher


@pytest.mark.django_db  # each round ends by closing the thread's old connections
def test_run_once__a_failed_flush__logged_with_the_message_and_not_raised(caplog):
    calls = []

    def flush():
        calls.append(1)
        raise RuntimeError("database down")

    with caplog.at_level(logging.ERROR, logger="flags.flusher"):
        Flusher("t", flush, lambda: 1.0, error_message="Rows not written").run_once()
        Flusher("t", flush, lambda: 1.0).run_once()
    assert len(calls) == 2
    assert [r.getMessage() for r in caplog.records] == ["Rows not written"]
    assert "database down" in caplog.records[0].exc_text


def test_ensure_started__in_tests_or_without_interval__no_thread(settings):
    called = threading.Event()
    Flusher("t", called.set, lambda: 0.01).ensure_started()  # settings.TESTING
    settings.TESTING = False
    Flusher("t", called.set, lambda: 0.0).ensure_started()
    assert not called.wait(0.2)


@pytest.mark.parametrize("failures", [0, 2])
def test_ensure_started__one_thread_flushes_every_interval_and_retries(settings, failures):
    settings.TESTING = False
    rounds: list[str] = []
    done = threading.Event()

    def flush():
        rounds.append(threading.current_thread().name)
        if len(rounds) <= failures:
            raise RuntimeError("database down")
        if len(rounds) == failures + 2:
            done.set()

    # Short rounds until the test has seen its rounds, then the thread sleeps an hour.
    flusher = Flusher(f"test-flush-{failures}", flush, lambda: 3600.0 if done.is_set() else 0.01)
    flusher.ensure_started()
    flusher.ensure_started()
    assert done.wait(10)
    assert rounds[: failures + 2] == [f"test-flush-{failures}"] * (failures + 2)
    alive = [t for t in threading.enumerate() if t.name == f"test-flush-{failures}"]
    assert len(alive) == 1
    assert alive[0].daemon


def test_flush_at_exit__flushes_once_and_swallows_a_failure(settings):
    settings.TESTING = False
    calls = []

    def flush():
        calls.append(1)
        raise RuntimeError("database down")

    Flusher("t", flush, lambda: 1.0).flush_at_exit()
    assert calls == [1]


def test_flush_at_exit__in_tests__writes_nothing():
    calls = []
    Flusher("t", lambda: calls.append(1), lambda: 1.0).flush_at_exit()  # settings.TESTING
    assert calls == []
