from __future__ import annotations

import pytest

from institutions import events
from tests.homes.caldav_server import Radicale


@pytest.fixture
def recorded():
    """The events emitted during the test, in order."""
    seen = []
    sink = events.register_sink(seen.append)
    yield seen
    events._sinks.remove(sink)


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


@pytest.fixture
def smtp_server(settings):
    """A real local SMTP server (aiosmtpd) behind Django's SMTP backend."""
    from tests.notifications.conftest import SMTPSink, smtp_at

    sink = SMTPSink()
    sink.controller.start()
    smtp_at(settings, sink.port)
    yield sink
    sink.controller.stop()
