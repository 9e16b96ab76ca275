"""Sessions in the cache (SESSION_ENGINE when Redis is configured), read in the same round
trip as the request's page values (institutions.page_cache) when the scope middleware
fetches them together: a member page then starts with one cache read instead of two."""

from __future__ import annotations

from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore

from institutions import page_cache


class SessionStore(CacheSessionStore):
    def unread_cache_key(self) -> str | None:
        """The cache key to fetch this session by, if it has a key and is not read yet."""
        if self.session_key is None or hasattr(self, "_session_cache"):
            return None
        return self.cache_key

    def load(self):
        found, data = page_cache.prefetched(self.cache_key)
        if not found:
            return super().load()
        if data is not None:
            return data
        self._session_key = None  # as the cache backend does for a missing session
        return {}
