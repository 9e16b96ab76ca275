"""Member pages for appointments, without JavaScript: book from an offer or the dashboard in
the member's own time zone, see, move and cancel; bad input gets a clear message."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from homes.models import Appointment
from institutions.models import Branding
from institutions.tenancy import environment_scope
from tests.conftest import member_client
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.caldav_server import free_port
from tests.homes.factories import (
    OfferProductFactory,
    appointment_settings_factory,
    officer_with_week,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(tenant):
    return tenant.production


@pytest.fixture
def heloc(env):
    return OfferProductFactory(
        environment=env, title="Home equity line of credit", book_appointment=True
    )


@pytest.fixture
def officer(env, heloc):
    officer = officer_with_week(env, name="Sam Rivera")
    with environment_scope(env):
        officer.offers.set([heloc])
    return officer


def _value(start: dt.datetime) -> str:
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def _appointments(env):
    with environment_scope(env):
        return list(Appointment.objects.order_by("pk"))


def test_offer_page__links_to_booking_only_when_an_officer_handles_it(env, member, heloc, officer):
    client = member_client(member)
    html = client.get(f"/offers/{heloc.pk}/").content.decode()
    assert f'href="/appointments/book/?offer={heloc.pk}"' in html
    other = OfferProductFactory(environment=env, book_appointment=True)
    assert "/appointments/book/" not in client.get(f"/offers/{other.pk}/").content.decode()
    quiet = OfferProductFactory(environment=env, book_appointment=False)
    with environment_scope(env):
        officer.offers.add(quiet)
    assert "/appointments/book/" not in client.get(f"/offers/{quiet.pk}/").content.decode()


def test_book_from_offer__slots_in_members_time_zone__posted_without_javascript(
    env, member, heloc, officer
):
    client = member_client(member)
    start = thursday(env, 10, 30)  # 10:30 in New York is 7:30 in Los Angeles
    page = client.get(f"/appointments/book/?offer={heloc.pk}&tz=America/Los_Angeles")
    assert page.status_code == 200
    html = page.content.decode()
    assert "about Home equity line of credit" in html
    assert f'value="{_value(start)}"' in html
    day = start.astimezone(ZoneInfo("America/Los_Angeles")).strftime("%A, %B %-d")
    assert f"<legend>{day}</legend>" in html
    assert "<span>7:30 AM</span>" in html
    assert "<span>5:30 AM</span>" not in html  # before 9:00 in New York

    response = client.post(
        "/appointments/book/",
        {
            "offer": heloc.pk,
            "officer": officer.pk,
            "tz": "America/Los_Angeles",
            "start": _value(start),
            "note": "Kitchen remodel",
        },
    )
    (appointment,) = _appointments(env)
    assert response.status_code == 302
    assert response["Location"] == f"/appointments/{appointment.pk}/"
    assert (appointment.start, appointment.offer_id, appointment.note) == (
        start,
        heloc.pk,
        "Kitchen remodel",
    )
    assert appointment.member_time_zone == "America/Los_Angeles"
    html = client.get(response["Location"]).content.decode()
    assert "7:30 AM PST" in html
    assert "Kitchen remodel" in html
    assert "Booked:" in html


def test_time_zone__chosen_once__remembered_for_the_session(env, member, officer):
    client = member_client(member)
    client.get("/appointments/book/?tz=America/Denver")
    html = client.get("/appointments/book/").content.decode()
    assert '<option value="America/Denver" selected>' in html
    assert 'data-tz-chosen="1"' in html
    html = member_client(MemberFactory(environment=env)).get("/appointments/book/").content.decode()
    assert 'data-tz-chosen="0"' in html  # the browser's zone is asked for by the script
    assert '<option value="America/New_York" selected>' in html  # the institution's


@pytest.mark.parametrize(
    ("start", "status", "words"),
    [
        (lambda env: _value(thursday(env, 8)), 400, "not one of Sam Rivera"),
        (
            lambda env: _value(dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)),
            400,
            "already passed",
        ),
        (lambda env: "tomorrow at ten", 400, "Please choose a time."),
        (lambda env: "", 400, "Please choose a time."),
    ],
    ids=["outside-hours", "past", "garbage", "missing"],
)
def test_book__bad_time__clear_message_and_nothing_booked(
    env, member, officer, start, status, words
):
    response = member_client(member).post(
        "/appointments/book/", {"officer": officer.pk, "start": start(env)}
    )
    assert response.status_code == status
    assert words in response.content.decode()
    assert 'id="booking-error"' in response.content.decode()
    assert _appointments(env) == []


EXTREME_STARTS = [
    "9999-12-31T23:00:00+00:00",  # next year in Tokyo: past datetime's last year
    "0001-01-01T00:00:00+00:00",  # year 0 in New York
    "0001-01-01T00:00:00+05:00",  # year 0 in UTC already
    "9999-12-31T23:59:00-05:00",  # year 10000 in UTC
]


@pytest.mark.parametrize("tz", ["Asia/Tokyo", "America/New_York"])
@pytest.mark.parametrize("start", EXTREME_STARTS)
def test_book__start_at_the_ends_of_the_calendar__not_valid_and_nothing_booked(
    env, member, officer, start, tz
):
    response = member_client(member).post(
        "/appointments/book/", {"officer": officer.pk, "start": start, "tz": tz}
    )
    assert response.status_code == 400
    assert "That time is not valid." in response.content.decode()
    assert _appointments(env) == []


@pytest.mark.parametrize("start", EXTREME_STARTS)
def test_move__to_the_ends_of_the_calendar__not_valid_and_nothing_changed(
    env, member, officer, start
):
    appointment = book(env, member, officer, thursday(env, 10), time_zone="Asia/Tokyo")
    client = member_client(member)
    response = client.post(f"/appointments/{appointment.pk}/move/", {"start": start})
    assert response.status_code == 400
    assert "That time is not valid." in response.content.decode()
    (kept,) = _appointments(env)
    assert (kept.start, kept.sequence) == (appointment.start, 0)


def test_book__slot_taken_meanwhile__409_with_other_times(env, member, officer):
    start = thursday(env, 10)
    book(env, MemberFactory(environment=env), officer, start)
    response = member_client(member).post(
        "/appointments/book/", {"officer": officer.pk, "start": _value(start), "note": "hi"}
    )
    assert response.status_code == 409
    html = response.content.decode()
    assert "was just taken. Please pick another time." in html
    assert f'value="{_value(start)}"' not in html
    assert f'value="{_value(start + dt.timedelta(minutes=30))}"' in html
    assert ">hi</textarea>" in html  # the note is kept
    assert len(_appointments(env)) == 1


def test_book__note_too_long__field_error(env, member, officer):
    response = member_client(member).post(
        "/appointments/book/",
        {"officer": officer.pk, "start": _value(thursday(env, 10)), "note": "x" * 1200},
    )
    assert response.status_code == 400
    assert "Please keep the note under 1000 characters" in response.content.decode()


def test_book__note_within_the_textarea_limit_with_line_breaks__booked_not_refused_as_too_long(
    env, member, officer
):
    """The note's <textarea maxlength="1000"> lets a member type 999 characters over 200
    lines (the browser counts a line break as one character), but browsers submit line
    breaks as CR LF: the server counts 1198 and refuses "Please keep the note under 1000
    characters (it has 1198)", a count the member never typed (seen in Chromium too)."""
    typed = "line\n" * 199 + "line"
    assert len(typed) == 999  # what the textarea lets through
    submitted = typed.replace("\n", "\r\n")  # what the browser posts
    response = member_client(member).post(
        "/appointments/book/",
        {"officer": officer.pk, "start": _value(thursday(env, 10)), "note": submitted},
    )
    assert response.status_code == 302
    (appointment,) = _appointments(env)
    assert appointment.note == typed


def test_calendar_that_cannot_be_read__member_told__times_still_offered(env, member):
    officer = officer_with_week(
        env, caldav_url=f"http://127.0.0.1:{free_port()}/sam/work/", caldav_username="sam"
    )
    html = member_client(member).get("/appointments/book/").content.decode()
    assert 'id="calendar-unchecked"' in html
    assert f"We couldn't check {officer.name}'s calendar just now" in html
    assert 'name="start"' in html


def test_dashboard__card_with_next_appointment_and_booking_link(env, member, officer):
    client = member_client(member)
    assert 'href="/appointments/book/" id="dashboard-book"' in client.get("/").content.decode()
    appointment = book(env, member, officer, thursday(env, 11), time_zone="America/Chicago")
    html = client.get("/").content.decode()
    assert f'href="/appointments/{appointment.pk}/"' in html
    assert "10:00 AM CST" in html


def test_no_officers__page_says_so_with_the_phone_number(env, member):
    with environment_scope(env):
        Branding.objects.filter(environment=env).update(support_phone="1-800-555-0100")
    html = member_client(member).get("/appointments/book/").content.decode()
    assert 'id="no-officers"' in html
    assert 'Please call us at <a href="tel:1-800-555-0100">' in html


def test_move_and_cancel__from_the_appointment_page(env, member, officer):
    client = member_client(member)
    appointment = book(env, member, officer, thursday(env, 10))
    page = client.get(f"/appointments/{appointment.pk}/move/").content.decode()
    assert f'value="{_value(thursday(env, 14))}"' in page
    later = thursday(env, 14)
    response = client.post(f"/appointments/{appointment.pk}/move/", {"start": _value(later)})
    assert response.status_code == 302
    (moved,) = _appointments(env)
    assert (moved.start, moved.sequence) == (later, 1)
    assert "Moved to" in client.get(response["Location"]).content.decode()

    assert "Yes, cancel it" in client.get(f"/appointments/{moved.pk}/cancel/").content.decode()
    response = client.post(f"/appointments/{moved.pk}/cancel/")
    assert response.status_code == 302
    (cancelled,) = _appointments(env)
    assert cancelled.status == Appointment.Status.CANCELLED
    html = client.get(f"/appointments/{moved.pk}/").content.decode()
    assert "Your appointment is cancelled" in html
    assert 'id="move"' not in html
    response = client.post(f"/appointments/{moved.pk}/move/", {"start": _value(later)})
    assert response.status_code == 302  # refused, with the reason shown on the page
    assert "Only an upcoming appointment" in client.get(response["Location"]).content.decode()


def test_calendar_file__download_of_the_invitation(env, member, officer):
    appointment = book(env, member, officer, thursday(env, 10))
    response = member_client(member).get(f"/appointments/{appointment.pk}/invitation.ics")
    assert response["Content-Type"] == "text/calendar; charset=utf-8; method=REQUEST"
    assert f"UID:{appointment.uid}" in response.content.decode()


def test_another_members_appointment__answers_404(env, member, officer):
    theirs = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    client = member_client(member)
    for suffix in ("", "move/", "cancel/", "invitation.ics"):
        assert client.get(f"/appointments/{theirs.pk}/{suffix}").status_code == 404
    assert client.post(f"/appointments/{theirs.pk}/cancel/").status_code == 404
    (row,) = _appointments(env)
    assert row.status == Appointment.Status.BOOKED


def test_booking_disabled__no_link_no_times(env, member, heloc, officer):
    appointment_settings_factory(env, enabled=False)
    client = member_client(member)
    assert "/appointments/book/" not in client.get(f"/offers/{heloc.pk}/").content.decode()
    html = client.get("/appointments/book/").content.decode()
    assert "not available right now" in html
    assert 'name="start"' not in html
