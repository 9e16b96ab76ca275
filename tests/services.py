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


DEBIAN_CHROMIUM = "/usr/bin/chromium"


def require_chromium() -> str:
    """The Chromium for browser tests: Debian's, else the one `playwright install` fetched;
    fail under CHIMNEY_REQUIRE_SERVICES, else skip, when there is neither."""
    if os.path.exists(DEBIAN_CHROMIUM):
        return DEBIAN_CHROMIUM
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        bundled = p.chromium.executable_path
    if bundled and os.path.exists(bundled):
        return bundled
    message = (
        f"no Chromium at {DEBIAN_CHROMIUM} nor from `playwright install chromium` "
        "(apt-get install chromium, or .venv/bin/python -m playwright install chromium)"
    )
    if REQUIRE_SERVICES:
        pytest.fail(message + " (required: CHIMNEY_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")


def require_postgres() -> None:
    """Tests that only mean something on PostgreSQL (row locks, concurrency)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL as the database: runs in the PostgreSQL pass")


class PrivateRedis:
    """A Redis server of the test's own on a free port, which the test may restart at will
    without disturbing anyone else using the shared server."""

    def __init__(self) -> None:
        import shutil

        self.binary = shutil.which("redis-server")
        if not self.binary:
            message = "redis-server is not installed"
            if REQUIRE_SERVICES:
                pytest.fail(message + " (required: CHIMNEY_REQUIRE_SERVICES=1)", pytrace=False)
            pytest.skip(message)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> PrivateRedis:
        import subprocess
        import time

        import redis

        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url).ping():
                    return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # like a crash: nothing is saved
            self.process.wait(timeout=30)
            self.process = None

    def restart(self) -> None:
        """Drop everything the server held and start it again on the same port."""
        self.stop()
        self.start()
