"""Slot arithmetic, free of the database: weekly windows in the institution's time zone,
turned into UTC slots, minus busy periods (each widened by the buffer).

Every comparison is made in UTC: aware datetimes that share a tzinfo compare by wall time,
which is wrong on the days clocks change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Period = tuple[datetime, datetime]  # [start, end) in UTC


@dataclass(frozen=True)
class Window:
    weekday: int  # 0 = Monday
    start: time
    end: time


def _local(day: date, at: time, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a wall-clock time, or None when that time does not exist that day
    (the hour skipped when clocks go forward)."""
    aware = datetime.combine(day, at, tzinfo=tz)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != aware.replace(tzinfo=None):
        return None
    return instant


def candidate_slots(
    *, windows: Iterable[Window], tz: ZoneInfo, first_day: date, last_day: date, length: timedelta
) -> list[datetime]:
    """Slot starts (UTC) on the local days first_day..last_day: each window from its start,
    one meeting length apart, every meeting ending inside its window."""
    by_weekday: dict[int, list[Window]] = {}
    for window in windows:
        by_weekday.setdefault(window.weekday, []).append(window)
    starts: set[datetime] = set()
    day = first_day
    while day <= last_day:
        for window in by_weekday.get(day.weekday(), []):
            window_end = _local(day, window.end, tz)
            if window_end is None:
                window_end = datetime.combine(day, window.end, tzinfo=tz).astimezone(UTC)
            wall = datetime.combine(day, window.start)
            while True:
                start = _local(wall.date(), wall.time(), tz)
                if start is not None:
                    if start + length > window_end:
                        break
                    starts.add(start)
                elif wall.time() >= window.end:
                    break
                wall += length
                if wall.date() != day:
                    break
        day += timedelta(days=1)
    return sorted(starts)


def overlaps(start: datetime, end: datetime, busy: Period, buffer: timedelta) -> bool:
    """Whether [start, end) comes within `buffer` of the busy period."""
    return start < busy[1] + buffer and busy[0] - buffer < end


def free_slots(
    candidates: Iterable[datetime],
    *,
    length: timedelta,
    busy: Iterable[Period],
    buffer: timedelta,
    earliest: datetime,
) -> list[datetime]:
    """The candidates starting at or after `earliest` that keep clear of every busy period."""
    periods = sorted(busy)
    out = []
    for start in candidates:
        if start < earliest:
            continue
        end = start + length
        if not any(overlaps(start, end, period, buffer) for period in periods):
            out.append(start)
    return out


def subtract(periods: Iterable[Period], hole: Period) -> list[Period]:
    """The periods with `hole` cut out (the appointment being moved is not busy for itself)."""
    out = []
    for start, end in periods:
        if end <= hole[0] or start >= hole[1]:
            out.append((start, end))
            continue
        if start < hole[0]:
            out.append((start, hole[0]))
        if end > hole[1]:
            out.append((hole[1], end))
    return out
