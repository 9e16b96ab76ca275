"""Reads about appointments, always scoped: settings, bookable officers, free slots, a
member's appointments and the staff week calendar."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from homes.models import (
    Appointment,
    AppointmentSettings,
    LoanOfficer,
    OfferProduct,
    OfficerAvailability,
)
from homes.slots import Period, Window, candidate_slots, free_slots
from institutions import page_cache


def appointment_settings(environment) -> AppointmentSettings:
    """The environment's settings, or the defaults (unsaved) when none were saved yet."""
    return AppointmentSettings.objects.filter(
        environment=environment
    ).first() or AppointmentSettings(environment=environment)


def bookable_officers(environment, offer: OfferProduct | None = None) -> list[LoanOfficer]:
    """Active officers with weekly availability; with an offer, those who handle it."""
    officers = (
        LoanOfficer.objects.filter(environment=environment, is_active=True)
        .annotate(windows=Count("availability"))
        .filter(windows__gt=0)
        .prefetch_related("offers")
        .order_by("name", "pk")
    )
    return [o for o in officers if officer_handles(o, offer)]


def officer_handles(officer: LoanOfficer, offer: OfferProduct | None) -> bool:
    """Whether the officer talks about this offer (an officer listing none handles all)."""
    if offer is None:
        return True
    handled = {p.pk for p in officer.offers.all()}
    return not handled or offer.pk in handled


def officer_windows(officer: LoanOfficer) -> list[Window]:
    return [
        Window(weekday, start, end)
        for weekday, start, end in OfficerAvailability.objects.filter(
            environment_id=officer.environment_id, officer=officer
        ).values_list("weekday", "start_time", "end_time")
    ]


@dataclass(frozen=True)
class BookingRange:
    """When an officer can be booked: local days first..last, starting no earlier than this."""

    first_day: date
    last_day: date
    earliest: datetime

    def start(self, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=tz)

    def end(self, tz: ZoneInfo) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=tz)


def booking_range(officer: LoanOfficer, settings: AppointmentSettings, now: datetime):
    tz = officer.environment.institution.tz
    today = now.astimezone(tz).date()
    return BookingRange(
        first_day=today,
        last_day=today + timedelta(days=officer.days_ahead),
        earliest=now + timedelta(minutes=settings.min_notice_minutes),
    )


def officer_appointment_periods(
    officer: LoanOfficer, start: datetime, end: datetime, *, exclude_id: int | None = None
) -> list[Period]:
    """The officer's active appointments overlapping [start, end)."""
    rows = Appointment.objects.filter(
        environment_id=officer.environment_id,
        officer=officer,
        start__lt=end,
        end__gt=start,
    ).exclude(status=Appointment.Status.CANCELLED)
    if exclude_id is not None:
        rows = rows.exclude(pk=exclude_id)
    return list(rows.values_list("start", "end"))


def officer_free_slots(
    officer: LoanOfficer,
    *,
    settings: AppointmentSettings,
    now: datetime,
    calendar_busy: list[Period] = (),
    exclude_id: int | None = None,
    windows: list[Window] | None = None,
) -> list[datetime]:
    """Free slot starts (UTC): weekly availability in the institution's time zone, minus
    appointments and the calendar's busy time (each with the officer's buffer)."""
    tz = officer.environment.institution.tz
    bounds = booking_range(officer, settings, now)
    length = timedelta(minutes=officer.slot_minutes)
    candidates = candidate_slots(
        windows=windows if windows is not None else officer_windows(officer),
        tz=tz,
        first_day=bounds.first_day,
        last_day=bounds.last_day,
        length=length,
    )
    buffer = timedelta(minutes=officer.buffer_minutes)
    busy = officer_appointment_periods(
        officer, bounds.start(tz) - buffer, bounds.end(tz) + buffer, exclude_id=exclude_id
    )
    return free_slots(
        candidates,
        length=length,
        busy=[*busy, *calendar_busy],
        buffer=buffer,
        earliest=bounds.earliest,
    )


@dataclass
class SlotDay:
    day: date
    slots: list[datetime] = field(default_factory=list)


def slots_by_day(slots: list[datetime], tz: ZoneInfo, first: date, days: int = 7):
    """The slots of `days` days from `first` (dates in the member's time zone), by day,
    and whether any slot comes before or after that page."""
    last = first + timedelta(days=days - 1)
    grouped: dict[date, list[datetime]] = defaultdict(list)
    before = after = False
    for slot in slots:
        local = slot.astimezone(tz).date()
        if local < first:
            before = True
        elif local > last:
            after = True
        else:
            grouped[local].append(slot)
    page = [SlotDay(d, grouped[d]) for d in sorted(grouped)]
    return page, before, after


def member_appointments(environment, member) -> tuple[list[Appointment], list[Appointment]]:
    """(upcoming booked, the rest most recent first) of one member."""
    rows = list(
        Appointment.objects.filter(environment=environment, member=member)
        .select_related("officer", "offer")
        .order_by("start", "pk")
    )
    now = timezone.now()
    upcoming = [a for a in rows if a.status == Appointment.Status.BOOKED and a.end > now]
    others = [a for a in reversed(rows) if a not in upcoming]
    return upcoming, others


def offer_can_book(environment, product: OfferProduct) -> bool:
    """Whether the offer page offers a conversation with a loan officer."""
    if not product.book_appointment or not appointment_settings(environment).enabled:
        return False
    return bool(bookable_officers(environment, product))


BOOKABLE_CACHE_SECONDS = 300


def bookable_cache_key(environment_id: int) -> str:
    return f"homes:appointments:bookable:{environment_id}"


def appointments_bookable_forget(environment_id: int) -> None:
    """Drop the cached answer once the transaction commits (homes.signals calls it for saved
    rows; bulk writes call it themselves)."""
    key = bookable_cache_key(environment_id)
    transaction.on_commit(lambda: page_cache.delete(key))


def appointments_bookable(environment) -> bool:
    """Whether members can book: booking is enabled and an active officer has posted
    availability. Cached per environment (every dashboard asks); a saved change to the
    settings, an officer or an availability drops it (homes.signals)."""
    key = bookable_cache_key(environment.pk)
    bookable = page_cache.get(environment.pk, key)
    if bookable is None:
        bookable = (
            appointment_settings(environment).enabled
            and LoanOfficer.objects.filter(
                environment=environment, is_active=True, availability__isnull=False
            ).exists()
        )
        page_cache.store(environment.pk, key, bookable, BOOKABLE_CACHE_SECONDS)
    return bookable


_A = Appointment._meta.db_table
# Most members have no appointment: a plain look first (composing the full query with its
# officer and offer costs more than the rest of the dashboard's reads).
_ANY_UPCOMING_SQL = (
    f"SELECT 1 FROM {_A} WHERE environment_id = %s AND member_id = %s "  # noqa: S608
    "AND status = %s AND {end} > %s LIMIT 1"
)


def dashboard_appointments(environment, member, *, any_upcoming: bool | None = None) -> dict | None:
    """The dashboard's card: the member's next appointments, and whether one can be booked
    (one query for most members, two with upcoming appointments; none for most when the
    caller already knows whether there are any: homes.selectors.SignedIn)."""
    now = timezone.now()
    if any_upcoming is None:
        with connection.cursor() as cursor:
            cursor.execute(
                _ANY_UPCOMING_SQL.format(end=connection.ops.quote_name("end")),
                [environment.pk, member.pk, Appointment.Status.BOOKED, now],
            )
            any_upcoming = cursor.fetchone() is not None
    upcoming = []
    if any_upcoming:
        upcoming = list(
            Appointment.objects.filter(
                environment=environment,
                member=member,
                status=Appointment.Status.BOOKED,
                end__gt=now,
            )
            .select_related("officer", "offer")
            .order_by("start")[:3]
        )
    can_book = appointments_bookable(environment)
    if not upcoming and not can_book:
        return None
    return {"upcoming": upcoming, "can_book": can_book}


@dataclass
class WeekCalendar:
    """Staff week grid: one row per hour (institution time), one column per day."""

    start: date
    days: list[date]
    hours: list[int]
    rows: list[tuple[int, list[list[Appointment]]]]
    officers: list[LoanOfficer]
    officer: LoanOfficer | None
    tz: ZoneInfo
    total: int


def week_calendar(environment, *, week: date, officer: LoanOfficer | None = None) -> WeekCalendar:
    """The officers' appointments of the week starting on `week` (a Monday)."""
    tz = environment.institution.tz
    days = [week + timedelta(days=i) for i in range(7)]
    start = datetime.combine(days[0], time.min, tzinfo=tz)
    end = datetime.combine(days[-1] + timedelta(days=1), time.min, tzinfo=tz)
    rows = Appointment.objects.filter(environment=environment, start__lt=end, end__gt=start)
    if officer is not None:
        rows = rows.filter(officer=officer)
    appointments = list(rows.select_related("officer", "member", "offer").order_by("start", "pk"))
    windows = OfficerAvailability.objects.filter(environment=environment)
    if officer is not None:
        windows = windows.filter(officer=officer)
    hours = {h for s, e in windows.values_list("start_time", "end_time") for h in _hours(s, e)}
    cells: dict[tuple[int, date], list[Appointment]] = defaultdict(list)
    for appointment in appointments:
        local = appointment.start.astimezone(tz)
        hours.add(local.hour)
        cells[(local.hour, local.date())].append(appointment)
    hour_list = sorted(hours) or list(range(9, 17))
    grid = [(h, [cells.get((h, d), []) for d in days]) for h in hour_list]
    return WeekCalendar(
        start=week,
        days=days,
        hours=hour_list,
        rows=grid,
        officers=list(LoanOfficer.objects.filter(environment=environment).order_by("name")),
        officer=officer,
        tz=tz,
        total=len(appointments),
    )


def _hours(start: time, end: time) -> range:
    last = end.hour if end.minute == 0 and end.hour > start.hour else end.hour + 1
    return range(start.hour, min(last, 24))
