"""Scenario 6, end to end: from the offer, the member books Thursday 10:30 with an officer
whose CalDAV calendar shows 10:00-10:30 busy; both receive the invitation; the officer's
calendar has the event; a reschedule updates it; reminders arrive a day and an hour before.

Real services throughout: Radicale for the calendar, an SMTP server for email, the member
pages without JavaScript, the outbox and its send tasks.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from icalendar import Calendar

from homes.models import Appointment
from homes.services import appointments_remind
from institutions.tenancy import environment_scope
from tests.conftest import make_tenant, member_client
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import thursday
from tests.homes.factories import OfferProductFactory, officer_with_week

pytestmark = pytest.mark.django_db


def _value(start):
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def _invitation(message):
    (part,) = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    calendar = Calendar.from_ical(part.get_payload(decode=True))
    (event,) = calendar.walk("VEVENT")
    return part.get_param("method"), event


def test_scenario_6__book_around_busy_time__invitations__calendar__reschedule__reminders(
    radicale, smtp_server, django_capture_on_commit_callbacks
):
    tenant = make_tenant(time_zone="America/Los_Angeles")
    env = tenant.production
    calendar = radicale.calendar()
    heloc = OfferProductFactory(
        environment=env, title="Home equity line of credit", book_appointment=True
    )
    officer = officer_with_week(
        env,
        name="Sam Rivera",
        email="sam@lender.test",
        caldav_url=calendar.url,
        caldav_username=calendar.username,
        caldav_password=calendar.password,
    )
    with environment_scope(env):
        officer.offers.set([heloc])
    ten = thursday(env, 10)
    half_past = ten + dt.timedelta(minutes=30)
    calendar.add_busy(ten, half_past, summary="Branch meeting")
    member = MemberFactory(environment=env, email="ada@example.test", first_name="Ada")
    client = member_client(member)

    # From the offer to the officer's free times: 10:00 is busy in the calendar.
    offer_page = client.get(f"/offers/{heloc.pk}/").content.decode()
    link = re.search(r'href="(/appointments/book/\?offer=\d+)" id="book-officer"', offer_page)
    page = client.get(link[1]).content.decode()
    assert f'value="{_value(ten)}"' not in page
    assert f'value="{_value(half_past)}"' in page
    assert "<span>10:30 AM</span>" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/appointments/book/",
            {
                "offer": heloc.pk,
                "officer": officer.pk,
                "tz": "America/Los_Angeles",
                "start": _value(half_past),
                "note": "Thinking about a new roof",
            },
        )
    assert response.status_code == 302
    detail = client.get(response["Location"]).content.decode()
    assert re.search(r"Thursday, \w+ \d+, \d{4} at 10:30 AM PST", detail)
    with environment_scope(env):
        appointment = Appointment.objects.get()

    # Both receive the invitation.
    for address in ("ada@example.test", "sam@lender.test"):
        (message,) = smtp_server.to(address)
        method, event = _invitation(message)
        assert method == "REQUEST"
        assert (str(event["UID"]), event["SEQUENCE"]) == (appointment.uid, 0)
        assert event["DTSTART"].dt == half_past

    # The officer's calendar has the event, beside the busy time that was there.
    (event,) = calendar.our_events()
    assert (str(event["UID"]), event["DTSTART"].dt) == (appointment.uid, half_past)
    assert len(calendar.events()) == 2

    # A reschedule updates it: same UID, higher SEQUENCE, new time; both are told.
    eleven = thursday(env, 11)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/appointments/{appointment.pk}/move/", {"start": _value(eleven)})
    assert response.status_code == 302
    (event,) = calendar.our_events()
    assert (str(event["UID"]), event["SEQUENCE"], event["DTSTART"].dt) == (
        appointment.uid,
        1,
        eleven,
    )
    for address in ("ada@example.test", "sam@lender.test"):
        _, update = smtp_server.to(address)
        method, event = _invitation(update)
        assert (method, event["SEQUENCE"], event["DTSTART"].dt) == ("REQUEST", 1, eleven)

    # Reminders arrive a day and an hour before (the beat runs every minute).
    with environment_scope(env):
        for lead in (dt.timedelta(hours=24), dt.timedelta(hours=1)):
            with django_capture_on_commit_callbacks(execute=True):
                appointments_remind(environment=env, now=eleven - lead + dt.timedelta(minutes=1))
    reminders = [
        m for m in smtp_server.to("ada@example.test") if m["Subject"].startswith("Reminder")
    ]
    assert len(reminders) == 2
    assert all("11:00 AM PST" in m["Subject"] for m in reminders)
    assert [m["Subject"] for m in smtp_server.to("sam@lender.test")][2:] == []  # calendar has it
