"""Cached per-environment values that every member page reads, in one round trip a request.

A member page needs the environment's branding, its home settings, whether appointments
can be booked, and the data plan its view event is checked against: each cached under
its own key, each dropped by whatever changes it. Read one by one they cost a cache round
trip each. Apps register their key (in AppConfig.ready()); in a request, the first read
of any registered key fetches all of the environment's registered keys at once, and the
rest of the request reads them from that answer. The answer lives for one request only,
so a change is seen by the next request as before; `delete` also forgets it in the
request that made the change. Outside a request (tasks, commands) `get` is `cache.get`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.core.cache import cache

_key_functions: list[Callable[[int], str]] = []
# environment id -> {registered key -> cached value, None when missing}; under the key
# None, values fetched with them for others (the session: institutions.sessions).
_fetched: ContextVar[dict[int | None, dict[str, Any]] | None] = ContextVar(
    "chimney_page_cache", default=None
)


def register(key_for: Callable[[int], str]) -> None:
    """Register a per-environment cache key (a function of the environment's id)."""
    if key_for not in _key_functions:
        _key_functions.append(key_for)


@contextmanager
def request_values(environment_id: int | None = None, with_keys=()) -> Iterator[None]:
    """Share the fetched values for the duration of one request (the scope middleware).

    with_keys: other keys the request will read first (its session), fetched now in the
    same round trip as the environment's values; `prefetched` hands each out once.
    """
    fetched: dict[int | None, dict[str, Any]] = {}
    if with_keys and environment_id is not None:
        keys = [key_for(environment_id) for key_for in _key_functions]
        found = cache.get_many([*keys, *with_keys])
        fetched[environment_id] = {k: found.get(k) for k in keys}
        fetched[None] = {k: found.get(k) for k in with_keys}
    token = _fetched.set(fetched)
    try:
        yield
    finally:
        _fetched.reset(token)


def prefetched(key: str) -> tuple[bool, Any]:
    """(True, value or None) for a key fetched by request_values(with_keys=…), once."""
    fetched = _fetched.get()
    others = fetched.get(None) if fetched is not None else None
    if not others or key not in others:
        return False, None
    return True, others.pop(key)


def get(environment_id: int, key: str) -> Any:
    """cache.get(key) for a registered key of this environment; None when not cached."""
    fetched = _fetched.get()
    if fetched is None:
        return cache.get(key)
    values = fetched.get(environment_id)
    if values is None:
        keys = [key_for(environment_id) for key_for in _key_functions]
        found = cache.get_many(keys)
        values = fetched[environment_id] = {k: found.get(k) for k in keys}
    if key in values:
        return values[key]
    return cache.get(key)  # not registered (or forgotten): an ordinary read


def store(environment_id: int, key: str, value: Any, timeout: float) -> None:
    """cache.set, remembered for the rest of the request."""
    cache.set(key, value, timeout)
    fetched = _fetched.get()
    if fetched is not None and environment_id in fetched:
        fetched[environment_id][key] = value


def add(environment_id: int, key: str, value: Any, timeout: float) -> Any:
    """cache.add: the value now cached under the key (this one, or one added first)."""
    if not cache.add(key, value, timeout):
        value = cache.get(key, value)
    fetched = _fetched.get()
    if fetched is not None and environment_id in fetched:
        fetched[environment_id][key] = value
    return value


def delete(key: str) -> None:
    """cache.delete, and forget any value this request fetched for the key."""
    cache.delete(key)
    fetched = _fetched.get()
    if fetched is not None:
        for values in fetched.values():
            values.pop(key, None)
