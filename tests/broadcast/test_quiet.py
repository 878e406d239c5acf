"""Quiet hours: membership across midnight, when they end, and what each priority does inside."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from broadcast.quiet import QuietHours, decide_quiet
from devices.errors import InvalidError
from streaming.items import Priority

SEOUL = ZoneInfo("Asia/Seoul")
NIGHT = QuietHours.parse("21:00-06:00")


def kst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SEOUL)


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        (time(20, 59), False),
        (time(21, 0), True),
        (time(23, 59), True),
        (time(0, 0), True),
        (time(5, 59), True),
        (time(6, 0), False),
        (time(12, 0), False),
    ],
)
def test_default_quiet_hours_wrap_midnight(local: time, quiet: bool) -> None:
    assert NIGHT.contains(local) is quiet


def test_span_within_one_day() -> None:
    lunch = QuietHours.parse("12:00-13:30")
    assert lunch.contains(time(12, 0))
    assert lunch.contains(time(13, 29))
    assert not lunch.contains(time(13, 30))
    assert not lunch.contains(time(11, 59))


@pytest.mark.parametrize("text", ["", "off", "06:00-06:00"])
def test_empty_quiet_hours_never_quiet(text: str) -> None:
    q = QuietHours.parse(text)
    assert q.empty
    assert not q.contains(time(3, 0))


@pytest.mark.parametrize("text", ["21-06", "21:00", "25:00-06:00", "ab:cd-06:00", "21:00-6:0"])
def test_bad_quiet_hours_are_refused(text: str) -> None:
    with pytest.raises(InvalidError):
        QuietHours.parse(text)


@pytest.mark.parametrize(
    ("at", "ends"),
    [
        (kst(2026, 11, 25, 21, 30), kst(2026, 11, 26, 6, 0)),  # evening: ends tomorrow morning
        (kst(2026, 11, 26, 2, 10), kst(2026, 11, 26, 6, 0)),  # after midnight: ends this morning
        (kst(2026, 12, 31, 23, 0), kst(2027, 1, 1, 6, 0)),  # across the year
        (kst(2026, 11, 26, 9, 0), kst(2026, 11, 26, 9, 0)),  # not quiet: itself
    ],
)
def test_ends_after(at: datetime, ends: datetime) -> None:
    assert NIGHT.ends_after(at, SEOUL) == ends


def test_utc_instants_are_judged_in_seoul_time() -> None:
    # 12:30 UTC is 21:30 in Seoul.
    assert NIGHT.is_quiet(datetime(2026, 11, 25, 12, 30, tzinfo=UTC), SEOUL)
    assert not NIGHT.is_quiet(datetime(2026, 11, 25, 11, 30, tzinfo=UTC), SEOUL)


def test_normal_inside_is_refused_with_next_allowed() -> None:
    d = decide_quiet(kst(2026, 11, 25, 21, 30), NIGHT, SEOUL, Priority.NORMAL, defer=False)
    assert d.outcome == "refused"
    assert d.next_allowed == kst(2026, 11, 26, 6, 0)


def test_normal_inside_is_deferred_when_asked() -> None:
    d = decide_quiet(kst(2026, 11, 25, 21, 30), NIGHT, SEOUL, Priority.NORMAL, defer=True)
    assert d.outcome == "deferred"
    assert d.at == kst(2026, 11, 26, 6, 0)


def test_urgent_obeys_quiet_hours_like_normal() -> None:
    d = decide_quiet(kst(2026, 11, 26, 2, 10), NIGHT, SEOUL, Priority.URGENT, defer=False)
    assert d.outcome == "refused"


def test_emergency_ignores_quiet_hours() -> None:
    d = decide_quiet(kst(2026, 11, 26, 2, 10), NIGHT, SEOUL, Priority.EMERGENCY, defer=False)
    assert d.outcome == "ignored"
    assert d.at == kst(2026, 11, 26, 2, 10)


def test_outside_is_clear() -> None:
    d = decide_quiet(kst(2026, 11, 26, 7, 0), NIGHT, SEOUL, Priority.NORMAL, defer=False)
    assert d.outcome == "clear"
    assert d.next_allowed is None
