"""iCalendar for appointments: iTIP invitations (METHOD REQUEST or CANCEL, RFC 5546) sent by
email, and the plain event stored in the officer's CalDAV calendar.

One UID per appointment for its whole life; every change raises SEQUENCE, so calendar
clients replace the event they have instead of adding a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//Chimney//Appointments//EN"
REQUEST = "REQUEST"
CANCEL = "CANCEL"


@dataclass(frozen=True)
class EventData:
    uid: str
    sequence: int
    start: datetime
    end: datetime
    summary: str
    description: str
    organizer_name: str
    organizer_email: str
    attendee_name: str
    attendee_email: str
    url: str = ""
    cancelled: bool = False


def _address(email: str, name: str, **params) -> vCalAddress:
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["cn"] = vText(name)
    for key, value in params.items():
        address.params[key.replace("_", "-").upper()] = value
    return address


def _event(data: EventData, *, for_caldav: bool) -> Event:
    event = Event()
    event.add("uid", data.uid)
    event.add("sequence", data.sequence)
    event.add("dtstamp", timezone.now().astimezone(UTC))
    event.add("dtstart", data.start.astimezone(UTC))
    event.add("dtend", data.end.astimezone(UTC))
    event.add("summary", data.summary)
    if data.description:
        event.add("description", data.description)
    if data.url:
        event.add("url", data.url)
    event.add("status", "CANCELLED" if data.cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    organizer = _address(data.organizer_email, data.organizer_name)
    attendee_params = {"role": "REQ-PARTICIPANT", "rsvp": "FALSE"}
    if for_caldav:
        # A calendar server that schedules (RFC 6638) would otherwise email the member a
        # second invitation of its own: we send them ourselves.
        attendee_params["schedule_agent"] = "CLIENT"
    else:
        attendee_params["partstat"] = "NEEDS-ACTION"
    event.add("organizer", organizer)
    if data.attendee_email:
        event.add("attendee", _address(data.attendee_email, data.attendee_name, **attendee_params))
    return event


def invitation(data: EventData, *, method: str) -> str:
    """An iTIP message for email: METHOD REQUEST (new or changed) or CANCEL."""
    if method not in (REQUEST, CANCEL):
        raise ValueError(f"Unknown iTIP method {method!r}")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(_event(data, for_caldav=False))
    return calendar.to_ical().decode()


def calendar_resource(data: EventData) -> str:
    """The event as stored in a CalDAV calendar (no METHOD: a resource, not a message)."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add_component(_event(data, for_caldav=True))
    return calendar.to_ical().decode()
