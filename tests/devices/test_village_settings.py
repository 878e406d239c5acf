"""Quiet hours, tags and usernames as values."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest

from devices.errors import InvalidField
from devices.village_settings import normalize_tags, parse_quiet_hours, valid_username


@pytest.mark.parametrize(
    ("period", "at", "quiet"),
    [
        ("21:00-06:00", time(21, 0), True),
        ("21:00-06:00", time(2, 10), True),
        ("21:00-06:00", time(6, 0), False),
        ("21:00-06:00", time(20, 59), False),
        ("12:00-13:30", time(13, 0), True),
        ("12:00-13:30", time(13, 30), False),
        ("00:00-00:00", time(3, 0), False),
    ],
)
def test_quiet_hours_wrap_past_midnight(period: str, at: time, quiet: bool) -> None:
    hours = parse_quiet_hours(period)
    assert hours.contains(at) is quiet
    assert str(hours) == period


@pytest.mark.parametrize("bad", ["", "21-06", "21:00-6:00", "25:00-06:00", "21:60-06:00", None, 5])
def test_bad_quiet_hours_are_invalid(bad: Any) -> None:
    with pytest.raises(InvalidField):
        parse_quiet_hours(bad)


def test_tags_are_trimmed_deduplicated_sorted() -> None:
    assert normalize_tags([" 해안 ", "coastal", "해안"]) == ["coastal", "해안"]
    for bad in ("coastal", [""], ["a\tb"], [3], ["x" * 33], ["t"] * 21):
        with pytest.raises(InvalidField):
            normalize_tags(bad)


def test_usernames() -> None:
    assert valid_username("goseong-eup.kim_1") == "goseong-eup.kim_1"
    for bad in ("ab", "-kim", "Kim", "kim lee", "김", "k" * 65, None):
        with pytest.raises(InvalidField):
            valid_username(bad)
