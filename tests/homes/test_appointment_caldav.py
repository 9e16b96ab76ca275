"""Officers' CalDAV calendars against a real server (Radicale, started by the test): busy
time read before times are offered, appointments written, moved and removed, and a server
that refuses the credentials or is down never loses or doubles a booking."""

from __future__ import annotations

import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from homes import caldav_client
from homes.appointment_selectors import appointment_settings, booking_range, officer_free_slots
from homes.models import Appointment, LoanOfficer
from homes.services import (
    AppointmentError,
    appointment_cancel,
    appointment_reschedule,
    appointments_calendar_retry,
    loan_officer_save,
    member_erase,
    officer_busy,
    officer_calendar_check,
)
from homes.services.calendars import (
    ERASED_MEMBER,
    appointment_calendar_mark,
    appointment_calendar_sync,
    appointments_calendar_sweep,
)
from homes.services.officers import PreviousCalendarError
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.caldav_server import Radicale
from tests.homes.factories import AppointmentFactory, officer_with_week

pytestmark = pytest.mark.django_db


@pytest.fixture
def env(tenant):
    return tenant.production


def _officer(env, calendar, **kwargs):
    return officer_with_week(
        env,
        caldav_url=calendar.url,
        caldav_username=calendar.username,
        caldav_password=kwargs.pop("password", calendar.password),
        **kwargs,
    )


def _free(env, officer, *, fresh=False):
    now = dt.datetime.now(dt.UTC)
    with environment_scope(env):
        settings = appointment_settings(env)
        bounds = booking_range(officer, settings, now)
        tz = env.institution.tz
        busy = officer_busy(
            environment=env,
            officer=officer,
            start=bounds.start(tz),
            end=bounds.end(tz),
            fresh=fresh,
        )
        slots = officer_free_slots(officer, settings=settings, now=now, calendar_busy=busy.periods)
    return busy, slots


def _reload(obj):
    with environment_scope(obj.environment):
        obj.refresh_from_db()
    return obj


def test_free_busy__busy_time_in_the_calendar__is_not_offered_nor_bookable(env, radicale):
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    ten = thursday(env, 10)
    calendar.add_busy(ten, ten + dt.timedelta(minutes=30))

    busy, slots = _free(env, officer)
    assert busy.state == "ok"
    assert (ten, ten + dt.timedelta(minutes=30)) in busy.periods
    assert ten not in slots
    assert ten + dt.timedelta(minutes=30) in slots
    assert _reload(officer).caldav_status == LoanOfficer.CalendarStatus.OK

    member = MemberFactory(environment=env)
    with pytest.raises(AppointmentError, match="was just taken"):
        book(env, member, officer, ten)
    assert book(env, member, officer, ten + dt.timedelta(minutes=30)).pk


def test_booking__is_written_to_the_calendar__moved_in_place__removed_on_cancel(
    env, radicale, django_capture_on_commit_callbacks
):
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    member = MemberFactory(environment=env, first_name="Ada", last_name="Park")
    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(env, member, officer, thursday(env, 10), note="About my roof")
    assert _reload(appointment).caldav_state == Appointment.CalendarSync.SYNCED
    (event,) = calendar.our_events()
    assert str(event["UID"]) == appointment.uid
    assert (event["SEQUENCE"], event["DTSTART"].dt) == (0, appointment.start)
    assert "About my roof" in str(event["DESCRIPTION"])
    assert event["ATTENDEE"].params["SCHEDULE-AGENT"] == "CLIENT"  # no server invitations
    assert "METHOD" not in calendar._calendar().events()[0].data

    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        moved = appointment_reschedule(
            environment=env, appointment=appointment, start=thursday(env, 14)
        )
    (event,) = calendar.our_events()  # the same event, updated: never a second one
    assert (str(event["UID"]), event["SEQUENCE"]) == (appointment.uid, 1)
    assert event["DTSTART"].dt == moved.start
    assert _reload(moved).caldav_synced_sequence == 1

    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        appointment_cancel(environment=env, appointment=moved)
    assert calendar.our_events() == []
    assert _reload(moved).caldav_state == Appointment.CalendarSync.SYNCED


def test_wrong_credentials__booking_kept__failure_shown__fixed_credentials_sync(
    env, radicale, django_capture_on_commit_callbacks
):
    calendar = radicale.calendar()
    officer = _officer(env, calendar, password="not-the-password")
    busy, slots = _free(env, officer)
    assert busy.state == "unavailable"
    assert slots  # members are still offered times
    officer = _reload(officer)
    assert officer.caldav_status == LoanOfficer.CalendarStatus.ERROR
    assert "refused the credentials (401)" in officer.caldav_error

    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(env, MemberFactory(environment=env), officer, slots[0])
    appointment = _reload(appointment)
    assert appointment.status == Appointment.Status.BOOKED
    assert appointment.caldav_state == Appointment.CalendarSync.FAILED  # retrying cannot help
    assert appointment.caldav_attempts == 1
    assert "refused the credentials" in appointment.caldav_error
    assert "not-the-password" not in appointment.caldav_error

    officer.caldav_password = calendar.password
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        loan_officer_save(environment=env, officer=officer)
        assert officer_calendar_check(environment=env, officer=officer) == ""
    assert _reload(appointment).caldav_state == Appointment.CalendarSync.SYNCED
    assert [str(e["UID"]) for e in calendar.our_events()] == [appointment.uid]
    assert _reload(officer).caldav_status == LoanOfficer.CalendarStatus.OK


def test_server_down__last_busy_time_stands_in__sync_retried_then_failed__staff_retry(
    env, radicale, settings, django_capture_on_commit_callbacks
):
    settings.APPOINTMENTS_CALDAV_MAX_ATTEMPTS = 3
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    ten = thursday(env, 10)
    calendar.add_busy(ten, ten + dt.timedelta(minutes=30))
    assert _free(env, officer)[0].state == "ok"

    radicale.stop()
    busy, slots = _free(env, officer, fresh=True)  # past the minute's cache
    assert busy.state == "stale"  # the busy time read before the server went down
    assert ten not in slots
    assert "did not answer" in _reload(officer).caldav_error

    with django_capture_on_commit_callbacks(execute=True):
        appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 11))
    appointment = _reload(appointment)
    assert appointment.status == Appointment.Status.BOOKED
    assert appointment.caldav_state == Appointment.CalendarSync.FAILED
    assert appointment.caldav_attempts == 3
    assert "gave up after 3 attempts" in appointment.caldav_error

    radicale.start()
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        assert appointments_calendar_retry(environment=env, appointment_ids=[appointment.pk]) == 1
    appointment = _reload(appointment)
    assert appointment.caldav_state == Appointment.CalendarSync.SYNCED
    assert [str(e["UID"]) for e in calendar.our_events()] == [appointment.uid]


def test_sync_task_lost__sweep_queues_it_again(env, radicale, django_capture_on_commit_callbacks):
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    with django_capture_on_commit_callbacks(execute=False):  # the task is never queued
        appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    assert _reload(appointment).caldav_state == Appointment.CalendarSync.PENDING
    assert calendar.our_events() == []
    with environment_scope(env):
        assert appointments_calendar_sweep(environment=env) == 0  # not overdue yet
        later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
        with django_capture_on_commit_callbacks(execute=True):
            assert appointments_calendar_sweep(environment=env, now=later) == 1
    assert _reload(appointment).caldav_state == Appointment.CalendarSync.SYNCED
    assert len(calendar.our_events()) == 1


@pytest.fixture
def while_next_put_is_on_the_wire(monkeypatch):
    """Run a step (another worker) after the next PUT has left and before it lands, so that
    the PUT reaches the server after everything the step wrote."""
    steps = []
    put = caldav_client.event_put

    def late_put(access, name, ics):
        if steps:
            steps.pop()()
        put(access, name, ics)

    monkeypatch.setattr(caldav_client, "event_put", late_put)
    return steps.append


def _sync(env, appointment):
    with environment_scope(env):
        return appointment_calendar_sync(environment=env, appointment_id=appointment.pk)


def test_sync__late_write_lands_after_the_cancel_was_synced__event_removed_again(
    env, radicale, while_next_put_is_on_the_wire
):
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))

    def member_cancels_and_another_worker_syncs():
        with environment_scope(env):
            appointment_cancel(environment=env, appointment=appointment)
        assert _sync(env, appointment).state == Appointment.CalendarSync.SYNCED

    while_next_put_is_on_the_wire(member_cancels_and_another_worker_syncs)
    assert _sync(env, appointment).state == Appointment.CalendarSync.SYNCED
    row = _reload(appointment)
    assert (row.status, row.caldav_state) == ("cancelled", Appointment.CalendarSync.SYNCED)
    assert calendar.our_events() == []  # not resurrected by the late write


def test_sync__late_write_lands_after_the_move_was_synced__calendar_shows_the_new_time(
    env, radicale, while_next_put_is_on_the_wire
):
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    two = thursday(env, 14)

    def member_moves_and_another_worker_syncs():
        with environment_scope(env):
            appointment_reschedule(environment=env, appointment=appointment, start=two)
        assert _sync(env, appointment).state == Appointment.CalendarSync.SYNCED

    while_next_put_is_on_the_wire(member_moves_and_another_worker_syncs)
    assert _sync(env, appointment).state == Appointment.CalendarSync.SYNCED
    row = _reload(appointment)
    assert (row.sequence, row.caldav_synced_sequence) == (1, 1)
    (event,) = calendar.our_events()
    assert (event["SEQUENCE"], event["DTSTART"].dt) == (1, two)  # not the old 10:00


def test_sync__appointment_keeps_changing_while_written__left_pending_and_retried(
    env, radicale, while_next_put_is_on_the_wire
):
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    hours = iter(range(11, 17))

    def member_moves_again():
        with environment_scope(env):
            current = Appointment.objects.get(pk=appointment.pk)
            appointment_reschedule(
                environment=env, appointment=current, start=thursday(env, next(hours))
            )

    for _ in range(5):  # during every write of the task's run
        while_next_put_is_on_the_wire(member_moves_again)
    outcome = _sync(env, appointment)
    assert outcome.state == Appointment.CalendarSync.PENDING
    assert outcome.retry_in is not None  # the task queues itself again
    assert _reload(appointment).caldav_synced_sequence is None

    assert _sync(env, appointment).state == Appointment.CalendarSync.SYNCED  # the retry
    (event,) = calendar.our_events()
    assert (event["SEQUENCE"], event["DTSTART"].dt) == (5, thursday(env, 15))


# -- the officer's calendar changes ---------------------------------------------------------


@pytest.fixture
def previous_server(tmp_path):
    """A second CalDAV server, for the calendar an officer moves away from."""
    server = Radicale(tmp_path / "previous").start()
    yield server
    server.stop()


def _move_calendar(env, officer, calendar, **kwargs):
    officer.caldav_url = calendar.url if calendar else ""
    officer.caldav_username = calendar.username if calendar else ""
    officer.caldav_password = calendar.password if calendar else ""
    with environment_scope(env):
        return loan_officer_save(environment=env, officer=officer, **kwargs)


def _two_booked(env, officer, capture):
    with capture(execute=True):
        first = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
        second = book(env, MemberFactory(environment=env), officer, thursday(env, 11))
    return first, second


def test_calendar_moved__upcoming_events_leave_the_previous_calendar_for_the_new_one(
    env, radicale, django_capture_on_commit_callbacks
):
    old, new = radicale.calendar(), radicale.calendar()
    officer = _officer(env, old)
    first, second = _two_booked(env, officer, django_capture_on_commit_callbacks)
    assert len(old.our_events()) == 2

    with django_capture_on_commit_callbacks(execute=True):
        _move_calendar(env, officer, new)
    assert old.our_events() == []
    assert sorted(str(e["UID"]) for e in new.our_events()) == sorted([first.uid, second.uid])
    assert {_reload(a).caldav_state for a in (first, second)} == {"synced"}
    with environment_scope(env):
        entry = AuditEntry.objects.filter(object_type="homes.LoanOfficer").latest("id")
    assert "2 upcoming appointments removed from the previous one" in entry.reason


def test_calendar_removed__upcoming_events_removed_from_it(
    env, radicale, django_capture_on_commit_callbacks
):
    old = radicale.calendar()
    officer = _officer(env, old)
    first, _ = _two_booked(env, officer, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        _move_calendar(env, officer, None)
    assert old.our_events() == []
    assert _reload(first).caldav_state == Appointment.CalendarSync.NONE


def test_calendar_moved__previous_server_down__change_refused__events_kept__later_moved(
    env, radicale, previous_server, django_capture_on_commit_callbacks
):
    old, new = previous_server.calendar(), radicale.calendar()
    officer = _officer(env, old)
    _two_booked(env, officer, django_capture_on_commit_callbacks)
    previous_server.stop()

    with pytest.raises(PreviousCalendarError, match="could not be removed"):
        _move_calendar(env, officer, new)
    assert _reload(officer).caldav_url == old.url  # nothing saved: still the calendar
    assert new.our_events() == []

    previous_server.start()
    with django_capture_on_commit_callbacks(execute=True):
        _move_calendar(env, officer, new)
    assert old.our_events() == []
    assert len(new.our_events()) == 2


def test_calendar_moved__previous_gone_for_good__staff_leave_the_events_there(
    env, radicale, previous_server, django_capture_on_commit_callbacks
):
    officer = _officer(env, previous_server.calendar())
    _two_booked(env, officer, django_capture_on_commit_callbacks)
    previous_server.stop()
    new = radicale.calendar()
    with django_capture_on_commit_callbacks(execute=True):
        _move_calendar(env, officer, new, previous_events="keep")
    assert _reload(officer).caldav_url == new.url
    assert len(new.our_events()) == 2
    with environment_scope(env):
        entry = AuditEntry.objects.filter(object_type="homes.LoanOfficer").latest("id")
    assert "left in the previous calendar" in entry.reason


def test_calendar_moved__removal_fails_midway__removed_events_written_back(
    env, radicale, monkeypatch, django_capture_on_commit_callbacks
):
    old, new = radicale.calendar(), radicale.calendar()
    officer = _officer(env, old)
    first, second = _two_booked(env, officer, django_capture_on_commit_callbacks)
    delete = caldav_client.event_delete
    calls = []

    def second_delete_fails(access, name):
        calls.append(name)
        if len(calls) == 2:
            raise caldav_client.CalendarError("The calendar server answered 503 while removing.")
        delete(access, name)

    monkeypatch.setattr(caldav_client, "event_delete", second_delete_fails)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(PreviousCalendarError, match="answered 503"),
    ):
        _move_calendar(env, officer, new)
    # The first was removed before the failure: it is written back to the calendar in use.
    assert _reload(officer).caldav_url == old.url
    assert sorted(str(e["UID"]) for e in old.our_events()) == sorted([first.uid, second.uid])
    assert new.our_events() == []


class MovedCalendarServer:
    """A calendar server whose old address answers 302 (moved) to every request, as a
    server moved behind a redirecting front does; the new address answers GET with 200."""

    def __init__(self):
        self.requests: list[tuple[str, str, int]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.requests.append((self.command, self.path, length))
                if self.path.startswith("/old/"):
                    self.send_response(302)
                    self.send_header("Location", "/new/" + self.path[len("/old/") :])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = _any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def calendar_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/old/officer/cal/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_calendar_write__server_answers_302__failure_shown_not_synced(
    env, django_capture_on_commit_callbacks
):
    """The officer's calendar server answers the PUT of a new appointment with 302 (moved).
    The HTTP client turns that into a bodiless GET of the new address, whose 200 the sync
    takes for a saved event: the appointment shows "synced" while the officer's calendar
    never received it (the same happens to a DELETE on cancel: the event stays). A redirect
    must count as a failure staff can see, not as success."""
    with MovedCalendarServer() as server:
        officer = officer_with_week(
            env, caldav_url=server.calendar_url, caldav_username="u", caldav_password="p"
        )
        member = MemberFactory(environment=env)
        with django_capture_on_commit_callbacks(execute=True):
            appointment = book(env, member, officer, thursday(env, 10))
        access = caldav_client.CalendarAccess.of(officer)
        with pytest.raises(caldav_client.CalendarError, match="redirected") as removing:
            caldav_client.event_delete(access, appointment.uid)
    appointment = _reload(appointment)
    assert appointment.caldav_state == Appointment.CalendarSync.FAILED  # retrying cannot help
    assert "redirected to another address (302)" in appointment.caldav_error
    assert removing.value.permanent
    assert [r for r in server.requests if r[1].startswith("/new/")] == []  # never followed


def test_calendar_on_an_inside_address__refused_for_good_and_named_at_save(env, radicale, settings):
    """The CalDAV URL is the institution's: the platform connects to public addresses only
    (development and the tests allow this machine's)."""
    from django.core.exceptions import ValidationError

    calendar = radicale.calendar()
    access = caldav_client.CalendarAccess(calendar.url, calendar.username, calendar.password)
    caldav_client.check(access)  # reachable while this machine's addresses are allowed
    settings.OUTBOUND_PRIVATE_ALLOWED = False
    with pytest.raises(caldav_client.CalendarError) as caught:
        caldav_client.check(access)
    assert caught.value.permanent
    assert "127.0.0.1 is not a public internet address" in caught.value.message
    assert calendar.password not in caught.value.message
    officer = LoanOfficer(environment=env, name="Sam", caldav_url=calendar.url)
    with pytest.raises(ValidationError) as invalid:
        officer.clean()
    assert "not a public internet address" in str(invalid.value.message_dict["caldav_url"])


# -- erasure --------------------------------------------------------------------------------


def _past_in_calendar(env, officer, member, note):
    """A completed appointment of last week, written to the officer's calendar."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=7)
    past = AppointmentFactory(
        environment=env,
        officer=officer,
        member=member,
        start=start,
        status=Appointment.Status.COMPLETED,
        note=note,
    )
    with environment_scope(env):
        appointment_calendar_mark(environment=env, appointment=past)
        assert appointment_calendar_sync(environment=env, appointment_id=past.pk).state == "synced"
    return past


def test_member_erase__upcoming_event_removed__past_event_kept_without_the_member(
    env, radicale, django_capture_on_commit_callbacks
):
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    member = MemberFactory(
        environment=env, first_name="Ada", last_name="Park", email="ada.park@members.test"
    )
    past = _past_in_calendar(env, officer, member, note="About the divorce")
    with django_capture_on_commit_callbacks(execute=True):
        upcoming = book(env, member, officer, thursday(env, 10), note="Call me on 206-555-0100")
    assert {str(e["UID"]) for e in calendar.our_events()} == {past.uid, upcoming.uid}
    assert "Ada Park" in str(calendar.our_events()[0]["SUMMARY"])

    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        member_erase(environment=env, member=member, actor_label="test")

    (event,) = calendar.our_events()  # the upcoming one is gone
    assert str(event["UID"]) == past.uid
    assert event["DTSTART"].dt == past.start  # the officer keeps the meeting they had
    assert "ATTENDEE" not in event
    written = f"{event['SUMMARY']} {event['DESCRIPTION']}"
    assert ERASED_MEMBER in written
    for personal in ("Ada", "Park", "ada.park", "divorce", "206-555-0100"):
        assert personal not in written
    assert _reload(upcoming).status == Appointment.Status.CANCELLED
    for row in (upcoming, past):
        assert _reload(row).caldav_state == Appointment.CalendarSync.SYNCED


def test_member_erase__calendar_server_down__erased__removal_retried_shown__then_done(
    env, radicale, settings, django_capture_on_commit_callbacks
):
    settings.APPOINTMENTS_CALDAV_MAX_ATTEMPTS = 3
    calendar = radicale.calendar()
    officer = _officer(env, calendar)
    member = MemberFactory(environment=env, first_name="Ada", last_name="Park")
    with django_capture_on_commit_callbacks(execute=True):
        upcoming = book(env, member, officer, thursday(env, 10))
    assert len(calendar.our_events()) == 1

    radicale.stop()
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        erased = member_erase(environment=env, member=member, actor_label="test")
    assert erased.erased_at is not None  # the calendar never holds the erasure up
    upcoming = _reload(upcoming)
    assert upcoming.status == Appointment.Status.CANCELLED
    assert upcoming.caldav_state == Appointment.CalendarSync.FAILED  # shown to staff
    assert upcoming.caldav_attempts == 3
    assert "gave up after 3 attempts" in upcoming.caldav_error

    radicale.start()
    assert len(calendar.our_events()) == 1  # still there, naming the member
    with django_capture_on_commit_callbacks(execute=True), environment_scope(env):
        assert appointments_calendar_retry(environment=env, appointment_ids=[upcoming.pk]) == 1
    assert calendar.our_events() == []
    assert _reload(upcoming).caldav_state == Appointment.CalendarSync.SYNCED
