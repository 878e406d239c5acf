"""Pure schedule logic: start times, recurrence, validity windows. Every function takes ``now``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from streaming.items import Priority

from .errors import InvalidSchedule

__all__ = [
    "PAST_GRACE",
    "Recurrence",
    "check_start",
    "late_outcome",
    "next_start",
    "parse_instant",
    "starts",
    "validity_window",
]

# A start time this far in the past is taken as "now" (clock skew, slow clients); beyond, 422.
PAST_GRACE = timedelta(seconds=10)
# A recurrence ends within this horizon at most (a year of daily broadcasts).
MAX_RECURRENCE_DAYS = 366


@dataclass(frozen=True, slots=True)
class Recurrence:
    """Repeat at the first start's local wall-clock time: daily, or weekly on chosen weekdays.

    ``weekdays`` are 0 = Monday … 6 = Sunday (Python's ``date.weekday()``); ``until`` is the last
    local date on which it may play (inclusive).
    """

    freq: Literal["daily", "weekly"]
    weekdays: frozenset[int]
    until: date

    @classmethod
    def from_json(cls, data: Any, first_local: datetime) -> Recurrence:
        """Parse ``{freq, weekdays?, until}``; weekly without weekdays means the first's weekday."""
        if not isinstance(data, Mapping):
            raise InvalidSchedule("recurrence must be an object {freq, weekdays?, until}")
        unknown = sorted(set(data) - {"freq", "weekdays", "until"})
        if unknown:
            raise InvalidSchedule(f"unknown recurrence field(s): {', '.join(unknown)}")
        freq = data.get("freq")
        if freq not in ("daily", "weekly"):
            raise InvalidSchedule('recurrence.freq must be "daily" or "weekly"')
        raw_days = data.get("weekdays")
        if raw_days is None:
            days = frozenset(range(7)) if freq == "daily" else frozenset({first_local.weekday()})
        else:
            if not isinstance(raw_days, list) or not raw_days:
                raise InvalidSchedule("recurrence.weekdays must be a non-empty list of 0-6")
            if any(
                isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in raw_days
            ):
                raise InvalidSchedule("recurrence.weekdays are 0 (Monday) to 6 (Sunday)")
            days = frozenset(raw_days)
        try:
            until = date.fromisoformat(str(data.get("until")))
        except ValueError:
            raise InvalidSchedule("recurrence.until must be a date, e.g. 2026-12-31") from None
        if until < first_local.date():
            raise InvalidSchedule("recurrence.until is before the first broadcast")
        if (until - first_local.date()).days > MAX_RECURRENCE_DAYS:
            raise InvalidSchedule(f"recurrence.until is more than {MAX_RECURRENCE_DAYS} days ahead")
        return cls(freq, days, until)

    def to_json(self) -> dict[str, Any]:
        """The stored and shown form."""
        return {
            "freq": self.freq,
            "weekdays": sorted(self.weekdays),
            "until": self.until.isoformat(),
        }


def parse_instant(raw: Any, tz: ZoneInfo) -> datetime:
    """An ISO 8601 time; without an offset it is read in ``tz`` (Asia/Seoul). Returns aware UTC."""
    if not isinstance(raw, str):
        raise InvalidSchedule("start_at must be an ISO 8601 time, e.g. 2026-11-26T07:00:00+09:00")
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidSchedule(f"start_at is not an ISO 8601 time: {raw!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(ZoneInfo("UTC"))


def check_start(start: datetime | None, now: datetime, grace: timedelta = PAST_GRACE) -> datetime:
    """The start instant: ``now`` when absent or barely past; a time further past is refused."""
    if start is None or now - grace <= start <= now:
        return now
    if start < now:
        raise InvalidSchedule(
            f"start_at is {int((now - start).total_seconds())} s in the past",
            start_at=start.isoformat(),
        )
    return start


def next_start(first: datetime, rec: Recurrence, after: datetime, tz: ZoneInfo) -> datetime | None:
    """The first start strictly after ``after``, at ``first``'s local time; None past until."""
    first_local = first.astimezone(tz)
    wall = first_local.time().replace(tzinfo=None)
    day = max(first_local.date(), after.astimezone(tz).date())
    while day <= rec.until:
        if day.weekday() in rec.weekdays:
            candidate = datetime.combine(day, wall, tzinfo=tz).astimezone(ZoneInfo("UTC"))
            if candidate > after and candidate >= first:
                return candidate
        day += timedelta(days=1)
    return None


def starts(first: datetime, rec: Recurrence | None, tz: ZoneInfo) -> Iterator[datetime]:
    """Every start of a broadcast in order (just ``first`` without recurrence)."""
    if rec is None or first.astimezone(tz).weekday() in rec.weekdays:
        yield first
    if rec is None:
        return
    at: datetime | None = first
    while at is not None:
        at = next_start(first, rec, at, tz)
        if at is not None:
            yield at


def validity_window(
    priority: Priority, validity_min: int, emergency_validity_min: int
) -> timedelta:
    """How late an occurrence may still play after a restart."""
    minutes = emergency_validity_min if priority >= Priority.EMERGENCY else validity_min
    return timedelta(minutes=minutes)


def late_outcome(due: datetime, now: datetime, validity: timedelta) -> Literal["play", "missed"]:
    """Whether an occurrence due at ``due`` still plays at ``now`` (inclusive window end)."""
    return "play" if now - due <= validity else "missed"
