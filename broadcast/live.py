"""A broadcast that is already playing live: the same rules, rows and report as a scheduled one.

A live session (WebRTC publish or an Icecast source client) is checked like any broadcast
(policy, emergency right, quiet hours "now"), and gets a :class:`~broadcast.models.Broadcast` with
one ``dispatched`` occurrence per village before its items go on the channels. The items carry the
occurrences' ids (``b{id}-o{occ}-{village}``), so the dispatcher records their ``started`` and
``finished`` reports exactly as for a scheduled broadcast.

A broadcast needs an announcement, and a live one only exists once the session is over: the
broadcast points at a placeholder announcement (``source="live"``) until
:func:`attach_recording` moves it to the archived recording. :func:`drop_placeholder` fails the
placeholder when nothing could be recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from devices import policy
from devices import store as devices_store
from devices.errors import NotPermitted
from devices.models import Account
from devices.targets import Targets
from recordings import store as recordings_store
from recordings.models import Announcement
from streaming.items import Priority

from . import store
from .dispatcher import ITEM_ID, DispatcherConfig
from .errors import EmptyTarget, InQuietHours
from .models import Broadcast, Occurrence
from .priority import priority_name
from .quiet import QuietHours, decide_quiet
from .service import audit_broadcast

__all__ = [
    "LiveBroadcast",
    "abandon",
    "add_listeners",
    "attach_recording",
    "drop_placeholder",
    "interrupted",
    "start_live_broadcast",
]


@dataclass(frozen=True, slots=True)
class LiveBroadcast:
    """The rows of a live broadcast: its id, and the channel item id of each village."""

    broadcast_id: int
    placeholder_id: int
    items: dict[str, str]  # village → item id


async def start_live_broadcast(
    session: AsyncSession,
    account: Account,
    targets: Targets,
    *,
    priority: Priority,
    title: str,
    chime: bool,
    now: datetime,
    config: DispatcherConfig,
) -> LiveBroadcast:
    """Check a live session like a broadcast starting now and add its rows (uncommitted)."""
    if priority >= Priority.EMERGENCY and not policy.can_send_emergency(account):
        raise NotPermitted("only the county office may send emergency broadcasts")
    tree = await devices_store.load_tree(session)
    policy.check_targets(account, targets, tree, await devices_store.group_regions(session))
    resolution = await devices_store.resolve(session, targets)
    if not resolution.villages:
        raise EmptyTarget("the targets hold no village")
    villages = sorted(resolution.villages)
    info = await store.village_info(session, villages)
    refused: list[str] = []
    next_allowed: list[datetime] = []
    decisions = {}
    for village in villages:
        own_quiet = info.get(village, ("", None))[1]
        quiet = QuietHours.parse(own_quiet) if own_quiet else config.default_quiet
        decision = decide_quiet(now, quiet, config.tz, priority, defer=False)
        decisions[village] = decision
        if decision.outcome == "refused":
            refused.append(village)
            next_allowed.append(decision.next_allowed or now)
    if refused:
        until = max(next_allowed).astimezone(config.tz)
        raise InQuietHours(
            f"quiet hours in {', '.join(refused)}: going live is allowed from "
            f"{until:%Y-%m-%d %H:%M} (or as an emergency)",
            next_allowed=until.isoformat(),
            villages=refused,
        )
    placeholder = await recordings_store.create_announcement(
        session,
        title=title,
        source="live",
        created_by=account.id,
        region_code=account.region_code,
        meta={"live": True},
    )
    b = Broadcast(
        announcement_id=placeholder.id,
        title=title,
        created_by=account.id,
        created_at=now,
        targets=targets.to_json(),
        villages=villages,
        priority=priority_name(priority),
        repeat=1,
        chime=chime,
        start_at=now,
        status="playing",
    )
    session.add(b)
    await session.flush()
    occurrences = [
        Occurrence(
            broadcast_id=b.id,
            seq=0,
            village_code=village,
            nominal_at=now,
            due_at=now,
            status="dispatched",
            quiet=decisions[village].outcome,
            dispatched_at=now,
            note="live",
        )
        for village in villages
    ]
    session.add_all(occurrences)
    await session.flush()
    await store.refresh_status(session, b, now)
    ignored = [v for v in villages if decisions[v].outcome == "ignored"]
    audit_broadcast(session, account, b, "broadcast.live", quiet_hours_ignored=ignored)
    return LiveBroadcast(b.id, placeholder.id, {o.village_code: o.item_id for o in occurrences})


async def attach_recording(
    session: AsyncSession, live: LiveBroadcast, announcement_id: int
) -> None:
    """Point the live broadcast at its archived recording and remove the placeholder."""
    b = await store.get_broadcast(session, live.broadcast_id)
    b.announcement_id = announcement_id
    await session.flush()
    placeholder = await session.get(Announcement, live.placeholder_id)
    still_used = await session.scalar(
        select(Broadcast.id).where(Broadcast.announcement_id == live.placeholder_id).limit(1)
    )
    if placeholder is not None and still_used is None:
        await session.delete(placeholder)
        await session.flush()


async def drop_placeholder(session: AsyncSession, live: LiveBroadcast, reason: str) -> None:
    """Nothing was recorded: the placeholder stays as a ``failed`` announcement with the reason."""
    placeholder = await session.get(Announcement, live.placeholder_id)
    if placeholder is not None:
        placeholder.status = "failed"
        placeholder.error = reason
        await session.flush()


async def abandon(session: AsyncSession, live: LiveBroadcast) -> None:
    """The session never went on air (its WebRTC negotiation failed): remove its rows."""
    await session.execute(delete(Occurrence).where(Occurrence.broadcast_id == live.broadcast_id))
    await session.execute(delete(Broadcast).where(Broadcast.id == live.broadcast_id))
    await session.execute(delete(Announcement).where(Announcement.id == live.placeholder_id))
    await session.flush()


async def add_listeners(session: AsyncSession, item_id: str, listener_ids: set[int]) -> None:
    """Residents who heard an item outside the MP3 stream (WebRTC): add them to its report."""
    match = ITEM_ID.match(item_id)
    if match is None:
        return
    occ = await session.get(Occurrence, int(match[2]))
    if occ is not None:
        occ.listener_ids = sorted(set(occ.listener_ids or ()) | listener_ids)
        await session.flush()


async def interrupted(
    session: AsyncSession, broadcast_id: int
) -> tuple[LiveBroadcast, str, int | None, str | None] | None:
    """A live broadcast cut off by a restart: its rows, title, author and author's region."""
    b = await session.get(Broadcast, broadcast_id)
    if b is None:
        return None
    placeholder = await session.get(Announcement, b.announcement_id)
    if placeholder is None or placeholder.source != "live" or placeholder.original_path:
        return None  # already archived
    live = LiveBroadcast(b.id, placeholder.id, {})
    return live, b.title, b.created_by, placeholder.region_code
