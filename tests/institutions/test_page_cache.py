"""Per-environment page values: one cache round trip a request, a change seen at once."""

import pytest
from django.core.cache import cache

from institutions import page_cache
from tests.conftest import member_client


class CacheReads:
    """Which cache reads a block makes: a key per `get`, a tuple per `get_many`."""

    def __init__(self, monkeypatch) -> None:
        self.reads: list = []
        self._inside = 0  # the local-memory cache's get_many calls get for each key
        real_get, real_get_many = cache.get, cache.get_many

        def get(key, *args, **kwargs):
            if not self._inside:
                self.reads.append(key)
            return real_get(key, *args, **kwargs)

        def get_many(keys, *args, **kwargs):
            self.reads.append(tuple(keys))
            self._inside += 1
            try:
                return real_get_many(keys, *args, **kwargs)
            finally:
                self._inside -= 1

        monkeypatch.setattr(cache, "get", get)
        monkeypatch.setattr(cache, "get_many", get_many)

    @property
    def fetches(self) -> list[tuple]:
        return [r for r in self.reads if isinstance(r, tuple)]

    @property
    def single(self) -> list[str]:
        return [r for r in self.reads if isinstance(r, str)]


@pytest.fixture
def registered(monkeypatch):
    keys = [lambda env_id: f"test:a:{env_id}", lambda env_id: f"test:b:{env_id}"]
    monkeypatch.setattr(page_cache, "_key_functions", keys)
    return keys


def _fill(key: str, value) -> None:
    """What another process does on a miss: read (here: nothing), then store."""
    page_cache.get(1, key)
    page_cache.store(1, key, value, 60)


def test_page_cache__in_a_request__all_registered_keys_in_one_read(registered, monkeypatch):
    _fill("test:a:1", "A")
    reads = CacheReads(monkeypatch)
    with page_cache.request_values():
        assert page_cache.get(1, "test:a:1") == "A"
        assert page_cache.get(1, "test:b:1") is None
        page_cache.store(1, "test:b:1", "B", 60)
        assert page_cache.get(1, "test:b:1") == "B"
        assert page_cache.get(2, "test:a:2") is None  # another environment: its own read
    assert reads.fetches == [
        ("test:a:1", "test:b:1", "test:a:1:gen", "test:b:1:gen"),
        ("test:a:2", "test:b:2", "test:a:2:gen", "test:b:2:gen"),
    ]
    assert reads.single == []
    assert page_cache.get(1, "test:b:1") == "B"


def test_page_cache__delete_in_the_request__forgotten_at_once(registered):
    _fill("test:a:1", "old")
    with page_cache.request_values():
        assert page_cache.get(1, "test:a:1") == "old"
        page_cache.delete("test:a:1")
        assert page_cache.get(1, "test:a:1") is None
    _fill("test:a:1", "new")  # another process fills it again
    with page_cache.request_values():
        assert page_cache.get(1, "test:a:1") == "new"


def test_page_cache__outside_a_request__a_read_of_its_own_each_time(registered, monkeypatch):
    _fill("test:a:1", "A")
    reads = CacheReads(monkeypatch)
    assert page_cache.get(1, "test:a:1") == "A"
    page_cache.delete("test:a:1")
    _fill("test:a:1", "A2")
    assert page_cache.get(1, "test:a:1") == "A2"
    assert reads.fetches == [("test:a:1", "test:a:1:gen")] * 3


@pytest.mark.parametrize("in_request", [False, True])
def test_page_cache__value_read_before_a_change_and_stored_after_it__is_a_miss(
    registered, in_request
):
    """A reader misses and reads the database; a change commits and drops the key; then the
    reader stores what it read, now out of date. It must not be served."""
    from contextlib import nullcontext

    with page_cache.request_values() if in_request else nullcontext():
        assert page_cache.get(1, "test:a:1") is None
        page_cache.delete("test:a:1")  # the writer, in another process, after its commit
        page_cache.store(1, "test:a:1", "old", 60)
    assert page_cache.get(1, "test:a:1") is None
    page_cache.store(1, "test:a:1", "new", 60)  # the next reader, after the change
    assert page_cache.get(1, "test:a:1") == "new"


def test_page_cache__token_added_before_a_change__is_replaced(registered):
    assert page_cache.get(1, "test:a:1") is None
    page_cache.delete("test:a:1")
    assert page_cache.add(1, "test:a:1", "t1", 60) == "t1"
    assert page_cache.get(1, "test:a:1") is None  # t1 was made for the old data
    assert page_cache.add(1, "test:a:1", "t2", 60) == "t2"
    assert page_cache.add(1, "test:a:1", "t3", 60) == "t2"  # a current token is kept
    assert page_cache.get(1, "test:a:1") == "t2"


@pytest.mark.django_db
def test_dashboard__page_values__read_in_one_cache_round_trip(member, monkeypatch):
    from tests.homes.test_member_pages import _home

    _home(member)
    client = member_client(member)
    assert client.get("/").status_code == 200  # fills the cache
    reads = CacheReads(monkeypatch)
    assert client.get("/").status_code == 200
    env_id = member.environment_id
    (fetched,) = [f for f in reads.fetches if f"branding:{env_id}" in f]
    assert f"homes:settings:{env_id}" in fetched
    assert f"flags:env:{env_id}:dataplan" in fetched
    assert not set(reads.single) & set(fetched)


@pytest.mark.django_db
def test_member_page__session_in_the_cache__read_with_the_page_values(
    member, settings, monkeypatch
):
    from django.test import Client

    from homes.middleware import MEMBER_ENV_SESSION_KEY, MEMBER_SESSION_KEY
    from institutions.sessions import SessionStore
    from tests.homes.test_member_pages import _home

    settings.SESSION_ENGINE = "institutions.sessions"
    _home(member)
    session = SessionStore()
    session[MEMBER_SESSION_KEY] = member.pk
    session[MEMBER_ENV_SESSION_KEY] = member.environment_id
    session.create()
    client = Client(HTTP_HOST=member.environment.host)
    client.cookies["sessionid"] = session.session_key
    assert client.get("/").status_code == 200
    reads = CacheReads(monkeypatch)
    response = client.get("/")
    assert response.status_code == 200
    assert member.first_name in response.content.decode()
    (fetched,) = [f for f in reads.fetches if session.cache_key in f]
    assert f"branding:{member.environment_id}" in fetched
    assert session.cache_key not in reads.single

    # A session that is gone (expired, flushed) is a new, empty one: signed out.
    cache.delete(session.cache_key)
    assert client.get("/")["Location"].startswith("/login/")
