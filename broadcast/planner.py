"""The one planner of everything that goes on air: rights → targets → quiet hours → priority → plan.

Pure: it takes values (the actor, the request, the facts gathered by the service, ``now``, the
rules) and returns a :class:`Plan` or raises the error the sender sees. The dry run the console
shows and the plan that is executed are this same function, for scheduled, recurring and live
broadcasts and for system senders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devices import policy
from devices.errors import NotPermitted
from devices.models import Account
from devices.targets import RegionTree, Targets, resolve_targets
from recordings.models import Announcement
from streaming.items import Placement, Priority

from .dispatcher import DispatcherConfig
from .errors import AnnouncementNotReady, EmptyTarget, InQuietHours, UnknownAnnouncement
from .priority import PlanEntry, plan_village
from .quiet import decide_quiet, village_quiet
from .scheduling import Recurrence, check_start, starts

__all__ = [
    "Actor",
    "AirRequest",
    "Facts",
    "Plan",
    "Staff",
    "System",
    "actor_name",
    "announcement_visible",
    "plan_air",
    "target_villages",
]


@dataclass(frozen=True, slots=True)
class Staff:
    """A staff account sends (its region-bound rights apply)."""

    account: Account


@dataclass(frozen=True, slots=True)
class System:
    """The system sends, for a named reason: ``alert:<CAP identifier>``, ``recurrence``, …"""

    reason: str


Actor = Staff | System


def actor_name(actor: Actor) -> str:
    """How the actor appears in the audit log."""
    if isinstance(actor, System):
        return f"system:{actor.reason}"
    return f"account:{actor.account.id} ({actor.account.username})"


@dataclass(frozen=True, slots=True)
class AirRequest:
    """What a sender asks for. ``announcement_id=None`` is a live session (starts now)."""

    announcement_id: int | None
    targets: Targets
    start_at: datetime | None = None
    priority: Priority = Priority.NORMAL
    repeat: int = 1
    chime: bool = True
    recurrence: Any = None  # raw JSON, parsed against the first start
    defer_quiet: bool = False
    dry_run: bool = False
    # set by domain code only: a notice handed this announcement to its recipient, who may air it
    announcement_granted: bool = False
    valid_until: datetime | None = None  # never starts after this (an alert's ``expires``)

    @property
    def live(self) -> bool:
        """A live session: no announcement yet, starts now, never deferred."""
        return self.announcement_id is None

    def starts_now(self, now: datetime) -> bool:
        """Whether the channels' current state decides what happens (their answer is needed)."""
        return self.start_at is None or self.start_at <= now


@dataclass(frozen=True, slots=True)
class Facts:
    """What the planner needs to know; the service gathers it (the only I/O of planning)."""

    tree: RegionTree
    group_regions: Mapping[int, str]
    group_members: Mapping[int, set[int]]
    devices_by_village: Mapping[str, set[int]]
    announcement: Announcement | None = None
    # village code → (Korean name, its own quiet hours or None), for the targeted villages
    villages: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    # the channels' answer per targeted village, for a start now
    placements: Mapping[str, Placement] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    """What will happen: the first start, the recurrence, and one entry per village."""

    start: datetime
    recurrence: Recurrence | None
    entries: list[PlanEntry]

    @property
    def villages(self) -> list[str]:
        """The targeted villages, sorted."""
        return [p.village for p in self.entries]

    def quiet(self, outcome: str) -> list[str]:
        """The villages whose quiet-hours decision is ``outcome`` (``ignored``, ``deferred``)."""
        return [p.village for p in self.entries if p.quiet == outcome]


def announcement_visible(account: Account, row: Announcement, tree: RegionTree) -> bool:
    """The rule of ``GET /api/v1/announcements/{id}`` (``devices.policy.Visibility.sees``): what
    was published, what the account made, and what its regions made."""
    return policy.visibility(account, tree).sees(
        row.region_code, author_id=row.created_by, published=row.published_at is not None
    )


def target_villages(actor: Actor, req: AirRequest, facts: Facts) -> frozenset[str]:
    """Rights, then targets: the villages the request reaches (raises what the sender sees)."""
    if isinstance(actor, Staff):
        account = actor.account
        if req.priority >= Priority.EMERGENCY and not policy.can_send_emergency(account):
            raise NotPermitted("only the county office may send emergency broadcasts")
        policy.check_targets(account, req.targets, facts.tree, facts.group_regions)
    if not req.live:
        ann = facts.announcement
        visible = ann is not None and (
            isinstance(actor, System)
            or req.announcement_granted
            or announcement_visible(actor.account, ann, facts.tree)
        )
        if ann is None or not visible:  # an invisible announcement answers like a missing one
            raise UnknownAnnouncement(f"no announcement {req.announcement_id}")
        if ann.status != "ready" or not any(r.format == "mp3" for r in ann.renditions):
            raise AnnouncementNotReady(
                f"announcement {ann.id} is {ann.status}", announcement_status=ann.status
            )
    device_village = {d: v for v, ids in facts.devices_by_village.items() for d in ids}
    resolution = resolve_targets(
        req.targets, facts.tree, facts.devices_by_village, facts.group_members, device_village
    )
    if not resolution.villages:
        raise EmptyTarget("the targets hold no village")
    return resolution.villages


def plan_air(
    actor: Actor, req: AirRequest, facts: Facts, now: datetime, rules: DispatcherConfig
) -> Plan:
    """The plan of a request: rights → targets → quiet hours → priority and conflicts."""
    villages = sorted(target_villages(actor, req, facts))
    start, rec = now, None
    if not req.live:
        start = check_start(req.start_at, now)
        if req.recurrence is not None:
            rec = Recurrence.from_json(req.recurrence, start.astimezone(rules.tz))
            first = next(iter(starts(start, rec, rules.tz)), None)
            if first is None:
                raise EmptyTarget("the recurrence has no start before its end date")
            start = first
    entries = []
    for village in villages:
        name, own = facts.villages.get(village, ("", None))
        quiet = village_quiet(own, rules.default_quiet)
        defer = req.defer_quiet and not req.live
        decision = decide_quiet(start, quiet, rules.tz, req.priority, defer)
        placement = facts.placements.get(village) if start <= now else None
        entries.append(plan_village(village, name, now, decision, placement))
    refused = [p for p in entries if p.outcome == "refused"]
    if refused:
        next_allowed = max(p.next_allowed or p.at for p in refused).astimezone(rules.tz)
        quiet_text = ", ".join(
            sorted(
                {
                    str(
                        village_quiet(
                            facts.villages.get(p.village, ("", None))[1], rules.default_quiet
                        )
                    )
                    for p in refused
                }
            )
        )
        raise InQuietHours(
            f"{quiet_text} is quiet time; it can play from {next_allowed:%Y-%m-%d %H:%M} "
            + ("(or as an emergency)" if req.live else "(send with defer_quiet: true)"),
            next_allowed=next_allowed.isoformat(),
            quiet_hours=quiet_text,
            villages=[p.village for p in refused],
            plan=[p.to_json(rules.tz) for p in entries],
        )
    return Plan(start, rec, entries)
