"""Quiet hours (야간 방송 제한): what a broadcast does inside them.

The value type is ``devices.village_settings.QuietHours`` (a village's setting and the server's
default); the decision per priority is here, and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from devices.village_settings import QuietHours
from streaming.items import Priority

__all__ = ["QuietDecision", "QuietHours", "decide_quiet", "village_quiet"]


@dataclass(frozen=True, slots=True)
class QuietDecision:
    """What quiet hours do to one village's start: play at ``at``, or be refused."""

    outcome: Literal["clear", "deferred", "refused", "ignored"]
    at: datetime  # when it plays (for refused: the requested time)
    next_allowed: datetime | None = None  # when quiet time ends (deferred, refused, ignored)


def village_quiet(own: str | None, default: QuietHours) -> QuietHours:
    """A village's quiet hours: its own setting, else the server's default."""
    return QuietHours.parse(own) if own else default


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
