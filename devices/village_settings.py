"""Per-village settings as values: quiet hours ("HH:MM-HH:MM"), tags, listener approval; pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .errors import InvalidField

__all__ = ["QuietHours", "normalize_tags", "parse_quiet_hours", "valid_username"]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
MAX_TAGS = 20
MAX_TAG_LEN = 32


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily quiet period in local time; it may wrap past midnight (21:00–06:00).

    Equal ends mean none. The one value type of quiet hours: a village's setting and the server's
    default; what a broadcast does inside them is decided in ``broadcast.quiet``.
    """

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-06:00"`` → QuietHours; ``""``/``"off"``/``"none"`` → an empty period."""
        raw = text.strip().lower() if isinstance(text, str) else text
        if raw in ("", "off", "none"):
            return cls(time(0, 0), time(0, 0))
        return parse_quiet_hours(raw)

    @property
    def empty(self) -> bool:
        """Whether there are no quiet hours at all."""
        return self.start == self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, at: time) -> bool:
        """Whether a local time of day is quiet (start inclusive, end exclusive)."""
        if self.start == self.end:
            return False  # an empty period: no quiet hours
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end

    def is_quiet(self, instant: datetime, tz: ZoneInfo) -> bool:
        """Whether an aware instant falls inside, in the village's zone."""
        return self.contains(instant.astimezone(tz).time().replace(tzinfo=None))

    def ends_after(self, instant: datetime, tz: ZoneInfo) -> datetime:
        """The first instant at or after ``instant`` outside quiet hours (aware, in ``tz``)."""
        local = instant.astimezone(tz)
        if not self.is_quiet(instant, tz):
            return local
        day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            day += timedelta(days=1)  # evening part of a span that wraps midnight
        return datetime.combine(day, self.end, tzinfo=tz)


def parse_quiet_hours(text: Any) -> QuietHours:
    """``"21:00-06:00"`` → :class:`QuietHours`; :class:`InvalidField` otherwise."""
    match = _HHMM.match(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidField("quiet_hours must look like 21:00-06:00", field="quiet_hours")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return QuietHours(time(h1, m1), time(h2, m2))


def normalize_tags(tags: Any) -> list[str]:
    """Tags as a sorted list of distinct trimmed strings (1–32 characters, no controls)."""
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise InvalidField(f"tags must be a list of at most {MAX_TAGS} strings", field="tags")
    out: set[str] = set()
    for tag in tags:
        if not isinstance(tag, str):
            raise InvalidField("tags must be strings", field="tags")
        tag = tag.strip()
        if not 1 <= len(tag) <= MAX_TAG_LEN or _has_control(tag):
            raise InvalidField(f"each tag must have 1–{MAX_TAG_LEN} characters", field="tags")
        out.add(tag)
    return sorted(out)


def valid_username(name: Any) -> str:
    """A username: 3–64 of a–z 0–9 ``._-``, starting with a letter or digit."""
    if not isinstance(name, str) or not _USERNAME.match(name):
        raise InvalidField(
            "username: 3–64 characters a-z 0-9 . _ - (starting with a letter or digit)",
            field="username",
        )
    return name


def _has_control(text: Iterable[str]) -> bool:
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)
