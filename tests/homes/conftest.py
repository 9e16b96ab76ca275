from __future__ import annotations

import pytest

from tests.homes.caldav_server import Radicale


@pytest.fixture(scope="session")
def radicale_server(tmp_path_factory):
    """One Radicale per test process; each test makes calendars of its own on it."""
    server = Radicale(tmp_path_factory.mktemp("radicale")).start()
    yield server
    server.stop()


@pytest.fixture
def radicale(radicale_server):
    if radicale_server.process is None:  # a test stopped it to see the server down
        radicale_server.start()
    yield radicale_server
    if radicale_server.process is None:
        radicale_server.start()
