"""Django's Redis cache, keeping one client per connection pool.

django.core.cache.backends.redis builds a new redis.Redis object for every cache call, and
redis-py 8 fills a table of some 170 response callbacks in each constructor: about half a
millisecond per call, paid by every session read, branding lookup and flag evaluation.
A redis.Redis client is safe to share between threads (it borrows connections from its
pool), so one per pool is enough.

Django's base cache also checks every key, character by character, for what memcached
would refuse (spaces, control characters, more than 250 characters). Redis takes any
key, so the check is dropped here (`validate_key`, the hook Django documents for it); it
cost a member page about one percent of its time (six keys read on each).
"""

import threading
import time
from collections import OrderedDict

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_MISSING = object()
#: How long a process keeps its copy of a fragment at most (the shared one may live longer).
LOCAL_SECONDS = 3600


class PooledRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ChimneyRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = PooledRedisCacheClient

    def validate_key(self, key):
        """Any key is valid in Redis (see the module's docstring)."""


class VersionedFragmentCache(BaseCache):
    """Rendered fragments whose key names the version of everything they show (the
    dashboard card), kept in this process's memory in front of the shared cache.

    A key never has two different values, so the process's copies need no invalidation:
    a change gives the next request another key. A miss here is read from, and a new
    fragment written to, the shared cache (LOCATION: its alias). OPTIONS MAX_ENTRIES
    bounds the copies a process keeps (the least recently used go first).
    """

    def __init__(self, server, params):
        super().__init__(params)
        self._shared_alias = server or "default"
        self._max = int(params.get("OPTIONS", {}).get("MAX_ENTRIES", 5000))
        self._local: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def _shared(self):
        from django.core.cache import caches

        return caches[self._shared_alias]

    def _keep(self, key: str, value, timeout) -> None:
        timeout = self.get_backend_timeout(timeout)
        seconds = LOCAL_SECONDS if timeout is None else min(timeout, LOCAL_SECONDS)
        with self._lock:
            self._local[key] = (time.monotonic() + seconds, value)
            self._local.move_to_end(key)
            while len(self._local) > self._max:
                self._local.popitem(last=False)

    def get(self, key, default=None, version=None):
        local_key = self.make_and_validate_key(key, version=version)
        hit = self._local.get(local_key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        value = self._shared.get(key, _MISSING, version=version)
        if value is _MISSING:
            return default
        self._keep(local_key, value, None)  # the shared copy's lifetime left is unknown
        return value

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._shared.set(key, value, timeout, version=version)
        self._keep(self.make_and_validate_key(key, version=version), value, timeout)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        if self.get(key, _MISSING, version=version) is not _MISSING:
            return False
        self.set(key, value, timeout, version=version)
        return True

    def delete(self, key, version=None):
        with self._lock:
            self._local.pop(self.make_and_validate_key(key, version=version), None)
        return self._shared.delete(key, version=version)

    def clear(self):
        """Forget this process's copies (the shared cache is cleared on its own)."""
        with self._lock:
            self._local.clear()
