"""Booking, moving and cancelling conversations with loan officers: slots, the rules a
booking must pass, the invitations written to the outbox, statuses and reminders."""

from __future__ import annotations

import ast
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, transaction
from icalendar import Calendar

from homes.appointment_selectors import appointment_settings, officer_free_slots
from homes.models import Appointment, Member
from homes.services import (
    AppointmentError,
    appointment_cancel,
    appointment_reschedule,
    appointment_set_status,
    appointments_remind,
    member_erase,
)
from homes.services.calendars import ERASED_MEMBER
from homes.slots import Window, candidate_slots
from institutions.models import AuditEntry
from institutions.tenancy import environment_scope
from notifications.models import Delivery
from tests.factories import MemberFactory
from tests.homes.appointment_helpers import book, thursday
from tests.homes.factories import (
    AppointmentFactory,
    LoanOfficerFactory,
    OfferProductFactory,
    appointment_settings_factory,
    officer_with_week,
)

pytestmark = pytest.mark.django_db

UTC = dt.UTC


@pytest.fixture
def env(tenant):
    return tenant.production


@pytest.fixture
def officer(env):
    return officer_with_week(env, name="Sam Rivera", email="sam@lender.test")


def _local_times(slots, tz, day):
    return [s.astimezone(tz).strftime("%H:%M") for s in slots if s.astimezone(tz).date() == day]


def _deliveries(env, **filters):
    with environment_scope(env):
        return list(Delivery.objects.filter(**filters).order_by("pk"))


def _invitation(delivery) -> tuple[str, Calendar]:
    (attachment,) = delivery.context["attachments"]
    return attachment["mimetype"], Calendar.from_ical(attachment["content"])


# -- slots ----------------------------------------------------------------------------------


def test_slots__availability_minus_appointments_with_buffer__in_institution_time(env):
    officer = officer_with_week(env, buffer_minutes=15)
    tz = env.institution.tz
    ten = thursday(env, 10)
    book(env, MemberFactory(environment=env), officer, ten)
    with environment_scope(env):
        slots = officer_free_slots(
            officer, settings=appointment_settings(env), now=dt.datetime.now(UTC)
        )
    times = _local_times(slots, tz, ten.astimezone(tz).date())
    assert times[:4] == ["09:00", "11:00", "11:30", "12:00"]  # 9:30, 10:00 and 10:30 are kept
    assert times[-1] == "16:30"  # the last meeting ends at 17:00


def test_slots__minimum_notice_and_days_ahead__bound_what_is_offered(env):
    officer = officer_with_week(env, days_ahead=3)
    appointment_settings_factory(env, min_notice_minutes=24 * 60)
    tz = env.institution.tz
    monday = dt.date(2030, 6, 3)  # three weekdays follow: the window ends on Thursday

    def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
        local = dt.datetime.combine(monday + dt.timedelta(days=day), dt.time(hour, minute))
        return local.replace(tzinfo=tz).astimezone(UTC)

    def offered(now: dt.datetime) -> list[dt.datetime]:
        with environment_scope(env):
            return officer_free_slots(officer, settings=appointment_settings(env), now=now)

    # Notice ending on a slot start offers that slot; a minute later, the next one.
    slots = offered(at(0, 10))
    assert slots
    assert slots[0] == at(1, 10)
    assert offered(at(0, 10, 1))[0] == at(1, 10, 30)
    # Days ahead end on Thursday, the last meeting of which starts at 16:30.
    assert slots[-1] == at(3, 16, 30)
    assert len(slots) == 14 + 16 + 16  # Tuesday from 10:00, then Wednesday and Thursday


def test_candidate_slots__on_the_day_clocks_go_forward__keep_wall_times():
    tz = ZoneInfo("America/New_York")
    day = dt.date(2026, 3, 8)  # 02:00 becomes 03:00
    slots = candidate_slots(
        windows=[Window(day.weekday(), dt.time(1), dt.time(4))],
        tz=tz,
        first_day=day,
        last_day=day,
        length=dt.timedelta(minutes=30),
    )
    assert [s.astimezone(tz).strftime("%H:%M") for s in slots] == [
        "01:00",
        "01:30",
        "03:00",
        "03:30",
    ]
    summer = candidate_slots(
        windows=[Window(0, dt.time(9), dt.time(10))],
        tz=tz,
        first_day=dt.date(2026, 7, 6),
        last_day=dt.date(2026, 7, 6),
        length=dt.timedelta(minutes=60),
    )
    assert summer == [dt.datetime(2026, 7, 6, 13, tzinfo=UTC)]  # 9:00 EDT


# -- booking --------------------------------------------------------------------------------


def test_book__writes_the_appointment_and_both_invitations_to_the_outbox(env, officer):
    member = MemberFactory(environment=env, first_name="Ada", last_name="Park")
    offer = OfferProductFactory(environment=env, title="Home equity line of credit")
    start = thursday(env, 10, 30)
    appointment = book(
        env,
        member,
        officer,
        start,
        offer=offer,
        note="Kitchen remodel",
        time_zone="America/Chicago",
    )
    assert (appointment.start, appointment.end) == (start, start + dt.timedelta(minutes=30))
    assert appointment.member_time_zone == "America/Chicago"
    assert appointment.sequence == 0
    assert appointment.caldav_state == Appointment.CalendarSync.NONE  # no calendar set

    (to_member,) = _deliveries(env, member=member)
    assert to_member.template_key == "appointment_confirmation"
    assert "9:30 AM CST" in to_member.context["appointment"]["when"]  # the member's zone
    mimetype, invitation = _invitation(to_member)
    assert mimetype == "text/calendar; method=REQUEST"
    assert invitation["METHOD"] == "REQUEST"
    (event,) = invitation.walk("VEVENT")
    assert str(event["UID"]) == appointment.uid
    assert event["SEQUENCE"] == 0
    assert event["DTSTART"].dt == start
    assert str(event["ORGANIZER"]) == "mailto:sam@lender.test"
    assert str(event["ATTENDEE"]) == f"mailto:{member.email}"
    assert "Kitchen remodel" in str(event["DESCRIPTION"])

    (to_officer,) = _deliveries(env, member__isnull=True)
    assert (to_officer.recipient_email, to_officer.recipient_name) == (
        "sam@lender.test",
        "Sam Rivera",
    )
    assert to_officer.template_key == "appointment_officer_confirmation"
    assert "10:30 AM EST" in to_officer.context["appointment"]["when"]  # institution time
    assert _invitation(to_officer)[0] == "text/calendar; method=REQUEST"
    with environment_scope(env):
        assert AuditEntry.objects.filter(
            object_type="homes.Appointment", object_id=str(appointment.pk), action="create"
        ).exists()


@pytest.mark.parametrize(
    ("when", "code", "words"),
    [
        (lambda env: dt.datetime.now(UTC) - dt.timedelta(days=1), "past", "has already passed"),
        (lambda env: dt.datetime.now(UTC) + dt.timedelta(minutes=30), "notice", "too soon"),
        (lambda env: thursday(env, 10) + dt.timedelta(days=35), "too_far", "14 days ahead"),
        (lambda env: thursday(env, 8, 30), "outside", "not one of Sam Rivera's"),
        (lambda env: thursday(env, 10, 15), "outside", "not one of Sam Rivera's"),
        (lambda env: thursday(env, 17), "outside", "not one of Sam Rivera's"),
        (lambda env: thursday(env, 10) + dt.timedelta(days=2), "outside", "Saturday"),
    ],
    ids=["past", "notice", "too-far", "before-hours", "off-grid", "past-closing", "weekend"],
)
def test_book__bad_time__is_refused_with_a_clear_message_and_nothing_saved(
    env, officer, when, code, words
):
    member = MemberFactory(environment=env)
    with pytest.raises(AppointmentError) as caught:
        book(env, member, officer, when(env))
    assert caught.value.code == code
    assert words in caught.value.message
    assert caught.value.field == "start"
    with environment_scope(env):
        assert not Appointment.objects.exists()
        assert not Delivery.objects.exists()


def test_book__taken_slot_or_one_inside_the_buffer__is_refused_and_never_doubled(env):
    officer = officer_with_week(env, buffer_minutes=30)
    first, second = MemberFactory(environment=env), MemberFactory(environment=env)
    ten = thursday(env, 10)
    book(env, first, officer, ten)
    for start in (ten, ten + dt.timedelta(minutes=30)):
        with pytest.raises(AppointmentError) as caught:
            book(env, second, officer, start)
        assert caught.value.code == "taken"
        assert "was just taken" in caught.value.message
    with environment_scope(env):
        assert Appointment.objects.filter(officer=officer).count() == 1
        assert not Delivery.objects.filter(member=second).exists()
    book(env, second, officer, ten + dt.timedelta(hours=1))  # clear of the buffer


def test_book__member_already_booked_then__is_told_so(env, officer):
    other = officer_with_week(env, name="Lee Chen")
    member = MemberFactory(environment=env)
    book(env, member, officer, thursday(env, 10))
    with pytest.raises(AppointmentError) as caught:
        book(env, member, other, thursday(env, 10))
    assert caught.value.code == "member_busy"
    assert "Sam Rivera" in caught.value.message


def test_book__bad_note_officer_or_offer__refused(env, officer):
    member = MemberFactory(environment=env)
    start = thursday(env, 11)
    with pytest.raises(AppointmentError, match="under 1000 characters") as caught:
        book(env, member, officer, start, note="x" * 1001)
    assert caught.value.field == "note"
    heloc, refi = OfferProductFactory(environment=env), OfferProductFactory(environment=env)
    specialist = officer_with_week(env, name="Pat Lee")
    with environment_scope(env):
        specialist.offers.set([refi])
    with pytest.raises(AppointmentError, match="Pat Lee does not handle"):
        book(env, member, specialist, start, offer=heloc)
    resting = officer_with_week(env, is_active=False)
    with pytest.raises(AppointmentError, match="not taking appointments"):
        book(env, member, resting, start)
    appointment_settings_factory(env, enabled=False)
    with pytest.raises(AppointmentError, match="not available"):
        book(env, member, officer, start)
    with environment_scope(env):
        assert not Appointment.objects.exists()


def test_database__two_active_appointments_at_one_start__refused(env):
    officer = LoanOfficerFactory(environment=env)
    first = AppointmentFactory(environment=env, officer=officer)
    with pytest.raises(IntegrityError), transaction.atomic():
        AppointmentFactory(environment=env, officer=officer, start=first.start)
    with environment_scope(env):
        Appointment.objects.filter(pk=first.pk).update(status=Appointment.Status.CANCELLED)
    AppointmentFactory(environment=env, officer=officer, start=first.start)  # a cancelled one


# -- moving, cancelling, status -------------------------------------------------------------


def test_reschedule__same_uid_higher_sequence__frees_the_old_time(env, officer):
    member = MemberFactory(environment=env)
    appointment = book(env, member, officer, thursday(env, 10))
    later = thursday(env, 14)
    with environment_scope(env):
        moved = appointment_reschedule(environment=env, appointment=appointment, start=later)
    assert (moved.uid, moved.sequence, moved.start) == (appointment.uid, 1, later)
    update = _deliveries(env, member=member, template_key="appointment_update")[0]
    mimetype, invitation = _invitation(update)
    assert mimetype == "text/calendar; method=REQUEST"
    (event,) = invitation.walk("VEVENT")
    assert (str(event["UID"]), event["SEQUENCE"], event["DTSTART"].dt) == (moved.uid, 1, later)
    assert _deliveries(env, template_key="appointment_officer_update")
    book(env, MemberFactory(environment=env), officer, thursday(env, 10))  # free again


def test_reschedule__into_a_taken_time_or_after_cancelling__refused(env, officer):
    member, other = MemberFactory(environment=env), MemberFactory(environment=env)
    mine = book(env, member, officer, thursday(env, 10))
    book(env, other, officer, thursday(env, 11))
    with environment_scope(env), pytest.raises(AppointmentError, match="was just taken"):
        appointment_reschedule(environment=env, appointment=mine, start=thursday(env, 11))
    with environment_scope(env):
        cancelled = appointment_cancel(environment=env, appointment=mine)
        with pytest.raises(AppointmentError, match="Only an upcoming appointment"):
            appointment_reschedule(environment=env, appointment=cancelled, start=thursday(env, 12))


def test_cancel__sends_method_cancel_with_the_same_uid__and_frees_the_time(env, officer):
    member = MemberFactory(environment=env)
    appointment = book(env, member, officer, thursday(env, 10))
    with environment_scope(env):
        cancelled = appointment_cancel(environment=env, appointment=appointment)
        with pytest.raises(AppointmentError, match="is cancelled, not booked"):
            appointment_cancel(environment=env, appointment=cancelled)
    assert (cancelled.status, cancelled.sequence, cancelled.cancelled_by) == (
        "cancelled",
        1,
        "member",
    )
    for delivery in _deliveries(env, template_key__endswith="cancellation"):
        mimetype, invitation = _invitation(delivery)
        assert mimetype == "text/calendar; method=CANCEL"
        (event,) = invitation.walk("VEVENT")
        assert (str(event["UID"]), event["SEQUENCE"], event["STATUS"]) == (
            appointment.uid,
            1,
            "CANCELLED",
        )
    assert len(_deliveries(env, template_key__endswith="cancellation")) == 2
    book(env, MemberFactory(environment=env), officer, thursday(env, 10))


def test_set_status__completed_or_no_show_once_started__cancelled_refused(env, officer):
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    with environment_scope(env):
        with pytest.raises(AppointmentError, match="has not started yet"):
            appointment_set_status(environment=env, appointment=appointment, status="completed")
        after = appointment.start + dt.timedelta(minutes=40)
        done = appointment_set_status(
            environment=env, appointment=appointment, status="no_show", now=after
        )
        assert done.status == "no_show"
        with pytest.raises(AppointmentError, match="completed or no-show"):
            appointment_set_status(environment=env, appointment=done, status="booked", now=after)
        other = book(env, MemberFactory(environment=env), officer, thursday(env, 11))
        appointment_cancel(environment=env, appointment=other)
        with pytest.raises(AppointmentError, match="cancelled appointment"):
            appointment_set_status(
                environment=env, appointment=other, status="completed", now=after
            )


# -- erasure -------------------------------------------------------------------------------


def test_member_erase__upcoming_cancelled__officer_told_without_naming_the_member(env, officer):
    member = MemberFactory(
        environment=env, first_name="Ada", last_name="Park", email="ada.park@members.test"
    )
    upcoming = book(
        env,
        member,
        officer,
        thursday(env, 10),
        note="Call me on 206-555-0100",
        time_zone="America/Chicago",
    )
    past_start = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(days=7)
    past = AppointmentFactory(
        environment=env,
        officer=officer,
        member=member,
        start=past_start,
        status=Appointment.Status.COMPLETED,
        note="About the divorce",
    )
    with environment_scope(env):
        member_erase(environment=env, member=member, actor_label="test")
        upcoming.refresh_from_db()
        past.refresh_from_db()
        appointment_audit = str(
            list(
                AuditEntry.objects.filter(object_type="homes.Appointment").values_list(
                    "changes", "object_repr", "reason"
                )
            )
        )
    assert (upcoming.status, upcoming.cancelled_by, upcoming.note) == ("cancelled", "erasure", "")
    assert upcoming.member_time_zone == ""
    # The past one stays for the counts: its time, officer and status, nothing of the member.
    assert (past.status, past.officer_id, past.start) == ("completed", officer.pk, past_start)
    assert (past.note, past.member_time_zone) == ("", "")

    (to_officer,) = _deliveries(env, template_key="appointment_officer_cancellation")
    assert to_officer.state == Delivery.State.PENDING  # the officer learns the time is free
    assert to_officer.context["appointment"]["member_name"] == ERASED_MEMBER
    mimetype, invitation = _invitation(to_officer)
    assert mimetype == "text/calendar; method=CANCEL"
    (event,) = invitation.walk("VEVENT")
    assert (str(event["UID"]), event["STATUS"]) == (upcoming.uid, "CANCELLED")
    assert "ATTENDEE" not in event
    told = json.dumps(to_officer.context)
    for personal in ("Ada", "Park", "ada.park", "206-555-0100", "Chicago"):
        assert personal not in told
        assert personal not in appointment_audit
    assert "About the divorce" not in appointment_audit
    # The member, erased, is sent nothing.
    to_member = _deliveries(env, template_key="appointment_cancellation")
    assert [d.state for d in to_member] == [Delivery.State.SUPPRESSED]
    book(env, MemberFactory(environment=env), officer, thursday(env, 10))  # the time is free


def test_book__member_erased_meanwhile__refused_and_nothing_linked_to_them(env, officer):
    member = MemberFactory(environment=env)
    with environment_scope(env):
        member_erase(environment=env, member=Member.objects.get(pk=member.pk))
    # `member` as a session read it before the erasure.
    with pytest.raises(AppointmentError, match="personal data erased") as caught:
        book(env, member, officer, thursday(env, 10), note="Call me on 206-555-0100")
    assert caught.value.code == "erased"
    with environment_scope(env):
        assert not Appointment.objects.filter(member_id=member.pk).exists()


# -- reminders ------------------------------------------------------------------------------


def _reminders(env):
    return [
        (d.campaign_key, d.channel)
        for d in _deliveries(env, template_key="appointment_reminder")
        if d.member_id is not None
    ]


def test_reminders__a_day_and_an_hour_before__once_each__member_only(env, officer):
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    start = appointment.start
    with environment_scope(env):
        assert appointments_remind(environment=env, now=start - dt.timedelta(hours=25)) == {
            "day": 0,
            "hour": 0,
        }
        day = start - dt.timedelta(hours=23, minutes=59)
        assert appointments_remind(environment=env, now=day)["day"] == 1
        assert appointments_remind(environment=env, now=day)["day"] == 0  # once
        hour = start - dt.timedelta(minutes=59)
        assert appointments_remind(environment=env, now=hour) == {"day": 0, "hour": 1}
        assert appointments_remind(environment=env, now=hour)["hour"] == 0
    key = f"appointment:{appointment.pk}:reminder:0"
    assert _reminders(env) == [(f"{key}:day", "email"), (f"{key}:hour", "email")]
    assert not _deliveries(env, member__isnull=True, template_key__contains="reminder")


def test_reminders__moved_appointment__reminded_again_for_its_new_time(env, officer):
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    with environment_scope(env):
        appointments_remind(environment=env, now=appointment.start - dt.timedelta(hours=20))
        moved = appointment_reschedule(
            environment=env, appointment=appointment, start=thursday(env, 15)
        )
        assert moved.reminded_day_at is None
        appointments_remind(environment=env, now=moved.start - dt.timedelta(hours=20))
    assert [key for key, _ in _reminders(env)] == [
        f"appointment:{appointment.pk}:reminder:0:day",
        f"appointment:{appointment.pk}:reminder:1:day",
    ]


def test_reminders__booked_within_a_day__skips_the_day_reminder__settings_can_turn_off(
    env, officer
):
    appointment = book(env, MemberFactory(environment=env), officer, thursday(env, 10))
    with environment_scope(env):
        Appointment.objects.filter(pk=appointment.pk).update(
            changed_at=appointment.start - dt.timedelta(hours=5)
        )
        sent = appointments_remind(environment=env, now=appointment.start - dt.timedelta(hours=2))
        assert sent == {"day": 0, "hour": 0}
        appointment_settings_factory(env, remind_hour_before=False)
        sent = appointments_remind(
            environment=env, now=appointment.start - dt.timedelta(minutes=30)
        )
        assert sent == {"day": 0, "hour": 0}
    assert _reminders(env) == []


# -- the dependency direction ---------------------------------------------------------------


def test_homes__never_imports_notifications():
    root = Path(__file__).resolve().parents[2] / "homes"
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "notifications" or n.startswith("notifications.") for n in names):
                offenders.append(str(path.relative_to(root)))
    assert offenders == []


def test_beat_tick__queues_due_reminders_in_every_environment(tenant, other_tenant):
    from homes.tasks import appointments_tick

    rows = []
    for env in (tenant.production, other_tenant.staging):
        soon = dt.datetime.now(UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=50)
        rows.append(
            AppointmentFactory(environment=env, start=soon, changed_at=soon - dt.timedelta(days=3))
        )
    result = appointments_tick()
    assert result[tenant.production.pk]["hour"] == 1
    assert result[other_tenant.staging.pk]["hour"] == 1
    for row in rows:
        (reminder,) = _deliveries(row.environment, template_key="appointment_reminder")
        assert reminder.campaign_key == f"appointment:{row.pk}:reminder:0:hour"
    assert appointments_tick()[tenant.production.pk]["hour"] == 0
