"""Quiet hours (야간 방송 제한): parsing, membership, when they end, what a broadcast does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from streaming.items import Priority

from .errors import InvalidSchedule

__all__ = ["QuietDecision", "QuietHours", "decide_quiet"]


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local-time span ``start``–``end`` (may wrap midnight); equal ends mean none."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-06:00"`` → QuietHours; ``""``/``"off"`` → an empty span."""
        raw = text.strip().lower()
        if raw in ("", "off", "none"):
            return cls(time(0, 0), time(0, 0))
        try:
            a, b = raw.split("-")
            return cls(_hhmm(a), _hhmm(b))
        except ValueError:
            raise InvalidSchedule(f"quiet hours must look like 21:00-06:00, not {text!r}") from None

    @property
    def empty(self) -> bool:
        """Whether there are no quiet hours at all."""
        return self.start == self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        """Whether a local wall-clock time falls inside (start inclusive, end exclusive)."""
        if self.empty:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

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


def _hhmm(text: str) -> time:
    hh, mm = text.strip().split(":")
    if len(hh) not in (1, 2) or len(mm) != 2:
        raise ValueError(text)
    return time(int(hh), int(mm))


@dataclass(frozen=True, slots=True)
class QuietDecision:
    """What quiet hours do to one village's start: play at ``at``, or be refused."""

    outcome: Literal["clear", "deferred", "refused", "ignored"]
    at: datetime  # when it plays (for refused: the requested time)
    next_allowed: datetime | None = None  # when quiet time ends (deferred, refused, ignored)


def decide_quiet(
    start: datetime, quiet: QuietHours, tz: ZoneInfo, priority: Priority, defer: bool
) -> QuietDecision:
    """Quiet hours for one village: emergencies ignore them; others are deferred or refused.

    ``urgent`` obeys quiet hours like ``normal``: whatever must wake a village at night is an
    emergency, which only county admins may send (see docs/broadcast.md).
    """
    if not quiet.is_quiet(start, tz):
        return QuietDecision("clear", start)
    ends = quiet.ends_after(start, tz)
    if priority >= Priority.EMERGENCY:
        return QuietDecision("ignored", start, ends)
    if defer:
        return QuietDecision("deferred", ends, ends)
    return QuietDecision("refused", start, ends)
