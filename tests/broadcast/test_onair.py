"""The one door to the air: a scheduled broadcast, a system sender's emergency and a live session
go through the same service (``OnAir``), once against a fake ``ChannelPort`` and once through the
real channels (``HubPort`` over a ``ChannelHub`` with its pacing loop), with the same outcome."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcast import store
from broadcast.dispatcher import DispatcherConfig
from broadcast.errors import UnknownAnnouncement
from broadcast.onair import OnAir
from broadcast.planner import AirRequest, Staff, System
from devices.events import EventBus
from devices.models import AuditEntry
from devices.targets import Targets
from streaming.hub import ChannelHub, HubPort
from streaming.items import ChannelPort, ItemReport, Priority
from tests.broadcast.conftest import add_account, add_announcement
from tests.broadcast.fakes import FakeChannels, FakeClock, FakeMedia
from tests.broadcast.support import tone_mp3

VILLAGE = "goseong-eup-seongnae-ri"


class Air(Protocol):
    """A port and a way to let the item playing in a village play out."""

    port: ChannelPort

    async def play_out(self, village: str) -> None: ...


class FakeAir:
    def __init__(self, clock: FakeClock) -> None:
        self.channels = FakeChannels(clock)
        self.port: ChannelPort = self.channels

    async def play_out(self, village: str) -> None:
        self.channels.finish(village)


class RealAir:
    def __init__(self) -> None:
        self.hub = ChannelHub()
        self.port: ChannelPort = HubPort(self.hub)
        self.started: dict[str, set[str]] = {}
        self.ended: set[str] = set()
        self.hub.add_report_listener(self._on_report)

    def _on_report(self, report: ItemReport) -> None:
        if report.event == "started":
            self.started.setdefault(report.village, set()).add(report.item_id)
        else:
            self.ended.add(report.item_id)

    async def play_out(self, village: str) -> None:
        for _ in range(200):  # real time: a 1 s tone
            if self.started.get(village, set()) <= self.ended:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"still playing in {village}: {self.hub.now_playing(village)}")


@pytest.fixture(params=["fake", "real"])
async def air(request: Any, clock: FakeClock) -> AsyncIterator[Air]:
    if request.param == "fake":
        yield FakeAir(clock)
        return
    real = RealAir()
    task = asyncio.create_task(real.hub.run())
    yield real
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _ready(sm: async_sessionmaker[AsyncSession], root: Path, title: str) -> int:
    ann = await add_announcement(sm, root, title)
    (root / f"a{ann}.mp3").write_bytes(tone_mp3(1.0))  # a real channel-format file
    return ann


async def _statuses(sm: async_sessionmaker[AsyncSession], bid: int) -> list[str]:
    async with sm() as session:
        return [o.status for o in await store.occurrences_of(session, bid)]


async def test_scheduled_system_and_live_go_through_one_door(
    sm: async_sessionmaker[AsyncSession],
    air: Air,
    clock: FakeClock,
    config: DispatcherConfig,
    events: EventBus,
    tmp_path: Path,
) -> None:
    onair = OnAir(sm, air.port, FakeMedia(tmp_path), config, clock=clock, publish=events.publish)
    onair.dispatcher.attach()
    seen = events.subscribe()
    admin = Staff(await add_account(sm))
    routine = await _ready(sm, tmp_path, "경로잔치 안내")
    alert = await _ready(sm, tmp_path, "태풍 대피 안내")
    targets = Targets(villages=(VILLAGE,))

    # 1. a staff member's broadcast: the dry run is the plan that is executed
    req = AirRequest(routine, targets, chime=False)
    dry = await onair.plan(admin, req)
    sent = await onair.send(admin, req)
    assert sent.broadcast is not None
    assert [(p.village, p.outcome) for p in dry.entries] == [(VILLAGE, "plays_now")]
    assert sent.plan.entries == dry.entries
    assert await onair.dispatcher.dispatch_due() == 1
    await onair.dispatcher.process_reports()
    assert await _statuses(sm, sent.broadcast.id) == ["playing"]

    # 2. a system sender (a disaster alert) preempts it: no account, its reason in the audit log
    system = System("alert:KR-TEST-2026-0001")
    urgent = AirRequest(alert, targets, priority=Priority.EMERGENCY, chime=False)
    assert [p.outcome for p in (await onair.plan(system, urgent)).entries] == ["preempts"]
    sos = await onair.send(system, urgent)
    assert sos.broadcast is not None
    assert sos.broadcast.created_by is None
    assert await onair.dispatcher.dispatch_due() == 1
    await onair.dispatcher.process_reports()
    assert await _statuses(sm, sent.broadcast.id) == ["partial"]  # cut by the emergency
    await air.play_out(VILLAGE)
    await onair.dispatcher.process_reports()
    assert await _statuses(sm, sos.broadcast.id) == ["done"]

    # 3. a live session: the same planner (now, no deferral), rows, items and reports
    session = await onair.live.open_session(
        admin, targets, kind="source", priority=Priority.NORMAL, chime=False, title="생방송"
    )
    assert session.placements == {VILLAGE: "plays_now"}
    session.output.push_mp3(tone_mp3(1.0))
    await onair.dispatcher.process_reports()
    live_id = session.rows.broadcast_id
    assert await _statuses(sm, live_id) == ["playing"]
    await onair.live.end_session(session, "hung up")
    await air.play_out(VILLAGE)
    await onair.dispatcher.process_reports()
    assert await _statuses(sm, live_id) == ["done"]

    async with sm() as db:
        audit = list(await db.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    actions = [(a.action, a.actor.split(" ")[0]) for a in audit]
    assert ("broadcast.create", f"account:{admin.account.id}") in actions
    assert ("broadcast.create", "system:alert:KR-TEST-2026-0001") in actions
    assert ("broadcast.emergency", "system:alert:KR-TEST-2026-0001") in actions
    assert ("broadcast.live", f"account:{admin.account.id}") in actions
    started = []
    while not seen.queue.empty():
        event = seen.queue.get_nowait()
        if event["type"] == "broadcast.started":
            started.append(event["broadcast_id"])
    assert started == [sent.broadcast.id, sos.broadcast.id, live_id]
    await onair.stop()


async def test_an_announcement_one_may_not_see_answers_like_a_missing_one(
    sm: async_sessionmaker[AsyncSession],
    clock: FakeClock,
    config: DispatcherConfig,
    tmp_path: Path,
) -> None:
    """Issue 11 item 1: a village head cannot broadcast another district's unpublished draft by
    id, and neither the dry run nor the real request tells it apart from a missing id."""
    onair = OnAir(sm, FakeChannels(clock), FakeMedia(tmp_path), config, clock=clock)
    head = Staff(await add_account(sm, "village", VILLAGE))
    draft = await add_announcement(sm, tmp_path, "다른 면의 초안")  # the county's, unpublished
    targets = Targets(villages=(VILLAGE,))
    answers = []
    for ann_id in (draft, draft + 1000):
        for dry_run in (True, False):
            with pytest.raises(UnknownAnnouncement) as caught:
                await onair.send(head, AirRequest(ann_id, targets, dry_run=dry_run))
            answers.append(str(caught.value).replace(str(ann_id), "N"))
    assert len(set(answers)) == 1
    async with sm() as db:
        assert await store.list_broadcasts(db) == ([], 0)
