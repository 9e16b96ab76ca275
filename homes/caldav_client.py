"""An officer's CalDAV calendar (RFC 4791): read busy time with a free-busy-query REPORT,
write our events with PUT and remove them with DELETE, each request time-bounded.

Every failure becomes a CalendarError that says whether retrying can help (a server down
or answering 5xx) or not (credentials refused, no calendar at that address, a redirect).
Messages never carry the credentials. The URL is the institution's: requests go to public
addresses only (institutions.outbound).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.conf import settings

from homes.slots import Period
from institutions import outbound

CONTENT_TYPE = "text/calendar; charset=utf-8"


class CalendarError(Exception):
    """The calendar could not be read or written; `permanent` when retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class CalendarAccess:
    url: str
    username: str
    password: str

    @classmethod
    def of(cls, officer) -> CalendarAccess:
        return cls(officer.caldav_url, officer.caldav_username, officer.caldav_password)

    def resource_url(self, name: str) -> str:
        return f"{self.url.rstrip('/')}/{quote(name, safe='')}.ics"

    def scrub(self, text: str) -> str:
        """An error text with the password taken out, whatever the library put in it."""
        if self.password:
            text = text.replace(self.password, "***")
        return text[:1000]


def _timeout() -> float:
    return float(getattr(settings, "APPOINTMENTS_CALDAV_TIMEOUT", 5))


def _client(access: CalendarAccess):
    import caldav

    client = caldav.DAVClient(
        url=access.url,
        username=access.username or None,
        password=access.password or None,
        timeout=_timeout(),
        enable_rfc6764=False,  # the URL is the calendar itself: no discovery
    )
    # Redirects are not followed: the HTTP client would turn a PUT or DELETE answered 302
    # into a bodiless GET of the new address, whose 200 would pass for a saved event.
    client.session.max_redirects = 0
    return client


def _by_status(access: CalendarAccess, status: int, what: str) -> CalendarError:
    if status in (401, 403):
        return CalendarError(
            f"The calendar server refused the credentials ({status}) while {what}.",
            permanent=True,
        )
    if 300 <= status < 400:
        return CalendarError(
            f"The calendar server redirected to another address ({status}) while {what}: "
            "the calendar has moved, check the CalDAV URL.",
            permanent=True,
        )
    if status in (404, 405, 409):
        return CalendarError(
            f"No calendar at this address ({status}) while {what}: check the CalDAV URL.",
            permanent=True,
        )
    return CalendarError(f"The calendar server answered {status} while {what}.")


def _translate(access: CalendarAccess, exc: Exception, what: str) -> CalendarError:
    from caldav.lib import error

    if isinstance(exc, CalendarError):
        return exc
    refused = outbound.refused_in(exc)
    if refused is not None:
        return CalendarError(f"{refused} while {what}: check the CalDAV URL.", permanent=True)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(status, int) and 300 <= status < 400:  # a redirect refused (see _client)
        return _by_status(access, status, what)
    if isinstance(exc, error.AuthorizationError):
        return _by_status(access, 401, what)
    if isinstance(exc, error.NotFoundError):
        return _by_status(access, 404, what)
    if isinstance(exc, error.DAVError):
        return CalendarError(access.scrub(f"The calendar server failed while {what}: {exc}"))
    # Connection refused, timeouts, TLS, DNS: the server may answer later.
    name = type(exc).__name__
    return CalendarError(access.scrub(f"The calendar server did not answer while {what}: {name}"))


def busy_periods(access: CalendarAccess, start: datetime, end: datetime) -> list[Period]:
    """The calendar's busy periods in [start, end), UTC, from a free-busy-query REPORT."""
    from icalendar import Calendar

    what = "reading free/busy time"
    try:
        with outbound.public_only(), _client(access) as client:
            response = client.calendar(url=access.url).freebusy_request(
                start.astimezone(UTC), end.astimezone(UTC)
            )
            data = response.data
    except Exception as exc:
        raise _translate(access, exc, what) from exc
    periods: list[Period] = []
    try:
        for component in Calendar.from_ical(data).walk("VFREEBUSY"):
            values = component.get("FREEBUSY") or []
            for value in values if isinstance(values, list) else [values]:
                if str(value.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                    continue
                begin, finish = value.dt
                if isinstance(finish, timedelta):
                    finish = begin + finish
                periods.append((begin.astimezone(UTC), finish.astimezone(UTC)))
    except (ValueError, TypeError, AttributeError) as exc:
        message = f"The calendar server sent free/busy data we cannot read: {exc}"
        raise CalendarError(message) from exc
    return sorted(periods)


def event_put(access: CalendarAccess, name: str, ics: str) -> None:
    """Create or replace our event (same resource name for the appointment's whole life)."""
    what = "saving the appointment"
    try:
        with outbound.public_only(), _client(access) as client:
            response = client.put(access.resource_url(name), ics, {"Content-Type": CONTENT_TYPE})
    except Exception as exc:
        raise _translate(access, exc, what) from exc
    if response.status not in (200, 201, 204):
        raise _by_status(access, response.status, what)


def event_delete(access: CalendarAccess, name: str) -> None:
    """Remove our event; one that is already gone is fine."""
    what = "removing the appointment"
    try:
        with outbound.public_only(), _client(access) as client:
            response = client.delete(access.resource_url(name))
    except Exception as exc:
        raise _translate(access, exc, what) from exc
    if response.status not in (200, 204, 404, 410):
        raise _by_status(access, response.status, what)


def check(access: CalendarAccess) -> None:
    """Read one day of free/busy time: raises CalendarError when the calendar cannot be used."""
    now = datetime.now(UTC)
    busy_periods(access, now, now + timedelta(days=1))
