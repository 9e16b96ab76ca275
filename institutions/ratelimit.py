"""Fixed-window rate limits on the shared cache (Redis in production)."""

from django.core.cache import cache


def rate_limit_hit(key: str, *, limit: int, window_seconds: int) -> bool:
    """Count one hit; True while the key is within its limit for the current window."""
    cache_key = f"ratelimit:{key}"
    # add() only sets when absent, so the window starts at the first hit.
    cache.add(cache_key, 0, timeout=window_seconds)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=window_seconds)
        count = 1
    return count <= limit
