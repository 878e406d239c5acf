"""Pure schedule logic: start checks, recurrence across midnight and weekdays, validity windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from broadcast.errors import InvalidSchedule
from broadcast.scheduling import (
    Recurrence,
    check_start,
    late_outcome,
    next_start,
    parse_instant,
    starts,
    validity_window,
)
from streaming.items import Priority

SEOUL = ZoneInfo("Asia/Seoul")
NOW = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # 14:00 in Seoul, a Wednesday


def kst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SEOUL)


def test_absent_start_means_now() -> None:
    assert check_start(None, NOW) == NOW


def test_start_a_few_seconds_past_is_now() -> None:
    assert check_start(NOW - timedelta(seconds=5), NOW) == NOW


def test_start_further_past_is_refused() -> None:
    with pytest.raises(InvalidSchedule):
        check_start(NOW - timedelta(minutes=1), NOW)


def test_future_start_is_kept() -> None:
    later = NOW + timedelta(hours=1)
    assert check_start(later, NOW) == later


def test_time_without_offset_is_read_in_seoul() -> None:
    assert parse_instant("2026-11-26T07:00:00", SEOUL) == datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
    assert parse_instant("2026-11-26T07:00:00+09:00", SEOUL) == parse_instant(
        "2026-11-25T22:00:00Z", SEOUL
    )


@pytest.mark.parametrize("raw", ["tomorrow", 12, "2026-13-01T00:00:00"])
def test_bad_times_are_refused(raw: object) -> None:
    with pytest.raises(InvalidSchedule):
        parse_instant(raw, SEOUL)


def test_daily_recurrence_keeps_the_local_time_across_the_utc_date_change() -> None:
    # 07:00 in Seoul is 22:00 UTC the day before: the UTC date differs from the local one.
    first = kst(2026, 11, 26, 7, 0)
    rec = Recurrence.from_json({"freq": "daily", "until": "2026-11-28"}, first)
    got = [s.astimezone(SEOUL) for s in starts(first, rec, SEOUL)]
    assert got == [kst(2026, 11, 26, 7, 0), kst(2026, 11, 27, 7, 0), kst(2026, 11, 28, 7, 0)]


def test_recurrence_just_after_midnight() -> None:
    first = kst(2026, 11, 26, 0, 5)
    rec = Recurrence.from_json({"freq": "daily", "until": "2026-11-27"}, first)
    assert list(starts(first, rec, SEOUL)) == [first, kst(2026, 11, 27, 0, 5)]


def test_weekly_on_weekdays_skips_the_weekend() -> None:
    first = kst(2026, 11, 27, 9, 0)  # a Friday
    rec = Recurrence.from_json(
        {"freq": "weekly", "weekdays": [0, 2, 4], "until": "2026-12-07"}, first
    )
    got = [s.astimezone(SEOUL).date() for s in starts(first, rec, SEOUL)]
    assert got == [
        date(2026, 11, 27),  # Fri
        date(2026, 11, 30),  # Mon
        date(2026, 12, 2),  # Wed
        date(2026, 12, 4),  # Fri
        date(2026, 12, 7),  # Mon (until is inclusive)
    ]


def test_weekly_starting_on_an_unlisted_day_begins_on_the_next_listed_one() -> None:
    first = kst(2026, 11, 28, 9, 0)  # a Saturday
    rec = Recurrence.from_json({"freq": "weekly", "weekdays": [0], "until": "2026-12-31"}, first)
    assert next(iter(starts(first, rec, SEOUL))) == kst(2026, 11, 30, 9, 0)


def test_weekly_without_weekdays_uses_the_first_day() -> None:
    first = kst(2026, 11, 25, 18, 0)  # Wednesday
    rec = Recurrence.from_json({"freq": "weekly", "until": "2026-12-31"}, first)
    assert list(islice(starts(first, rec, SEOUL), 3)) == [
        first,
        kst(2026, 12, 2, 18, 0),
        kst(2026, 12, 9, 18, 0),
    ]


def test_next_start_after_a_time_late_in_the_day() -> None:
    first = kst(2026, 11, 25, 7, 0)
    rec = Recurrence.from_json({"freq": "daily", "until": "2026-12-31"}, first)
    assert next_start(first, rec, kst(2026, 11, 30, 23, 59), SEOUL) == kst(2026, 12, 1, 7, 0)
    assert next_start(first, rec, kst(2026, 12, 31, 7, 0), SEOUL) is None


@pytest.mark.parametrize(
    "raw",
    [
        {"freq": "hourly", "until": "2026-12-01"},
        {"freq": "daily"},
        {"freq": "daily", "until": "2026-11-01"},
        {"freq": "weekly", "weekdays": [7], "until": "2026-12-01"},
        {"freq": "weekly", "weekdays": [], "until": "2026-12-01"},
        {"freq": "daily", "until": "2028-01-01"},
        {"freq": "daily", "until": "2026-12-01", "count": 3},
        "daily",
    ],
)
def test_bad_recurrences_are_refused(raw: object) -> None:
    with pytest.raises(InvalidSchedule):
        Recurrence.from_json(raw, kst(2026, 11, 25, 9, 0))


def test_validity_windows_by_priority() -> None:
    assert validity_window(Priority.NORMAL, 10, 60) == timedelta(minutes=10)
    assert validity_window(Priority.URGENT, 10, 60) == timedelta(minutes=10)
    assert validity_window(Priority.EMERGENCY, 10, 60) == timedelta(minutes=60)


@pytest.mark.parametrize(
    ("late", "outcome"),
    [
        (timedelta(0), "play"),
        (timedelta(minutes=9, seconds=59), "play"),
        (timedelta(minutes=10), "play"),
        (timedelta(minutes=10, seconds=1), "missed"),
    ],
)
def test_late_outcome_inside_and_outside_the_window(late: timedelta, outcome: str) -> None:
    assert late_outcome(NOW, NOW + late, timedelta(minutes=10)) == outcome
