"""What becomes of a received alert: air it now, wait for a staff member, or only store it. Pure.

DESIGN.md's rules, in order: ``Draft``/``System`` and ``Ack``/``Error`` are stored only; a
``Cancel`` cancels what it references; nothing matched in this county, or already expired →
stored, ignored;
``VILLAGECAST_ALERTS_AUTO`` (``extreme`` default: emergency-priority alerts air at once, the others
wait; ``all``; ``none``) decides the rest. ``Exercise``/``Test`` alerts are matched, stored and
audited but not aired: exercise mode (heard by test devices only) is not built yet, and a drill must
never wake a village.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from streaming.items import Priority

from .areas import AreaMatch
from .cap import CapAlert, alert_priority, speech_text

__all__ = ["AUTO_POLICIES", "AlertDecision", "decide_alert"]

AUTO_POLICIES = ("extreme", "all", "none")
Action = Literal["air", "pending", "ignore", "cancel"]


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """The decision, with everything the on-air door needs and the reason people are shown."""

    action: Action
    reason: str
    priority: Priority = Priority.NORMAL
    exercise: bool = False
    villages: frozenset[str] = frozenset()
    speech: str = ""
    headline: str = ""
    expires: datetime | None = None
    replaces: tuple[tuple[str, str, str], ...] = ()  # keys an Update replaces / a Cancel cancels


def decide_alert(alert: CapAlert, match: AreaMatch, auto: str, now: datetime) -> AlertDecision:
    """Apply the rules above; ``now`` is aware."""
    refs = tuple((ident, sender, sent) for sender, ident, sent in alert.references)
    if alert.status in ("Draft", "System"):
        return AlertDecision("ignore", f"status {alert.status}: stored only")
    if alert.msg_type in ("Ack", "Error"):
        return AlertDecision("ignore", f"msgType {alert.msg_type}: stored only")
    if alert.msg_type == "Cancel":
        return AlertDecision("cancel", "cancelled by the sender", replaces=refs)
    info = alert.info("ko")
    if info is None:
        return AlertDecision("ignore", "the alert has no info block to read", replaces=refs)
    priority = alert_priority(info)
    found = AlertDecision(
        "ignore",
        "",
        priority,
        exercise=alert.exercise,
        villages=match.villages,
        speech=speech_text(info),
        headline=info.headline or info.event,
        expires=info.expires,
        replaces=refs if alert.msg_type == "Update" else (),
    )
    if not match.villages:
        return replace(found, reason="no area of this county matched")
    if info.expires is not None and info.expires <= now:
        return replace(found, reason="expired before it was received")
    if alert.exercise:
        # Until the channels can play to test devices only, a drill must reach nobody.
        return replace(
            found, reason=f"{alert.status}: stored and audited, not aired (no test lane)"
        )
    if auto == "all" or (auto == "extreme" and priority is Priority.EMERGENCY):
        return replace(found, action="air", reason="aired automatically")
    return replace(found, action="pending", reason="waits for a staff member's approval")
