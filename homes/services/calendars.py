"""Officers' CalDAV calendars: busy time read before slots are offered, and appointments
written, moved and removed after their change has committed.

Reading is time-bounded. When the calendar cannot be read, members are still offered
times (from availability and appointments, and the busy time last read, if any) and told
the officer's calendar could not be checked; the officer shows the error to staff.
A booking never waits for, nor depends on, the calendar server.

Writing is state-based: a task makes the calendar match the appointment as it is now
(PUT under the appointment's own resource name, DELETE once cancelled), so a task run
twice or late changes nothing. Transient failures are retried with backoff, then the
appointment shows "failed" with the error, and staff retry it from the admin.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from homes import caldav_client, ical
from homes.caldav_client import CalendarAccess, CalendarError
from homes.models import Appointment, LoanOfficer
from homes.slots import Period
from institutions.models import AuditEntry
from institutions.services import audit_record

FRESH_SECONDS = 60
LAST_GOOD_SECONDS = 24 * 3600


def _setting(name: str, default):
    return getattr(settings, name, default)


@dataclass(frozen=True)
class Busy:
    """An officer's calendar busy time for a window, and how far it can be trusted."""

    periods: list[Period]
    state: str  # none (no calendar), ok, stale (last good read), unavailable
    error: str = ""

    @property
    def unchecked(self) -> bool:
        return self.state in ("stale", "unavailable")


def _cache_key(officer: LoanOfficer, start: datetime, end: datetime) -> str:
    version = int(officer.updated_at.timestamp()) if officer.updated_at else 0
    return f"homes:busy:{officer.pk}:{version}:{int(start.timestamp())}:{int(end.timestamp())}"


def _last_good_key(officer: LoanOfficer) -> str:
    return f"homes:busy-last:{officer.pk}"


def officer_calendar_record(*, officer: LoanOfficer, error: str | None) -> None:
    """Record the calendar's state on the officer for staff (written only when it changes)."""
    status = LoanOfficer.CalendarStatus.ERROR if error else LoanOfficer.CalendarStatus.OK
    if officer.caldav_status == status and officer.caldav_error == (error or ""):
        return
    now = timezone.now()
    LoanOfficer.objects.filter(pk=officer.pk).update(
        caldav_status=status, caldav_error=error or "", caldav_checked_at=now
    )
    officer.caldav_status, officer.caldav_error, officer.caldav_checked_at = (
        status,
        error or "",
        now,
    )


def officer_busy(
    *, environment, officer: LoanOfficer, start: datetime, end: datetime, fresh: bool = False
) -> Busy:
    """The busy periods of the officer's calendar in [start, end).

    Cached for a minute (slot pages); `fresh` reads the server again (a booking). When the
    server fails, the last good read stands in ("stale") and the officer shows the error.
    """
    if not officer.has_calendar:
        return Busy([], "none")
    key = _cache_key(officer, start, end)
    if not fresh:
        hit = cache.get(key)
        if hit is not None:
            return Busy(hit, "ok")
    access = CalendarAccess.of(officer)
    try:
        periods = caldav_client.busy_periods(access, start, end)
    except CalendarError as exc:
        officer_calendar_record(officer=officer, error=exc.message)
        last = cache.get(_last_good_key(officer))
        if last is not None:
            kept = [(s, e) for s, e in last if s < end and e > start]
            return Busy(kept, "stale", exc.message)
        return Busy([], "unavailable", exc.message)
    officer_calendar_record(officer=officer, error=None)
    cache.set(key, periods, FRESH_SECONDS)
    previous = cache.get(_last_good_key(officer)) or []
    merged = [(s, e) for s, e in previous if e <= start or s >= end] + periods
    cache.set(_last_good_key(officer), sorted(merged), LAST_GOOD_SECONDS)
    return Busy(periods, "ok")


def officer_calendar_check(*, environment, officer: LoanOfficer, actor=None) -> str:
    """Staff check the calendar now: '' when it answers, else the error (also recorded)."""
    if not officer.has_calendar:
        LoanOfficer.objects.filter(pk=officer.pk).update(
            caldav_status=LoanOfficer.CalendarStatus.NONE, caldav_error=""
        )
        return "No CalDAV calendar is set for this officer."
    try:
        caldav_client.check(CalendarAccess.of(officer))
    except CalendarError as exc:
        officer_calendar_record(officer=officer, error=exc.message)
        return exc.message
    officer_calendar_record(officer=officer, error=None)
    return ""


# -- writing appointments -----------------------------------------------------------------


def resource_name(appointment: Appointment) -> str:
    """The appointment's resource in the calendar: the UID's local part, never changing."""
    return appointment.uid.split("@", 1)[0]


#: How officers' messages and calendars name a member whose personal data was erased.
ERASED_MEMBER = "a member (personal data erased)"


def member_label(member) -> str:
    """The member as the officer's messages and calendar name them: nobody once erased."""
    if member.erased_at is not None:
        return ERASED_MEMBER
    return member.full_name or member.email


def event_data(appointment: Appointment) -> ical.EventData:
    """The appointment as an iCalendar event (the officer organizes, the member attends)."""
    officer, member, offer = appointment.officer, appointment.member, appointment.offer
    environment = appointment.environment
    topic = offer.title if offer else "Your home and your options"
    label = member_label(member)
    lines = [
        f"{topic}.",
        f"Member: {label} <{member.email}>" if member.email else f"Member: {label}",
    ]
    if appointment.note:
        lines.append(f"Note from the member: {appointment.note}")
    url = f"{environment.base_url}/appointments/{appointment.pk}/"
    lines.append(f"Manage: {url}")
    return ical.EventData(
        uid=appointment.uid,
        sequence=appointment.sequence,
        start=appointment.start,
        end=appointment.end,
        summary=f"{topic}: {label} with {officer.name}",
        description="\n".join(lines),
        organizer_name=officer.name,
        organizer_email=officer.email,
        attendee_name=member.full_name,
        attendee_email=member.email,
        url=url,
        cancelled=appointment.status == Appointment.Status.CANCELLED,
    )


def _backoff(attempts: int) -> float:
    base = _setting("APPOINTMENTS_CALDAV_RETRY_BASE_SECONDS", 30)
    delay = min(1800, base * 2 ** max(0, attempts - 1))
    return delay + random.uniform(0, delay / 2)  # noqa: S311  (jitter, not a secret)


@dataclass(frozen=True)
class SyncOutcome:
    state: str
    retry_in: float | None = None


SYNC_ROUNDS = 5


def appointment_calendar_sync(*, environment, appointment_id: int) -> SyncOutcome:
    """Make the officer's calendar match the appointment as it is now.

    Another worker may sync a newer state (a cancel, a move) while our write is on the wire,
    and ours may land after theirs. So the result is recorded only if the appointment did
    not change while we wrote; when it did, ours may have overwritten the newer state, and
    the current one is written again, even if the other worker marked it synced meanwhile.
    """
    overwritten = False
    for _ in range(SYNC_ROUNDS):
        appointment = (
            Appointment.objects.select_related("officer", "member", "offer", "environment")
            .filter(environment=environment, pk=appointment_id)
            .first()
        )
        if appointment is None:
            return SyncOutcome("gone")
        officer = appointment.officer
        if not officer.has_calendar:
            Appointment.objects.filter(pk=appointment.pk).update(
                caldav_state=Appointment.CalendarSync.NONE, caldav_next_attempt_at=None
            )
            return SyncOutcome(Appointment.CalendarSync.NONE)
        if appointment.caldav_state == Appointment.CalendarSync.FAILED:
            return SyncOutcome(Appointment.CalendarSync.FAILED)  # staff retry sets it pending
        if (
            not overwritten
            and appointment.caldav_state == Appointment.CalendarSync.SYNCED
            and appointment.caldav_synced_sequence == appointment.sequence
        ):
            return SyncOutcome(Appointment.CalendarSync.SYNCED)
        access = CalendarAccess.of(officer)
        try:
            if appointment.status == Appointment.Status.CANCELLED:
                caldav_client.event_delete(access, resource_name(appointment))
            else:
                ics = ical.calendar_resource(event_data(appointment))
                caldav_client.event_put(access, resource_name(appointment), ics)
        except CalendarError as exc:
            return _sync_failed(appointment, exc)
        officer_calendar_record(officer=officer, error=None)
        # Recorded only if nothing changed while we wrote: not the appointment, and no
        # change, retry or resync asked for a write since (each sets the next attempt).
        done = Appointment.objects.filter(
            pk=appointment.pk,
            sequence=appointment.sequence,
            status=appointment.status,
            caldav_next_attempt_at=appointment.caldav_next_attempt_at,
        ).update(
            caldav_state=Appointment.CalendarSync.SYNCED,
            caldav_synced_sequence=appointment.sequence,
            caldav_synced_at=timezone.now(),
            caldav_error="",
            caldav_attempts=0,
            caldav_next_attempt_at=None,
        )
        if done:
            return SyncOutcome(Appointment.CalendarSync.SYNCED)
        overwritten = True
    # Still changing under us: whatever landed last may be stale. Leave it pending, written
    # again shortly (by this task's retry, else the sweep).
    Appointment.objects.filter(pk=appointment_id).update(
        caldav_state=Appointment.CalendarSync.PENDING,
        caldav_synced_sequence=None,
        caldav_next_attempt_at=timezone.now(),
    )
    return SyncOutcome(Appointment.CalendarSync.PENDING, _backoff(1))


def _sync_failed(appointment: Appointment, exc: CalendarError) -> SyncOutcome:
    attempts = appointment.caldav_attempts + 1
    give_up = exc.permanent or attempts >= _setting("APPOINTMENTS_CALDAV_MAX_ATTEMPTS", 6)
    delay = None if give_up else _backoff(attempts)
    error = exc.message
    if give_up and not exc.permanent:
        error = f"{exc.message} (gave up after {attempts} attempts)"
    Appointment.objects.filter(pk=appointment.pk).update(
        caldav_attempts=attempts,
        caldav_error=error,
        caldav_state=(
            Appointment.CalendarSync.FAILED if give_up else Appointment.CalendarSync.PENDING
        ),
        caldav_next_attempt_at=None if give_up else timezone.now() + timedelta(seconds=delay),
    )
    officer_calendar_record(officer=appointment.officer, error=exc.message)
    state = Appointment.CalendarSync.FAILED if give_up else Appointment.CalendarSync.PENDING
    return SyncOutcome(state, delay)


def appointment_calendar_dispatch(*, environment, appointment_ids, countdown: float = 0) -> None:
    """Queue calendar syncs after the current transaction commits."""
    from homes.tasks import appointment_calendar_sync as task

    for pk in sorted(set(appointment_ids)):
        transaction.on_commit(
            lambda pk=pk: task.apply_async(args=[environment.pk, pk], countdown=countdown or None),
            robust=True,
        )


def appointment_calendar_mark(*, environment, appointment: Appointment) -> None:
    """After a change (inside its transaction): the calendar needs writing, once committed."""
    if not appointment.officer.has_calendar:
        state, when = Appointment.CalendarSync.NONE, None
    else:
        state, when = Appointment.CalendarSync.PENDING, timezone.now()
    Appointment.objects.filter(pk=appointment.pk).update(
        caldav_state=state, caldav_attempts=0, caldav_next_attempt_at=when
    )
    appointment.caldav_state, appointment.caldav_attempts = state, 0
    appointment.caldav_next_attempt_at = when
    if state == Appointment.CalendarSync.PENDING:
        appointment_calendar_dispatch(environment=environment, appointment_ids=[appointment.pk])


def appointments_calendar_retry(*, environment, appointment_ids, actor=None) -> int:
    """Staff retry the calendar sync of these appointments (failed or pending): fresh attempts."""
    with transaction.atomic():
        rows = (
            Appointment.objects.filter(environment=environment, pk__in=list(appointment_ids))
            .exclude(caldav_state=Appointment.CalendarSync.SYNCED)
            .select_related("officer")
        )
        ids = [a.pk for a in rows if a.officer.has_calendar]
        Appointment.objects.filter(pk__in=ids).update(
            caldav_state=Appointment.CalendarSync.PENDING,
            caldav_attempts=0,
            caldav_next_attempt_at=timezone.now(),
        )
        for pk in ids:
            audit_record(
                action=AuditEntry.Action.ACTION,
                actor=actor,
                environment=environment,
                object_type="homes.Appointment",
                object_id=str(pk),
                object_repr=f"appointment {pk}",
                reason="retry calendar sync",
            )
        appointment_calendar_dispatch(environment=environment, appointment_ids=ids)
    return len(ids)


def officer_calendar_vacate(*, environment, officer: LoanOfficer) -> int:
    """Remove the officer's upcoming appointments from their calendar as it is now, before
    it is changed or removed (the new calendar gets them by resync); returns how many.

    Raises CalendarError when the calendar cannot be cleared; it then stays the officer's
    calendar, and the events removed already are queued to be written back to it.
    """
    if not officer.has_calendar:
        return 0
    rows = list(
        Appointment.objects.filter(environment=environment, officer=officer, end__gt=timezone.now())
        .filter(
            Q(status=Appointment.Status.BOOKED)
            | (
                Q(status=Appointment.Status.CANCELLED)
                & ~Q(caldav_state=Appointment.CalendarSync.SYNCED)
            )
        )
        .exclude(caldav_state=Appointment.CalendarSync.NONE)
        .order_by("pk")
    )
    access = CalendarAccess.of(officer)
    removed: list[int] = []
    try:
        for row in rows:
            caldav_client.event_delete(access, resource_name(row))
            if row.status == Appointment.Status.BOOKED:
                removed.append(row.pk)
    except CalendarError as exc:
        officer_calendar_record(officer=officer, error=exc.message)
        if removed:
            Appointment.objects.filter(pk__in=removed).update(
                caldav_state=Appointment.CalendarSync.PENDING,
                caldav_attempts=0,
                caldav_synced_sequence=None,
                caldav_next_attempt_at=timezone.now(),
            )
            appointment_calendar_dispatch(environment=environment, appointment_ids=removed)
        raise
    return len(rows)


def officer_appointments_resync(*, environment, officer: LoanOfficer) -> int:
    """The officer's calendar changed: write their upcoming appointments to it again."""
    rows = Appointment.objects.filter(
        environment=environment,
        officer=officer,
        status=Appointment.Status.BOOKED,
        end__gt=timezone.now(),
    )
    if not officer.has_calendar:
        rows.update(caldav_state=Appointment.CalendarSync.NONE, caldav_next_attempt_at=None)
        return 0
    ids = list(rows.values_list("pk", flat=True))
    rows.update(
        caldav_state=Appointment.CalendarSync.PENDING,
        caldav_attempts=0,
        caldav_synced_sequence=None,
        caldav_next_attempt_at=timezone.now(),
    )
    appointment_calendar_dispatch(environment=environment, appointment_ids=ids)
    return len(ids)


def appointments_calendar_sweep(*, environment, now: datetime | None = None) -> int:
    """Re-queue pending syncs whose task never ran (a broker restart, a lost message)."""
    now = now or timezone.now()
    grace = timedelta(seconds=_setting("APPOINTMENTS_CALDAV_REDISPATCH_SECONDS", 300))
    ids = list(
        Appointment.objects.filter(
            environment=environment,
            caldav_state=Appointment.CalendarSync.PENDING,
            caldav_next_attempt_at__lt=now - grace,
        ).values_list("pk", flat=True)[:500]
    )
    if ids:
        Appointment.objects.filter(pk__in=ids).update(caldav_next_attempt_at=now)
        appointment_calendar_dispatch(environment=environment, appointment_ids=ids)
    return len(ids)
