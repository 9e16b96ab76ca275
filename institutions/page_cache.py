"""Cached per-environment values that every member page reads, in one round trip a request.

A member page needs the environment's branding, its home settings, whether appointments
can be booked, and the data plan its view event is checked against: each cached under
its own key, each dropped by whatever changes it. Read one by one they cost a cache round
trip each. Apps register their key (in AppConfig.ready()); in a request, the first read
of any registered key fetches all of the environment's registered keys at once, and the
rest of the request reads them from that answer. The answer lives for one request only,
so a change is seen by the next request as before; `delete` also forgets it in the
request that made the change. Outside a request (tasks, commands) `get` is one read.

A reader that misses reads the database and stores what it read. If a change commits
between that read and the store, and its `delete` runs before the store, the store would
put the old value back for the key's whole lifetime. So every key has a generation beside
it (a random token, read in the same round trip as the value), and a value is stored
stamped with the generation its reader saw before reading the database; `delete` replaces
the generation, so a value stamped with an earlier one is a miss, however late it lands.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

from django.core.cache import cache

_key_functions: list[Callable[[int], str]] = []
# environment id -> {registered key -> cached value, None when missing}; under the key
# None, values fetched with them for others (the session: institutions.sessions).
_fetched: ContextVar[dict[int | None, dict[str, Any]] | None] = ContextVar(
    "chimney_page_cache", default=None
)
# key -> the generation its last `get` saw, for the `store` or `add` that follows the miss.
_seen: ContextVar[dict[str, str] | None] = ContextVar("chimney_page_cache_seen", default=None)


class _Entry(NamedTuple):
    generation: str
    value: Any


def _generation_key(key: str) -> str:
    return f"{key}:gen"


def _new_generation() -> str:
    return secrets.token_hex(8)


def _read(keys: list[str], extra=()) -> tuple[dict[str, Any], dict[str, Any]]:
    """One round trip: ({key: value, None when missing or stale}, {extra key: raw value}).

    Notes each key's generation for the store after a miss; a key without one gets one.
    """
    found = cache.get_many([*keys, *map(_generation_key, keys), *extra])
    seen = _seen.get()
    if seen is None:
        seen = {}
        _seen.set(seen)
    values = {}
    for key in keys:
        generation = found.get(_generation_key(key))
        if generation is None:
            generation = _new_generation()
            if not cache.add(_generation_key(key), generation, None):
                generation = cache.get(_generation_key(key), generation)
        seen[key] = generation
        entry = found.get(key)
        fresh = isinstance(entry, _Entry) and entry.generation == generation
        values[key] = entry.value if fresh else None
    return values, {k: found.get(k) for k in extra}


def _stamped(key: str, value: Any) -> _Entry:
    """The value with the generation seen before it was read (now, if none was seen)."""
    seen = _seen.get()
    generation = seen.pop(key, None) if seen is not None else None
    if generation is None:
        _read([key])
        generation = _seen.get().pop(key)
    return _Entry(generation, value)


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
    seen_token = _seen.set({})
    if with_keys and environment_id is not None:
        keys = [key_for(environment_id) for key_for in _key_functions]
        fetched[environment_id], fetched[None] = _read(keys, with_keys)
    token = _fetched.set(fetched)
    try:
        yield
    finally:
        _fetched.reset(token)
        _seen.reset(seen_token)


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
        return _read([key])[0][key]
    values = fetched.get(environment_id)
    if values is None:
        keys = [key_for(environment_id) for key_for in _key_functions]
        values = fetched[environment_id] = _read(keys)[0]
    if key in values:
        return values[key]
    return _read([key])[0][key]  # not registered (or forgotten): a read of its own


def store(environment_id: int, key: str, value: Any, timeout: float) -> None:
    """Cache the value read after a miss (stamped with the generation the miss saw), and
    remember it for the rest of the request."""
    cache.set(key, _stamped(key, value), timeout)
    fetched = _fetched.get()
    if fetched is not None and environment_id in fetched:
        fetched[environment_id][key] = value


def add(environment_id: int, key: str, value: Any, timeout: float) -> Any:
    """Like cache.add: the value now cached under the key (this one, or a current one
    added first; one stamped with a replaced generation is overwritten)."""
    entry = _stamped(key, value)
    if not cache.add(key, entry, timeout):
        current = cache.get(key)
        if isinstance(current, _Entry) and current.generation == entry.generation:
            value = current.value
        else:
            cache.set(key, entry, timeout)
    fetched = _fetched.get()
    if fetched is not None and environment_id in fetched:
        fetched[environment_id][key] = value
    return value


def delete(key: str) -> None:
    """Drop the key's value: a new generation (so a value read before the change and stored
    after it is a miss), the value deleted, and forgotten by this request."""
    cache.set(_generation_key(key), _new_generation(), None)
    cache.delete(key)
    fetched = _fetched.get()
    if fetched is not None:
        for values in fetched.values():
            values.pop(key, None)
