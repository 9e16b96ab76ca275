"""Times and shortcuts for the appointment tests."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from homes.services import appointment_book
from institutions.tenancy import environment_scope


def next_weekday(
    tz: str | ZoneInfo, weekday: int, at: dt.time, *, min_days: int = 2
) -> dt.datetime:
    """The next `weekday` (0 = Monday) at least `min_days` ahead, at `at` local time, in UTC."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    day = dt.datetime.now(zone).date() + dt.timedelta(days=min_days)
    while day.weekday() != weekday:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)


def thursday(environment, hour: int, minute: int = 0) -> dt.datetime:
    return next_weekday(environment.institution.tz, 3, dt.time(hour, minute))


def book(environment, member, officer, start, **kwargs):
    with environment_scope(environment):
        return appointment_book(
            environment=environment, member=member, officer=officer, start=start, **kwargs
        )
