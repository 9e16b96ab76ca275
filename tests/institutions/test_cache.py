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


def test_fragment_cache__kept_in_the_process_in_front_of_the_shared_cache(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "fragments": {
            "BACKEND": "chimney.cache.VersionedFragmentCache",
            "LOCATION": "default",
            "OPTIONS": {"MAX_ENTRIES": 2},
        },
    }
    shared, fragments = caches["default"], caches.create_connection("fragments")
    fragments.set("card:v1", "<p>one</p>", 60)
    assert shared.get("card:v1") == "<p>one</p>"  # written through
    shared.delete("card:v1")
    assert fragments.get("card:v1") == "<p>one</p>"  # this process's copy
    shared.set("card:v2", "<p>two</p>", 60)  # rendered by another process
    assert fragments.get("card:v2") == "<p>two</p>"
    fragments.set("card:v3", "<p>three</p>", 60)
    assert fragments.get("card:v1") is None  # the oldest copy went; the shared one too
    fragments.clear()
    assert fragments.get("card:v3") == "<p>three</p>"  # from the shared cache again
    assert fragments.get("missing", "default") == "default"
