"""Loan officers, their weekly availability and the environment's appointment settings:
validated, audited writes. A changed calendar gets the officer's upcoming appointments,
removed from the previous one first."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import time
from itertools import pairwise

from django.core.exceptions import ValidationError
from django.db import transaction

from homes.appointment_selectors import appointments_bookable_forget
from homes.caldav_client import CalendarError
from homes.models import AppointmentSettings, LoanOfficer, OfferProduct, OfficerAvailability
from homes.models.appointments import Weekday
from homes.services.calendars import officer_appointments_resync, officer_calendar_vacate
from institutions.models import AuditEntry
from institutions.services import audit_record, audited_save, tenant_full_clean

CALENDAR_FIELDS = ("caldav_url", "caldav_username", "caldav_password")


class PreviousCalendarError(ValidationError):
    """The officer's calendar was not changed: the previous one could not be cleared."""


def _collection(url: str) -> str:
    return url.strip().rstrip("/")


def loan_officer_save(
    *,
    environment,
    officer: LoanOfficer,
    offers: Iterable[OfferProduct] | None = None,
    actor=None,
    actor_label: str = "",
    previous_events: str = "remove",
) -> LoanOfficer:
    """Create or change an officer (validated, audited with the credentials redacted).

    When the officer's calendar moves elsewhere or is removed, their upcoming appointments
    are first removed from the previous calendar (`previous_events="keep"` leaves them
    there, for a calendar that cannot be reached any more), then written to the new one.
    If the previous calendar cannot be cleared, nothing is saved: PreviousCalendarError.
    """
    if officer.pk is not None and officer.environment_id not in (None, environment.pk):
        raise ValueError("The officer belongs to another environment.")
    if previous_events not in ("remove", "keep"):
        raise ValueError(f"previous_events is 'remove' or 'keep', not {previous_events!r}.")
    previous = (
        LoanOfficer._base_manager.filter(pk=officer.pk, environment=environment).first()
        if officer.pk
        else None
    )
    calendar_changed = any(
        getattr(officer, name) != (getattr(previous, name) if previous else "")
        for name in CALENDAR_FIELDS
    )
    # Same collection with other credentials: the resync rewrites the events in place.
    moved_away = (
        previous is not None
        and previous.has_calendar
        and _collection(officer.caldav_url) != _collection(previous.caldav_url)
    )
    offers = list(offers) if offers is not None else None
    if offers and any(p.environment_id != environment.pk for p in offers):
        raise ValidationError({"offers": "These offers belong to another environment."})
    officer.environment = environment
    reason = ""
    if moved_away and previous_events == "keep":
        reason = "calendar changed; upcoming appointments left in the previous calendar"
    elif moved_away:
        tenant_full_clean(officer)  # a change that would be refused removes nothing
        try:
            count = officer_calendar_vacate(environment=environment, officer=previous)
        except CalendarError as exc:
            raise PreviousCalendarError(
                {
                    "caldav_url": f"The calendar was not changed: {officer.name}'s upcoming "
                    f"appointments could not be removed from the previous calendar "
                    f"({exc.message}). Try again when it answers, or choose to leave them "
                    "there."
                }
            ) from exc
        reason = f"calendar changed; {count} upcoming appointments removed from the previous one"
    if calendar_changed:
        officer.caldav_status = (
            LoanOfficer.CalendarStatus.UNCHECKED
            if officer.caldav_url
            else LoanOfficer.CalendarStatus.NONE
        )
        officer.caldav_error = ""
        officer.caldav_checked_at = None
    with transaction.atomic():
        audited_save(
            officer,
            actor=actor,
            actor_label=actor_label,
            environment=environment,
            reason=reason,
            related={"offers": offers} if offers is not None else None,
        )
        if calendar_changed and previous is not None:
            officer_appointments_resync(environment=environment, officer=officer)
    return officer


def _overlaps(rows: list[tuple[int, time, time]]) -> str:
    ordered = sorted(rows)
    for (day_a, start_a, end_a), (day_b, start_b, end_b) in pairwise(ordered):
        if day_a == day_b and start_b < end_a:
            return (
                f"{Weekday(day_a).label} {start_a:%H:%M}-{end_a:%H:%M} overlaps "
                f"{start_b:%H:%M}-{end_b:%H:%M}."
            )
    return ""


def officer_availability_set(
    *, environment, officer: LoanOfficer, windows: Iterable[tuple[int, time, time]], actor=None
) -> list[OfficerAvailability]:
    """Replace the officer's weekly availability (institution time) with these windows."""
    if officer.environment_id != environment.pk:
        raise ValueError("The officer belongs to another environment.")
    rows = [(int(d), s, e) for d, s, e in windows]
    for day, start, end in rows:
        if day not in Weekday.values:
            raise ValidationError({"weekday": f"Unknown weekday {day}."})
        if start >= end:
            raise ValidationError(
                {"end_time": f"{Weekday(day).label}: ends ({end:%H:%M}) before it starts "
                f"({start:%H:%M})."}
            )  # fmt: skip
    problem = _overlaps(rows)
    if problem:
        raise ValidationError({"start_time": problem})
    existing = OfficerAvailability.objects.filter(environment=environment, officer=officer)
    before = [str(a) for a in existing.order_by("weekday", "start_time")]
    with transaction.atomic():
        existing.delete()
        created = OfficerAvailability.objects.bulk_create(
            [
                OfficerAvailability(
                    environment=environment, officer=officer, weekday=d, start_time=s, end_time=e
                )
                for d, s, e in sorted(rows)
            ]
        )
        appointments_bookable_forget(environment.pk)  # bulk_create sends no signal
        after = [str(a) for a in created]
        if before != after:
            audit_record(
                action=AuditEntry.Action.UPDATE,
                actor=actor,
                environment=environment,
                obj=officer,
                changes={"availability": {"before": before, "after": after}},
            )
    return created


def appointment_settings_save(
    *, environment, settings: AppointmentSettings, actor=None, actor_label: str = ""
) -> AppointmentSettings:
    """Change how members book (one row per environment; promoted by release)."""
    if settings.pk is not None and settings.environment_id != environment.pk:
        raise ValueError("The settings belong to another environment.")
    settings.environment = environment
    return audited_save(
        settings,
        actor=actor,
        actor_label=actor_label,
        environment=environment,
    )
