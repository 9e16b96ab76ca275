"""Django's Redis cache, keeping one client per connection pool.

django.core.cache.backends.redis builds a new redis.Redis object for every cache call, and
redis-py 8 fills a table of some 170 response callbacks in each constructor: about half a
millisecond per call, paid by every session read, branding lookup and flag evaluation.
A redis.Redis client is safe to share between threads (it borrows connections from its
pool), so one per pool is enough.
"""

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


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
