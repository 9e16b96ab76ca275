import datetime as dt
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from releases.windows import is_open, next_opening

NY = ZoneInfo("America/New_York")
TUE_THU_NIGHTS = [SimpleNamespace(weekdays=[1, 2, 3], start=dt.time(22), end=dt.time(5))]


def at(*args):
    return dt.datetime(*args, tzinfo=NY)


def test_window__monday_afternoon__is_closed_and_next_is_tuesday_22():
    monday = at(2025, 3, 3, 14, 0)
    assert monday.weekday() == 0
    assert not is_open(TUE_THU_NIGHTS, [], NY, monday)
    opening = next_opening(TUE_THU_NIGHTS, [], NY, monday)
    assert opening.start == at(2025, 3, 4, 22, 0)
    assert opening.end == at(2025, 3, 5, 5, 0)
    assert opening.describe().startswith("Tuesday 04 March 2025 22:00 until Wednesday 05:00")


def test_window__crossing_midnight__is_open_after_midnight_and_closes_at_five():
    assert is_open(TUE_THU_NIGHTS, [], NY, at(2025, 3, 4, 23, 0))  # Tuesday 23:00
    assert is_open(TUE_THU_NIGHTS, [], NY, at(2025, 3, 5, 4, 59))  # Wednesday 04:59
    assert not is_open(TUE_THU_NIGHTS, [], NY, at(2025, 3, 5, 5, 0))
    assert is_open(TUE_THU_NIGHTS, [], NY, at(2025, 3, 7, 3, 0))  # Friday 03:00 (Thursday's)
    assert not is_open(TUE_THU_NIGHTS, [], NY, at(2025, 3, 8, 3, 0))


def test_window__utc_moment__is_judged_in_the_institution_zone():
    tuesday_23_ny = dt.datetime(2025, 3, 5, 4, 0, tzinfo=dt.UTC)  # EST = UTC-5
    assert is_open(TUE_THU_NIGHTS, [], NY, tuesday_23_ny)


def test_window__freeze_day__blocks_and_next_opening_skips_it():
    freeze = [SimpleNamespace(first_day=dt.date(2025, 3, 4), last_day=dt.date(2025, 3, 5))]
    assert not is_open(TUE_THU_NIGHTS, freeze, NY, at(2025, 3, 4, 23, 0))
    opening = next_opening(TUE_THU_NIGHTS, freeze, NY, at(2025, 3, 3, 14, 0))
    # Tuesday's and Wednesday's windows are frozen; Thursday's is first, its tail too.
    assert opening.start == at(2025, 3, 6, 0, 0)
    assert opening.end == at(2025, 3, 6, 5, 0)


def test_window__no_windows__has_no_opening():
    assert next_opening([], [], NY, at(2025, 3, 3, 14, 0)) is None
