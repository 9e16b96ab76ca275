"""Deploy windows and freeze days, in the institution's time zone.

A window opens on each of its weekdays at `start` and closes at `end`, the next day when
`end` is not after `start` (22:00-05:00). A freeze day blocks every moment whose local
date falls in it, even inside a window.

Windows are built and described in local time, but compared as instants: Python compares
two datetimes sharing a tzinfo by wall clock, ignoring the offset, so on a fall-back night
01:15 EST (after) would count as earlier than 01:30 EDT (before).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

SEARCH_DAYS = 400


@dataclass(frozen=True)
class Opening:
    start: dt.datetime  # local time, aware
    end: dt.datetime

    def describe(self) -> str:
        same_day = self.start.date() == self.end.date()
        end = f"{self.end:%H:%M}" if same_day else f"{self.end:%A %H:%M}"
        return f"{self.start:%A %d %B %Y %H:%M} until {end} ({self.start.tzname()})"


def _intervals(windows, day: dt.date, tz: ZoneInfo):
    for window in windows:
        if day.weekday() not in window.weekdays:
            continue
        start = dt.datetime.combine(day, window.start, tzinfo=tz)
        end_day = day if window.end > window.start else day + dt.timedelta(days=1)
        yield start, dt.datetime.combine(end_day, window.end, tzinfo=tz)


def _instant(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def _earlier(a: dt.datetime, b: dt.datetime) -> dt.datetime:
    return a if _instant(a) <= _instant(b) else b


def _later(a: dt.datetime, b: dt.datetime) -> dt.datetime:
    return a if _instant(a) >= _instant(b) else b


def _before(a: dt.datetime, b: dt.datetime) -> bool:
    return _instant(a) < _instant(b)


def _frozen(freezes, day: dt.date) -> bool:
    return any(f.first_day <= day <= f.last_day for f in freezes)


def _next_midnight(moment: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(moment.date() + dt.timedelta(days=1), dt.time(), tzinfo=tz)


def next_opening(windows, freezes, tz: ZoneInfo, after: dt.datetime) -> Opening | None:
    """The first moment at or after `after` when a deploy may run, and when that opening ends."""
    windows, freezes = list(windows), list(freezes)
    local = after.astimezone(tz)
    best: Opening | None = None
    for offset in range(-1, SEARCH_DAYS):
        day = local.date() + dt.timedelta(days=offset)
        if best is not None and _before(best.start, dt.datetime.combine(day, dt.time(), tz)):
            break
        for start, end in _intervals(windows, day, tz):
            cursor = _later(start, local)
            while _before(cursor, end):
                # Walk the window a local day at a time, skipping frozen days.
                piece_end = _earlier(end, _next_midnight(cursor, tz))
                if not _frozen(freezes, cursor.date()):
                    stop = piece_end
                    while _before(stop, end) and not _frozen(freezes, stop.date()):
                        stop = _earlier(end, _next_midnight(stop, tz))
                    if best is None or _before(cursor, best.start):
                        best = Opening(cursor, stop)
                    break
                cursor = piece_end
    return best


def is_open(windows, freezes, tz: ZoneInfo, moment: dt.datetime) -> bool:
    opening = next_opening(windows, freezes, tz, moment)
    return opening is not None and not _before(moment, opening.start)
