import pytest
from django.core.cache import caches

from tests.services import require_redis


@pytest.mark.redis
def test_redis_cache__reuses_one_client_and_works_end_to_end(settings):
    url = require_redis()
    settings.CACHES = {
        "bench": {"BACKEND": "chimney.cache.ChimneyRedisCache", "LOCATION": url, "KEY_PREFIX": "t"}
    }
    cache = caches.create_connection("bench")
    inner = cache._cache
    assert inner.get_client("a") is inner.get_client("b") is inner.get_client("c", write=True)
    cache.set("greeting", {"hello": "world"}, 30)
    assert cache.get("greeting") == {"hello": "world"}
    assert cache.get_many(["greeting", "missing"]) == {"greeting": {"hello": "world"}}
    assert cache.add("counter", 0)
    assert cache.incr("counter") == 1
    cache.delete_many(["greeting", "counter"])
    assert cache.get("greeting") is None
