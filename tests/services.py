"""Real services the tests need: a test that needs one fails (CI) or skips (laptop) without it."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

REQUIRE_SERVICES = os.environ.get("CHIMNEY_REQUIRE_SERVICES", "") in {"1", "true", "yes"}
TEST_REDIS_URL = os.environ.get("CHIMNEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


def require_redis() -> str:
    """The Redis URL for tests; fail under CHIMNEY_REQUIRE_SERVICES, else skip, when absent."""
    if _reachable(TEST_REDIS_URL):
        return TEST_REDIS_URL
    message = f"Redis is not reachable at {TEST_REDIS_URL}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (required: CHIMNEY_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")


def require_postgres() -> None:
    """Tests that only mean something on PostgreSQL (row locks, concurrency)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL as the database: runs in the PostgreSQL pass")
