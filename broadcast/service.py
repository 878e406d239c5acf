"""Creating and cancelling broadcasts: policy, validation, the plan, rows and audit in one place.

The web handlers parse the request into a :class:`BroadcastRequest` and call these; nothing here
commits (the caller does, then pokes the dispatcher).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from devices import policy
from devices import store as devices_store
from devices.errors import NotPermitted
from devices.models import Account
from devices.targets import Targets
from streaming.items import ChannelPort, Priority

from . import store
from .dispatcher import DispatcherConfig
from .errors import EmptyTarget, InQuietHours, NotCancellable
from .models import Broadcast
from .priority import PlanEntry, plan_village, priority_name
from .quiet import QuietHours, decide_quiet
from .scheduling import Recurrence, check_start, starts

__all__ = ["BroadcastRequest", "Created", "cancel_broadcast", "create_broadcast"]


@dataclass(frozen=True, slots=True)
class BroadcastRequest:
    """A parsed ``POST /api/v1/broadcasts``."""

    announcement_id: int
    targets: Targets
    start_at: datetime | None = None
    priority: Priority = Priority.NORMAL
    repeat: int = 1
    chime: bool = True
    recurrence: Any = None  # raw JSON, parsed against the first start
    defer_quiet: bool = False
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Created:
    """The broadcast created (None on a dry run) and the plan per village."""

    broadcast: Broadcast | None
    plan: list[PlanEntry]
    first_start: datetime
    recurrence: Recurrence | None


async def create_broadcast(
    session: AsyncSession,
    account: Account,
    req: BroadcastRequest,
    *,
    now: datetime,
    channels: ChannelPort,
    config: DispatcherConfig,
) -> Created:
    """Check who may send what where, plan it per village, and add the rows (uncommitted)."""
    if req.priority >= Priority.EMERGENCY and not policy.can_send_emergency(account):
        raise NotPermitted("only the county office may send emergency broadcasts")
    tree = await devices_store.load_tree(session)
    policy.check_targets(account, req.targets, tree, await devices_store.group_regions(session))
    announcement = await store.ready_announcement(session, req.announcement_id)
    resolution = await devices_store.resolve(session, req.targets)
    if not resolution.villages:
        raise EmptyTarget("the targets hold no village")
    start = check_start(req.start_at, now)
    rec = None
    if req.recurrence is not None:
        rec = Recurrence.from_json(req.recurrence, start.astimezone(config.tz))
        first = next(iter(starts(start, rec, config.tz)), None)
        if first is None:
            raise EmptyTarget("the recurrence has no start before its end date")
        start = first
    villages = sorted(resolution.villages)
    info = await store.village_info(session, villages)
    plan: list[PlanEntry] = []
    for village in villages:
        name, own_quiet = info.get(village, ("", None))
        quiet = QuietHours.parse(own_quiet) if own_quiet else config.default_quiet
        decision = decide_quiet(start, quiet, config.tz, req.priority, req.defer_quiet)
        placement = channels.predict(village, req.priority) if start <= now else None
        plan.append(plan_village(village, name, now, decision, placement))
    refused = [p for p in plan if p.outcome == "refused"]
    if refused:
        next_allowed = max(p.next_allowed or p.at for p in refused)
        quiet_text = ", ".join(sorted({_quiet_of(info, p.village, config) for p in refused}))
        raise InQuietHours(
            f"{quiet_text} is quiet time; it can play from "
            f"{next_allowed.astimezone(config.tz):%Y-%m-%d %H:%M} (send with defer_quiet: true)",
            next_allowed=next_allowed.astimezone(config.tz).isoformat(),
            quiet_hours=quiet_text,
            plan=[p.to_json(config.tz) for p in plan],
        )
    if req.dry_run:
        return Created(None, plan, start, rec)
    b = Broadcast(
        announcement_id=announcement.id,
        title=announcement.title,
        created_by=account.id,
        created_at=now,
        targets=req.targets.to_json(),
        villages=villages,
        priority=priority_name(req.priority),
        repeat=req.repeat,
        chime=req.chime,
        start_at=start,
        recurrence=rec.to_json() if rec else None,
        defer_quiet=req.defer_quiet,
        status="scheduled",
    )
    session.add(b)
    await session.flush()
    store.add_occurrences(
        session,
        b.id,
        (store.NewOccurrence(p.village, 0, start, p.at, p.quiet) for p in plan),
    )
    await session.flush()
    await store.refresh_status(session, b, now)
    ignored = [p.village for p in plan if p.quiet == "ignored"]
    audit_broadcast(
        session,
        account,
        b,
        "broadcast.create",
        quiet_hours_ignored=ignored,
        announcement_id=announcement.id,
        start_at=start.isoformat(),
        repeat=req.repeat,
        recurrence=b.recurrence,
        deferred=[p.village for p in plan if p.quiet == "deferred"],
    )
    return Created(b, plan, start, rec)


def audit_broadcast(
    session: AsyncSession,
    account: Account,
    b: Broadcast,
    action: str,
    *,
    quiet_hours_ignored: list[str],
    **detail: Any,
) -> None:
    """Audit a new broadcast, and separately an emergency with the quiet hours it ignored."""
    actor = devices_store.actor_of(account)
    villages = list(b.villages)
    region = villages[0] if len(villages) == 1 else account.region_code
    target = f"broadcast:{b.id}"
    devices_store.audit(
        session, actor, action, target, region, villages=villages, priority=b.priority, **detail
    )
    if Priority.parse(b.priority) >= Priority.EMERGENCY:
        note = f"emergency broadcast by {actor}"
        if quiet_hours_ignored:
            note += f"; ignored quiet hours in {len(quiet_hours_ignored)} village(s): " + ", ".join(
                quiet_hours_ignored
            )
        devices_store.audit(
            session,
            actor,
            "broadcast.emergency",
            target,
            region,
            note=note,
            villages=villages,
            quiet_hours_ignored=quiet_hours_ignored,
        )


def _quiet_of(
    info: dict[str, tuple[str, str | None]], village: str, config: DispatcherConfig
) -> str:
    own = info.get(village, ("", None))[1]
    return str(QuietHours.parse(own)) if own else str(config.default_quiet)


async def cancel_broadcast(
    session: AsyncSession, account: Account, broadcast_id: int, now: datetime, reason: str = ""
) -> tuple[Broadcast, list[str]]:
    """Cancel a broadcast the account may send to; returns it and the channel items to stop."""
    b = await store.get_broadcast(session, broadcast_id)
    await check_visible(session, account, b)
    if b.status in ("done", "partial", "missed", "cancelled"):
        raise NotCancellable(f"broadcast {b.id} is {b.status}", broadcast_status=b.status)
    to_stop = await store.cancel(session, b, account.id, now)
    devices_store.audit(
        session,
        devices_store.actor_of(account),
        "broadcast.cancel",
        f"broadcast:{b.id}",
        b.villages[0] if len(b.villages) == 1 else account.region_code,
        note=reason,
        stopped=to_stop,
    )
    return b, to_stop


async def check_visible(
    session: AsyncSession, account: Account, b: Broadcast, *, every: bool = True
) -> None:
    """403 unless the account may act on every (or, to read, any) village of the broadcast."""
    if account.role == "admin":
        return
    tree = await devices_store.load_tree(session)
    allowed = [v in tree and policy.can_broadcast_to(account, tree.node(v)) for v in b.villages]
    if not (all(allowed) if every else any(allowed)):
        raise NotPermitted(f"broadcast {b.id} reaches villages outside your region")


async def visible_villages(session: AsyncSession, account: Account) -> frozenset[str] | None:
    """The villages whose broadcasts the account may list (None: all)."""
    if account.role == "admin":
        return None
    tree = await devices_store.load_tree(session)
    return frozenset(
        code for code in policy.visible_regions(account, tree) if tree.node(code).kind == "village"
    )
