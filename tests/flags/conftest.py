from __future__ import annotations

import pytest

from flags import request_metrics


@pytest.fixture(autouse=True)
def _empty_metrics_buffer():
    request_metrics._buffer.clear()
    yield
    request_metrics._buffer.clear()


class CountingCache:
    """Wraps the cache and counts round trips (each call to the backend is one)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in {"get", "get_many", "set", "set_many", "add", "delete", "delete_many", "incr"}:

            def counted(*args, **kwargs):
                self.calls.append(name)
                return attr(*args, **kwargs)

            return counted
        return attr


@pytest.fixture
def counting_cache(monkeypatch):
    from django.core.cache import cache

    from flags import evaluation

    wrapper = CountingCache(cache)
    monkeypatch.setattr(evaluation, "cache", wrapper)
    return wrapper
