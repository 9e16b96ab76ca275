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


def test_window__closing_in_the_repeated_hour_of_a_fall_back__closes_once():
    # New York falls back on Sunday 2 November 2025: 01:00-01:59 happens twice. A Saturday
    # window 22:00-01:30 closes at the first 01:30 (EDT, 05:30 UTC); at the second 01:15
    # (EST, 06:15 UTC) it has been closed 45 minutes, though 01:15 < 01:30 on the wall.
    saturday_nights = [SimpleNamespace(weekdays=[5], start=dt.time(22), end=dt.time(1, 30))]
    first_one_fifteen = dt.datetime(2025, 11, 2, 5, 15, tzinfo=dt.UTC)
    second_one_fifteen = dt.datetime(2025, 11, 2, 6, 15, tzinfo=dt.UTC)
    assert second_one_fifteen.astimezone(NY).tzname() == "EST"
    assert is_open(saturday_nights, [], NY, first_one_fifteen)
    assert not is_open(saturday_nights, [], NY, second_one_fifteen)
    opening = next_opening(saturday_nights, [], NY, second_one_fifteen)
    assert opening.start == at(2025, 11, 8, 22, 0)  # the next Saturday's, in local time
    closing = next_opening(saturday_nights, [], NY, at(2025, 11, 1, 23, 0)).end
    assert closing.astimezone(dt.UTC) == dt.datetime(2025, 11, 2, 5, 30, tzinfo=dt.UTC)
