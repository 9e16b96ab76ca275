"""Conversations with loan officers: book, move, cancel, mark completed or no-show, remind.

Each change commits together with its messages (the outbox, through homes.messaging) and
marks the officer's calendar for writing after the commit (homes.services.calendars): a
failing calendar server never loses or doubles a booking.

Two members can never hold the same time: bookings of one officer are serialized by a lock
on the officer's row, checked against every active appointment (with the buffer), and a
unique constraint on (officer, start) of active appointments backs the check up. A member
never holds two times at once: the member's row is locked next (always officer, then
member), and their active appointments are checked under it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import dateformat, timezone

from homes import ical, messaging
from homes.appointment_selectors import (
    appointment_settings,
    booking_range,
    officer_appointment_periods,
    officer_handles,
    officer_windows,
)
from homes.models import Appointment, LoanOfficer, Member, OfferProduct
from homes.services.calendars import (
    appointment_calendar_mark,
    event_data,
    member_label,
    officer_busy,
)
from homes.slots import candidate_slots, overlaps, subtract
from institutions.models import AuditEntry
from institutions.services import audit_record, model_snapshot

NOTE_MAX = 1000


class AppointmentError(Exception):
    """A booking or change refused, with a message for the member (or staff) and a code."""

    def __init__(self, message: str, *, code: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


def zone(name: str | None) -> ZoneInfo | None:
    """A time zone by IANA name, or None when the name is not one."""
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def when(moment: datetime, tz: ZoneInfo, *, year: bool = False) -> str:
    """'Thursday, November 26 at 10:30 AM PST' in the reader's time zone."""
    local = moment.astimezone(tz)
    day = dateformat.format(local, "l, F j, Y" if year else "l, F j")
    return f"{day} at {dateformat.format(local, 'g:i A')} {local.tzname()}"


# -- checks -------------------------------------------------------------------------------


def _check_officer(environment, officer: LoanOfficer, offer: OfferProduct | None) -> None:
    if officer.environment_id != environment.pk or not officer.is_active:
        raise AppointmentError(
            "This loan officer is not taking appointments.", code="officer", field="officer"
        )
    if offer is not None and (
        offer.environment_id != environment.pk or not officer_handles(officer, offer)
    ):
        raise AppointmentError(
            f"{officer.name} does not handle {offer.title}; choose another loan officer.",
            code="offer",
            field="officer",
        )


def _check_time(environment, officer, start: datetime, now: datetime, tz: ZoneInfo, settings):
    """The time must lie ahead, with notice, within the officer's bookable days, on their grid."""
    shown = when(start, tz)
    if start <= now:
        raise AppointmentError(f"{shown} has already passed.", code="past", field="start")
    bounds = booking_range(officer, settings, now)
    if start < bounds.earliest:
        hours = settings.min_notice_minutes / 60
        notice = f"{hours:g} hours" if hours != 1 else "an hour"
        raise AppointmentError(
            f"{shown} is too soon: please choose a time at least {notice} from now.",
            code="notice",
            field="start",
        )
    institution_tz = environment.institution.tz
    local_day = start.astimezone(institution_tz).date()
    if local_day > bounds.last_day:
        raise AppointmentError(
            f"{officer.name} can be booked up to {officer.days_ahead} days ahead; "
            f"{shown} is further out.",
            code="too_far",
            field="start",
        )
    grid = candidate_slots(
        windows=officer_windows(officer),
        tz=institution_tz,
        first_day=local_day,
        last_day=local_day,
        length=timedelta(minutes=officer.slot_minutes),
    )
    if start not in grid:
        raise AppointmentError(
            f"{shown} is not one of {officer.name}'s appointment times.",
            code="outside",
            field="start",
        )


def _taken(tz: ZoneInfo, start: datetime) -> AppointmentError:
    return AppointmentError(
        f"{when(start, tz)} was just taken. Please pick another time.", code="taken", field="start"
    )


def _check_free(officer, start, end, *, calendar, tz, exclude: Appointment | None = None):
    """Under the officer's lock: no appointment, no calendar busy time, within the buffer."""
    buffer = timedelta(minutes=officer.buffer_minutes)
    exclude_id = exclude.pk if exclude is not None else None
    booked = officer_appointment_periods(
        officer, start - buffer, end + buffer, exclude_id=exclude_id
    )
    busy = list(calendar)
    if exclude is not None:  # the event being moved is busy only because of itself
        busy = subtract(busy, (exclude.start, exclude.end))
    if any(overlaps(start, end, period, buffer) for period in [*booked, *busy]):
        raise _taken(tz, start)


def _lock_member(environment, member) -> Member | None:
    """Serialize the member's bookings: the officer's lock alone lets one member book two
    officers at once. Always taken after the officer's lock (one order: no deadlock).
    Returns the member's row as it is under the lock."""
    return Member.objects.select_for_update().filter(environment=environment, pk=member.pk).first()


def _check_member_free(environment, member, start, end, tz, exclude_id=None) -> None:
    clash = Appointment.objects.filter(
        environment=environment,
        member=member,
        status=Appointment.Status.BOOKED,
        start__lt=end,
        end__gt=start,
    )
    if exclude_id is not None:
        clash = clash.exclude(pk=exclude_id)
    other = clash.select_related("officer").first()
    if other is not None:
        raise AppointmentError(
            f"You already have an appointment with {other.officer.name} {when(other.start, tz)}.",
            code="member_busy",
            field="start",
        )


def _calendar_busy(environment, officer, start, end):
    window = timedelta(hours=12)
    return officer_busy(
        environment=environment, officer=officer, start=start - window, end=end + window, fresh=True
    ).periods


# Posted times are checked against these first: a start near datetime's limits (year 1,
# year 9999) cannot be shown in every time zone, nor have days added to it.
EARLIEST_START = datetime(2, 1, 1, tzinfo=UTC)
LATEST_START = datetime(9998, 1, 1, tzinfo=UTC)


def _utc(start: datetime) -> datetime:
    invalid = AppointmentError("That time is not valid.", code="invalid", field="start")
    if timezone.is_naive(start):
        raise invalid
    try:
        start = start.astimezone(UTC)
    except OverflowError:  # an offset that moves it past year 1 or 9999
        raise invalid from None
    if not EARLIEST_START <= start <= LATEST_START:
        raise invalid
    return start


# -- messages -----------------------------------------------------------------------------


def _admin_url(appointment: Appointment) -> str:
    port = f":{django_settings.PUBLIC_PORT}" if django_settings.PUBLIC_PORT else ""
    path = reverse(
        "admin:homes_appointment_change",
        args=[appointment.pk],
        urlconf=django_settings.ROOT_URLCONF,  # member requests resolve the tenant urlconf
    )
    return f"{django_settings.PUBLIC_SCHEME}://{django_settings.BASE_DOMAIN}{port}{path}"


def _notify(environment, appointment: Appointment, kind: str, reminder: str = "") -> None:
    """Write the member's (and the officer's) message for this change to the outbox."""
    officer, member, offer = appointment.officer, appointment.member, appointment.offer
    member_tz = zone(appointment.member_time_zone) or environment.institution.tz
    office_tz = environment.institution.tz
    path = f"/appointments/{appointment.pk}/"
    title = f"Conversation about {offer.title}" if offer else "Conversation with a loan officer"
    common = {
        "appointment_id": appointment.pk,
        "sequence": appointment.sequence,
        "reminder": reminder,
        "title": title,
        "officer": officer.name,
        "officer_email": officer.email,
        "officer_nmls_id": officer.nmls_id,
        "offer": offer.title if offer else "",
        "note": appointment.note,
        "minutes": officer.slot_minutes,
        "path": path,
        "url": f"{environment.base_url}{path}",
    }
    member_context = {
        **common,
        "when": when(appointment.start, member_tz, year=True),
        "time_zone": str(member_tz),
    }
    officer_context = {
        **common,
        "when": when(appointment.start, office_tz, year=True),
        "time_zone": str(office_tz),
        "member_name": member_label(member),
        "member_email": member.email,
        "admin_url": _admin_url(appointment),
    }
    invitation = method = ""
    if kind != "reminder":
        method = ical.CANCEL if kind == "cancellation" else ical.REQUEST
        invitation = ical.invitation(event_data(appointment), method=method)
    messaging.send(
        messaging.AppointmentMessage(
            environment=environment,
            appointment_id=appointment.pk,
            kind=kind,
            sequence=appointment.sequence,
            member=member,
            member_context=member_context,
            officer_email="" if kind == "reminder" else officer.email,
            officer_name=officer.name,
            officer_context=officer_context,
            invitation=invitation,
            method=method,
            reminder=reminder,
        )
    )


def _audit(environment, appointment, *, before, actor=None, actor_label="", reason=""):
    audit_record(
        action=AuditEntry.Action.UPDATE if before else AuditEntry.Action.CREATE,
        actor=actor,
        actor_label=actor_label,
        environment=environment,
        obj=appointment,
        before=before,
        after=model_snapshot(appointment),
        reason=reason,
    )


# -- member actions -----------------------------------------------------------------------


def appointment_book(
    *,
    environment,
    member: Member,
    officer: LoanOfficer,
    start: datetime,
    offer: OfferProduct | None = None,
    note: str = "",
    time_zone: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Book a free slot of the officer for the member (from an offer or the dashboard)."""
    now = now or timezone.now()
    settings = appointment_settings(environment)
    if not settings.enabled:
        raise AppointmentError("Booking is not available right now.", code="disabled")
    tz = zone(time_zone) or environment.institution.tz
    # Browsers send a line break as CR LF but count it as one character against maxlength.
    note = (note or "").replace("\r\n", "\n").strip()
    if len(note) > NOTE_MAX:
        raise AppointmentError(
            f"Please keep the note under {NOTE_MAX} characters (it has {len(note)}).",
            code="note",
            field="note",
        )
    if member.environment_id != environment.pk:
        raise ValueError("The member belongs to another environment.")
    start = _utc(start)
    _check_officer(environment, officer, offer)
    _check_time(environment, officer, start, now, tz, settings)
    end = start + timedelta(minutes=officer.slot_minutes)
    calendar = _calendar_busy(environment, officer, start, end)
    with transaction.atomic():
        officer = LoanOfficer.objects.select_for_update().get(pk=officer.pk)
        locked = _lock_member(environment, member)
        if locked is None or locked.erased_at is not None:
            # Erased meanwhile, or before (a session or sign-in link of theirs that outlived
            # the erasure): nothing new is linked to the tombstone.
            raise AppointmentError(
                "This account was closed and its personal data erased: "
                "it cannot book appointments.",
                code="erased",
            )
        _check_free(officer, start, end, calendar=calendar, tz=tz)
        _check_member_free(environment, member, start, end, tz)
        appointment = Appointment(
            environment=environment,
            officer=officer,
            member=member,
            offer=offer,
            start=start,
            end=end,
            member_time_zone=str(tz),
            note=note,
            uid=f"{uuid.uuid4().hex}@{environment.host}",
            booked_at=now,
            changed_at=now,
        )
        try:
            with transaction.atomic():
                appointment.save()
        except IntegrityError as exc:  # a booking that slipped past the lock (constraint)
            raise _taken(tz, start) from exc
        _audit(environment, appointment, before=None, actor_label=f"member {member.pk}")
        _notify(environment, appointment, "confirmation")
        appointment_calendar_mark(environment=environment, appointment=appointment)
    return appointment


def appointment_reschedule(
    *,
    environment,
    appointment: Appointment,
    start: datetime,
    actor=None,
    actor_label: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Move a booked appointment to another free slot of the same officer (same UID,
    SEQUENCE raised: calendars replace the event)."""
    now = now or timezone.now()
    settings = appointment_settings(environment)
    tz = zone(appointment.member_time_zone) or environment.institution.tz
    if appointment.environment_id != environment.pk:
        raise ValueError("The appointment belongs to another environment.")
    if appointment.status != Appointment.Status.BOOKED or appointment.start <= now:
        raise AppointmentError(
            "Only an upcoming appointment can be moved.", code="not_movable", field="start"
        )
    start = _utc(start)
    if start == appointment.start:
        raise AppointmentError(
            f"Your appointment is already {when(start, tz)}.", code="same", field="start"
        )
    officer = appointment.officer
    _check_officer(environment, officer, None)
    _check_time(environment, officer, start, now, tz, settings)
    end = start + timedelta(minutes=officer.slot_minutes)
    calendar = _calendar_busy(environment, officer, start, end)
    with transaction.atomic():
        officer = LoanOfficer.objects.select_for_update().get(pk=officer.pk)
        _lock_member(environment, appointment.member)
        current = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if current.status != Appointment.Status.BOOKED or current.sequence != appointment.sequence:
            raise AppointmentError(
                "This appointment changed meanwhile; please look at it again.",
                code="changed",
            )
        _check_free(officer, start, end, calendar=calendar, tz=tz, exclude=current)
        _check_member_free(environment, current.member, start, end, tz, exclude_id=current.pk)
        before = model_snapshot(current)
        current.start, current.end = start, end
        current.sequence += 1
        current.changed_at = now
        current.reminded_day_at = current.reminded_hour_at = None
        try:
            with transaction.atomic():
                current.save()
        except IntegrityError as exc:
            raise _taken(tz, start) from exc
        _audit(environment, current, before=before, actor=actor, actor_label=actor_label)
        _notify(environment, current, "update")
        appointment_calendar_mark(environment=environment, appointment=current)
    return current


def appointment_cancel(
    *,
    environment,
    appointment: Appointment,
    by: str = "member",
    actor=None,
    actor_label: str = "",
    now: datetime | None = None,
) -> Appointment:
    """Cancel a booked appointment: METHOD:CANCEL to both, the calendar event removed."""
    now = now or timezone.now()
    if appointment.environment_id != environment.pk:
        raise ValueError("The appointment belongs to another environment.")
    with transaction.atomic():
        current = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if current.status != Appointment.Status.BOOKED:
            raise AppointmentError(
                f"This appointment is {current.get_status_display().lower()}, not booked.",
                code="not_booked",
            )
        if by == "member" and current.start <= now:
            raise AppointmentError(
                "This appointment has already started; please call us instead.",
                code="started",
            )
        before = model_snapshot(current)
        current.status = Appointment.Status.CANCELLED
        current.sequence += 1
        current.cancelled_at = now
        current.cancelled_by = by
        current.save()
        _audit(environment, current, before=before, actor=actor, actor_label=actor_label)
        _notify(environment, current, "cancellation")
        appointment_calendar_mark(environment=environment, appointment=current)
    return current


# -- staff and beat -----------------------------------------------------------------------

STAFF_STATUSES = (Appointment.Status.COMPLETED, Appointment.Status.NO_SHOW)


def appointment_set_status(
    *, environment, appointment: Appointment, status: str, actor=None, now: datetime | None = None
) -> Appointment:
    """The officer records how it went: completed or no-show (once the meeting started)."""
    now = now or timezone.now()
    if status not in STAFF_STATUSES:
        raise AppointmentError(
            f"Staff set an appointment completed or no-show, not {status!r}.", code="status"
        )
    with transaction.atomic():
        current = Appointment.objects.select_for_update().get(
            environment=environment, pk=appointment.pk
        )
        if current.status == Appointment.Status.CANCELLED:
            raise AppointmentError("A cancelled appointment cannot be " + status, code="status")
        if current.start > now:
            raise AppointmentError(
                f"The appointment of {current.start:%Y-%m-%d %H:%M} UTC has not started yet.",
                code="status",
            )
        if current.status == status:
            return current
        before = model_snapshot(current)
        current.status = status
        current.save(update_fields=["status"])
        _audit(environment, current, before=before, actor=actor)
    return current


def appointments_remind(*, environment, now: datetime | None = None) -> dict[str, int]:
    """Queue the reminders now due: a day before and an hour before, once each (a moved
    appointment is reminded again; one booked later than a reminder's time skips it)."""
    now = now or timezone.now()
    settings = appointment_settings(environment)
    sent = {"day": 0, "hour": 0}
    plan = (
        ("day", "reminded_day_at", timedelta(hours=24), settings.remind_day_before),
        ("hour", "reminded_hour_at", timedelta(hours=1), settings.remind_hour_before),
    )
    for label, mark, lead, enabled in plan:
        if not enabled:
            continue
        due = Appointment.objects.filter(
            environment=environment,
            status=Appointment.Status.BOOKED,
            start__gt=now,
            start__lte=now + lead,
            changed_at__lte=F("start") - lead,
            **{f"{mark}__isnull": True},
        )
        if label == "day":  # the hour reminder is next: never both at once
            due = due.filter(start__gt=now + timedelta(hours=1))
        for appointment in due.select_related("officer", "member", "offer").order_by("start")[:500]:
            with transaction.atomic():
                claimed = Appointment.objects.filter(
                    pk=appointment.pk,
                    status=Appointment.Status.BOOKED,
                    sequence=appointment.sequence,
                    **{f"{mark}__isnull": True},
                ).update(**{mark: now})
                if claimed:
                    _notify(environment, appointment, "reminder", reminder=label)
                    sent[label] += 1
    return sent
