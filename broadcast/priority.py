"""Priority names and the plan: what a broadcast will do in each village, told before sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from streaming.items import Placement, Priority

from .errors import InvalidSchedule
from .quiet import QuietDecision

__all__ = ["PlanEntry", "parse_priority", "plan_village", "priority_name"]

# A start this close to now is "now": the channel's current state decides what happens.
IMMEDIATE = timedelta(seconds=2)

Outcome = Literal["plays_now", "queued", "preempts", "scheduled", "deferred", "refused"]


def parse_priority(raw: Any) -> Priority:
    """``"normal"`` / ``"urgent"`` / ``"emergency"`` (default normal) → Priority, or 422."""
    if raw is None:
        return Priority.NORMAL
    if not isinstance(raw, str):
        raise InvalidSchedule('priority must be "normal", "urgent" or "emergency"')
    try:
        return Priority.parse(raw)
    except ValueError:
        raise InvalidSchedule('priority must be "normal", "urgent" or "emergency"') from None


def priority_name(priority: Priority) -> str:
    """The API name of a priority."""
    return priority.name.lower()


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """What will happen in one village."""

    village: str
    name_ko: str
    outcome: Outcome
    at: datetime
    quiet: str  # clear | deferred | refused | ignored
    ahead: tuple[str, ...] = ()
    preempted: str | None = None
    next_allowed: datetime | None = None

    def message(self, tz: ZoneInfo) -> tuple[str, str]:
        """A sentence for the sender, in Korean and English."""
        at = self.at.astimezone(tz).strftime("%m-%d %H:%M")
        na = self.next_allowed.astimezone(tz).strftime("%m-%d %H:%M") if self.next_allowed else ""
        if self.outcome == "refused":
            return (
                f"야간 방송 제한 시간입니다. {na} 이후에 방송할 수 있습니다",
                f"quiet hours; allowed from {na}",
            )
        if self.outcome == "deferred":
            return (f"야간 방송 제한으로 {at}에 방송합니다", f"deferred by quiet hours to {at}")
        if self.outcome == "scheduled":
            ko, en = f"{at}에 방송합니다", f"plays at {at}"
        elif self.outcome == "queued":
            ahead = ", ".join(self.ahead)
            ko, en = f"{ahead} 다음에 방송합니다", f"queued behind {ahead}"
        elif self.outcome == "preempts":
            ko = f"지금 방송 중인 '{self.preempted}'을(를) 중단하고 방송합니다"
            en = f"preempts {self.preempted}"
        else:
            ko, en = "지금 바로 방송합니다", "plays now"
        if self.quiet == "ignored":
            ko, en = (
                ko + " (긴급 재난 방송: 야간 제한 무시)",
                en + " (emergency: ignores quiet hours)",
            )
        return ko, en

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        """The API form (times in ``tz``)."""
        ko, en = self.message(tz)
        return {
            "village": self.village,
            "name_ko": self.name_ko,
            "outcome": self.outcome,
            "at": self.at.astimezone(tz).isoformat(),
            "quiet_hours": self.quiet,
            "ahead": list(self.ahead),
            "preempts": self.preempted,
            "next_allowed": self.next_allowed.astimezone(tz).isoformat()
            if self.next_allowed
            else None,
            "message_ko": ko,
            "message_en": en,
        }


def plan_village(
    village: str,
    name_ko: str,
    now: datetime,
    decision: QuietDecision,
    placement: Placement | None,
) -> PlanEntry:
    """One village's plan: its quiet-hours decision and, for a start now, the channel's answer."""
    common: dict[str, Any] = {
        "village": village,
        "name_ko": name_ko,
        "at": decision.at,
        "quiet": decision.outcome,
        "next_allowed": decision.next_allowed,
    }
    if decision.outcome in ("refused", "deferred"):
        return PlanEntry(outcome=decision.outcome, **common)
    if decision.at - now > IMMEDIATE or placement is None:
        return PlanEntry(outcome="scheduled", **common)
    return PlanEntry(
        outcome=placement.outcome, ahead=placement.ahead, preempted=placement.preempted, **common
    )
