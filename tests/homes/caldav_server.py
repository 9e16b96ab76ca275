"""A real CalDAV server (Radicale) for the tests: a subprocess on a free port, with plain
htpasswd users and a temporary storage folder; calendars made and read with the caldav
library, as an officer's calendar application would."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import caldav
import niquests
from icalendar import Calendar

USERS = {"officer": "secret-officer", "other": "secret-other"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OfficerCalendar:
    """One calendar collection on the server, seen with its owner's credentials."""

    url: str
    username: str
    password: str

    def _calendar(self):
        client = caldav.DAVClient(
            url=self.url, username=self.username, password=self.password, enable_rfc6764=False
        )
        return client.calendar(url=self.url)

    def add_busy(self, start: datetime, end: datetime, summary: str = "Busy") -> str:
        uid = f"{uuid.uuid4().hex}@officer.test"
        self._calendar().save_event(
            dtstart=start.astimezone(UTC), dtend=end.astimezone(UTC), uid=uid, summary=summary
        )
        return uid

    def events(self) -> list:
        """Every VEVENT in the calendar (icalendar components)."""
        out = []
        for resource in self._calendar().events():
            out.extend(Calendar.from_ical(resource.data).walk("VEVENT"))
        return out

    def our_events(self) -> list:
        return [e for e in self.events() if not str(e.get("uid")).endswith("@officer.test")]


class Radicale:
    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        root.mkdir(parents=True, exist_ok=True)
        (root / "users").write_text("".join(f"{u}:{p}\n" for u, p in USERS.items()))
        (root / "config").write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {root / 'users'}\n"
            "htpasswd_encryption = plain\n"
            "[storage]\n"
            f"filesystem_folder = {root / 'collections'}\n"
            "[rights]\n"
            "type = owner_only\n"
            "[web]\n"
            "type = none\n"
            "[logging]\n"
            "level = warning\n"
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Radicale:
        self.log = (self.root / "radicale.log").open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(self.root / "config")],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                niquests.get(self.base_url + "/", timeout=1)
                return self
            except niquests.exceptions.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        "Radicale exited: " + (self.root / "radicale.log").read_text()
                    ) from None
                time.sleep(0.1)
        raise RuntimeError(f"Radicale did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
            self.log.close()

    def calendar(self, user: str = "officer", name: str | None = None) -> OfficerCalendar:
        """A new, empty calendar of the user's."""
        name = name or f"cal-{uuid.uuid4().hex[:10]}"
        client = caldav.DAVClient(
            url=f"{self.base_url}/{user}/",
            username=user,
            password=USERS[user],
            enable_rfc6764=False,
        )
        calendar = client.principal().make_calendar(name=name, cal_id=name)
        return OfficerCalendar(str(calendar.url), user, USERS[user])
