from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from tests.notifications import fake_homes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SinkHandler:
    """An SMTP server's handler that keeps every message; some addresses misbehave."""

    messages: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    transient: set = field(default_factory=set)  # addresses answered 451
    pipelining: bool = False  # offer PIPELINING (RFC 2920) in the EHLO answer
    ehlo_offers: list = field(default_factory=list)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:  # before the last line ("250 HELP")
            responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        self.ehlo_offers = responses
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 No such user here"
        if address in self.transient:
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.messages.append((envelope.rcpt_tos, parsed))
        return "250 Message accepted"


class SMTPSink:
    def __init__(self):
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)

    def to(self, address: str):
        return [m for rcpt, m in self.messages if address in rcpt]

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def smtp_sink():
    sink = SMTPSink()
    sink.controller.start()
    yield sink
    sink.controller.stop()


def smtp_at(settings, port: int, *, timeout: float | None = None) -> None:
    """Django's SMTP backend pointed at 127.0.0.1:port (plain, no login): a local sink, or
    a free port where nothing listens (a mail server that is down)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = timeout


@pytest.fixture
def smtp_settings(settings, smtp_sink):
    """Django's SMTP backend pointed at the local sink."""
    smtp_at(settings, smtp_sink.port)
    return smtp_sink


@pytest.fixture(autouse=True)
def home_data(monkeypatch):
    """homes.selectors.home_summaries replaced by deterministic home data for these tests."""
    import homes.selectors as selectors

    fake_homes.OVERRIDES.clear()
    monkeypatch.setattr(selectors, "home_summaries", fake_homes.home_summaries)
    yield fake_homes.OVERRIDES
    fake_homes.OVERRIDES.clear()
