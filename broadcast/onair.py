"""The one door to the air: every path that puts audio on a village channel goes through here.

Who calls it: ``web/api_broadcasts.py`` (create, dry run, cancel), ``web/live.py`` (WebRTC and
Icecast-source sessions, through :attr:`OnAir.live`), and system senders (``System("alert:…")``,
``System("recurrence")``). What it calls: the pure planner (:func:`broadcast.planner.plan_air`),
``broadcast.store`` for rows, the audit log, the event bus, and the channels through one
:class:`~streaming.items.ChannelPort` (the scheduler, :class:`~broadcast.dispatcher.Dispatcher`, and
the live desk, :class:`~broadcast.live.LiveDesk`, are its parts).

Every change is written the same way: rows, audit entries, one commit, then the events
(:meth:`OnAir._commit`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices import policy
from devices import store as devices_store
from devices.errors import NotPermitted
from devices.models import Account
from recordings import store as recordings_store
from recordings.models import Announcement
from streaming.items import ChannelPort, Priority

from . import store
from .dispatcher import Clock, Dispatcher, DispatcherConfig, Media, SystemClock
from .errors import NotCancellable, UnknownBroadcast
from .live import Ingest, LiveConfig, LiveDesk, LiveRows
from .models import Broadcast, Occurrence
from .planner import (
    Actor,
    AirRequest,
    Facts,
    Plan,
    Staff,
    System,
    actor_name,
    plan_air,
    target_villages,
)
from .priority import priority_name

__all__ = ["OnAir", "Sent", "check_visible", "visible_villages"]

Publish = Callable[..., None]


@dataclass(frozen=True, slots=True)
class Sent:
    """The broadcast created (None on a dry run) and its plan."""

    broadcast: Broadcast | None
    plan: Plan


@dataclass(frozen=True, slots=True)
class _Audit:
    actor: str
    action: str
    target: str
    region: str | None
    note: str
    detail: dict[str, Any]


class OnAir:
    """The on-air service: plan, send, go live, cancel; the scheduler and the live desk inside."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: ChannelPort,
        media: Media,
        rules: DispatcherConfig,
        *,
        clock: Clock | None = None,
        publish: Publish | None = None,
        ingest: Ingest | None = None,
        live: LiveConfig | None = None,
        pending_reports: Path | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.channels = channels
        self.rules = rules
        self.clock: Clock = clock or SystemClock()
        self._publish: Publish = publish or (lambda type_, **data: None)
        self.dispatcher = Dispatcher(
            sessionmaker, channels, media, rules, clock=self.clock, publish=self._publish,
            pending_reports=pending_reports,
        )  # fmt: skip
        self.live = LiveDesk(self, media, ingest, live)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover after a restart (scheduler, then cut-off live recordings), then run."""
        await self.dispatcher.start()
        await self.live.recover()

    async def shutdown(self) -> None:
        """The first step of a shutdown, while the streams are still open: the scheduler claims
        and offers nothing more (what comes due stays ``scheduled``, played after the restart),
        and live sessions end (their closing reports still reach the report writer)."""
        self.dispatcher.pause()
        await self.live.close()

    async def stop(self) -> None:
        """Stop the scheduler's timer first, end live sessions, then write the last reports."""
        await self.shutdown()
        await self.dispatcher.stop()

    # --- planning --------------------------------------------------------------------------------

    async def _facts(self, session: AsyncSession, actor: Actor, req: AirRequest) -> Facts:
        ann = None
        if req.announcement_id is not None:
            ann = await session.get(Announcement, req.announcement_id)
        return Facts(
            tree=await devices_store.load_tree(session),
            group_regions=await devices_store.group_regions(session),
            group_members=await devices_store.group_members(session),
            devices_by_village=await devices_store.devices_by_village(session),
            announcement=ann,
        )

    async def _plan(self, session: AsyncSession, actor: Actor, req: AirRequest) -> Plan:
        now = self.clock.now()
        facts = await self._facts(session, actor, req)
        villages = target_villages(actor, req, facts)  # rights and targets before any channel
        placements = {}
        if req.starts_now(now):
            for village in sorted(villages):
                placements[village] = await self.channels.predict(village, req.priority)
        facts = replace(
            facts, villages=await store.village_info(session, villages), placements=placements
        )
        return plan_air(actor, req, facts, now, self.rules)

    async def plan(self, actor: Actor, req: AirRequest) -> Plan:
        """What the request would do (the dry run): the same plan :meth:`send` executes."""
        async with self.sessionmaker() as session:
            return await self._plan(session, actor, req)

    # --- sending ---------------------------------------------------------------------------------

    async def send(self, actor: Actor, req: AirRequest) -> Sent:
        """Plan a scheduled (or recurring, or immediate) broadcast and, unless a dry run, add it."""
        if req.live:
            raise ValueError("a live session goes through OnAir.live")
        async with self.sessionmaker() as session:
            plan = await self._plan(session, actor, req)
            if req.dry_run:
                return Sent(None, plan)
            assert req.announcement_id is not None
            ann = await session.get(Announcement, req.announcement_id)
            assert ann is not None
            b = self._broadcast(actor, req, plan, ann.id, ann.title, status="scheduled")
            session.add(b)
            await session.flush()
            store.add_occurrences(
                session,
                b.id,
                (
                    store.NewOccurrence(p.village, 0, plan.start, p.at, p.quiet)
                    for p in plan.entries
                ),
            )
            await store.refresh_status(session, b, self.clock.now())
            await self._commit(
                session,
                self._audits(
                    actor,
                    b,
                    "broadcast.create",
                    plan,
                    announcement_id=ann.id,
                    start_at=plan.start.isoformat(),
                    repeat=req.repeat,
                    recurrence=b.recurrence,
                    deferred=plan.quiet("deferred"),
                ),
            )
        self.dispatcher.poke()
        return Sent(b, plan)

    async def open_live(self, actor: Actor, req: AirRequest, title: str) -> LiveRows:
        """Plan a live session (a broadcast starting now) and add its rows: a placeholder
        announcement and one ``dispatched`` occurrence per village (committed)."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            plan = await self._plan(session, actor, req)
            account = actor.account if isinstance(actor, Staff) else None
            placeholder = await recordings_store.create_announcement(
                session,
                title=title,
                source="live",
                created_by=account.id if account else None,
                region_code=account.region_code if account else None,
                meta={"live": True},
            )
            b = self._broadcast(actor, req, plan, placeholder.id, title, status="playing")
            session.add(b)
            await session.flush()
            occs = [
                Occurrence(
                    broadcast_id=b.id,
                    seq=0,
                    village_code=p.village,
                    nominal_at=now,
                    due_at=now,
                    status="dispatched",
                    quiet=p.quiet,
                    dispatched_at=now,
                    note="live",
                )
                for p in plan.entries
            ]
            session.add_all(occs)
            await session.flush()
            await store.refresh_status(session, b, now)
            await self._commit(session, self._audits(actor, b, "broadcast.live", plan))
        return LiveRows(b.id, placeholder.id, {o.village_code: o.ref for o in occs}, plan)

    def _broadcast(
        self,
        actor: Actor,
        req: AirRequest,
        plan: Plan,
        announcement_id: int,
        title: str,
        status: str,
    ) -> Broadcast:
        return Broadcast(
            announcement_id=announcement_id,
            title=title,
            created_by=actor.account.id if isinstance(actor, Staff) else None,
            created_at=self.clock.now(),
            targets=req.targets.to_json(),
            villages=plan.villages,
            priority=priority_name(req.priority),
            repeat=req.repeat,
            chime=req.chime,
            start_at=plan.start,
            recurrence=plan.recurrence.to_json() if plan.recurrence else None,
            defer_quiet=req.defer_quiet,
            valid_until=req.valid_until,
            status=status,
        )

    def _audits(
        self, actor: Actor, b: Broadcast, action: str, plan: Plan, **detail: Any
    ) -> list[_Audit]:
        """A new broadcast's entry, and an emergency's with the quiet hours it ignored."""
        villages = list(b.villages)
        region = villages[0] if len(villages) == 1 else _region_of(actor)
        target = f"broadcast:{b.id}"
        if isinstance(actor, System):
            detail["reason"] = actor.reason
        who = actor_name(actor)
        out = [
            _Audit(
                who,
                action,
                target,
                region,
                "",
                dict(villages=villages, priority=b.priority, **detail),
            )
        ]
        if Priority.parse(b.priority) >= Priority.EMERGENCY:
            ignored = plan.quiet("ignored")
            note = f"emergency broadcast by {actor_name(actor)}"
            if ignored:
                note += f"; ignored quiet hours in {len(ignored)} village(s): " + ", ".join(ignored)
            out.append(
                _Audit(
                    who,
                    "broadcast.emergency",
                    target,
                    region,
                    note,
                    {"villages": villages, "quiet_hours_ignored": ignored},
                )
            )
        return out

    async def _commit(
        self,
        session: AsyncSession,
        audits: Iterable[_Audit],
        events: Iterable[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        """Audit, commit, then publish: the one way the service writes a change."""
        for a in audits:
            devices_store.audit(session, a.actor, a.action, a.target, a.region, a.note, **a.detail)
        await session.commit()
        for type_, data in events:
            self._publish(type_, **data)

    # --- cancel ----------------------------------------------------------------------------------

    async def cancel(self, actor: Actor, broadcast_id: int, reason: str = "") -> Broadcast:
        """Cancel a broadcast the actor may send to: drop what is scheduled, stop what plays."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            b = await store.get_broadcast(session, broadcast_id)
            if isinstance(actor, Staff):
                await check_visible(session, actor.account, b)
            if b.status in ("done", "partial", "missed", "cancelled"):
                raise NotCancellable(f"broadcast {b.id} is {b.status}", broadcast_status=b.status)
            to_stop = await store.cancel(
                session, b, actor.account.id if isinstance(actor, Staff) else None, now
            )
            region = b.villages[0] if len(b.villages) == 1 else _region_of(actor)
            await self._commit(
                session,
                [
                    _Audit(
                        actor_name(actor),
                        "broadcast.cancel",
                        f"broadcast:{b.id}",
                        region,
                        reason,
                        {"stopped": [r.key for r in to_stop]},
                    )
                ],
            )
        await self.dispatcher.stop_items(to_stop)
        await self.dispatcher.process_reports()  # the channels' "cancelled": the answer is final
        self.dispatcher.poke()
        async with self.sessionmaker() as session:
            return await store.get_broadcast(session, b.id)


def _region_of(actor: Actor) -> str | None:
    return actor.account.region_code if isinstance(actor, Staff) else None


async def check_visible(
    session: AsyncSession, account: Account, b: Broadcast, *, every: bool = True
) -> None:
    """The one visibility rule (``devices.policy.visibility``) applied to a broadcast: one that
    reaches none of the account's villages answers exactly like a missing one; acting on it
    (``every``: cancel) needs every one of its villages."""
    visible = policy.visibility(account, await devices_store.load_tree(session))
    if not visible.sees_any(b.villages):
        raise UnknownBroadcast(f"no broadcast {b.id}")
    if every and not visible.sees_all(b.villages):
        raise NotPermitted(f"broadcast {b.id} reaches villages outside your region")


async def visible_villages(session: AsyncSession, account: Account) -> frozenset[str] | None:
    """The villages whose broadcasts the account may list (None: all)."""
    return policy.visibility(account, await devices_store.load_tree(session)).villages
