"""The dispatcher on a fake clock and fake channels, over real SQLite: it plays each occurrence
once at its time, follows the channel's reports, survives restarts and recurs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcast import store
from broadcast.dispatcher import Dispatcher, DispatcherConfig, build_parts
from broadcast.models import Broadcast, Delivery, Occurrence
from broadcast.onair import OnAir
from broadcast.planner import AirRequest, Staff
from broadcast.quiet import QuietHours
from devices.events import EventBus
from devices.models import Account, AuditEntry
from devices.targets import Targets
from streaming.items import Priority
from tests.broadcast.conftest import SEOUL, T0, add_account, add_device
from tests.broadcast.fakes import FakeChannels, FakeClock, FakeMedia

SEONGNAE = "goseong-eup-seongnae-ri"
SEOOE = "goseong-eup-seooe-ri"


async def send(
    sm: async_sessionmaker[AsyncSession],
    account: Account,
    channels: FakeChannels,
    clock: FakeClock,
    config: DispatcherConfig,
    announcement_id: int,
    villages: tuple[str, ...] = (SEONGNAE,),
    **kwargs: Any,
) -> int:
    onair = OnAir(sm, channels, FakeMedia(Path()), config, clock=clock)
    sent = await onair.send(
        Staff(account), AirRequest(announcement_id, Targets(villages=villages), **kwargs)
    )
    assert sent.broadcast is not None
    return sent.broadcast.id


async def status_of(sm: async_sessionmaker[AsyncSession], bid: int) -> str:
    async with sm() as session:
        return (await store.get_broadcast(session, bid)).status


async def occurrences(sm: async_sessionmaker[AsyncSession], bid: int) -> list[Occurrence]:
    async with sm() as session:
        return await store.occurrences_of(session, bid)


def test_parts_are_chime_announcement_times_repeat_chime(tmp_path: Any) -> None:
    a, s, e = tmp_path / "a", tmp_path / "s", tmp_path / "e"
    assert build_parts(a, 2, (s, e)) == (s, a, a, e)
    assert build_parts(a, 1, None) == (a,)


async def test_nothing_plays_before_its_time(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
) -> None:
    admin = await add_account(sm)
    bid = await send(
        sm, admin, channels, clock, config, await announcement(), start_at=T0 + timedelta(minutes=5)
    )
    assert await dispatcher.next_due() == T0 + timedelta(minutes=5)
    clock.advance(minutes=4, seconds=59)
    assert await dispatcher.dispatch_due() == 0
    assert channels.offered == []
    clock.advance(seconds=1)
    assert await dispatcher.dispatch_due() == 1
    item = channels.offered[0]
    assert item.village == SEONGNAE
    assert [p.name for p in item.parts] == ["chime-start.mp3", item.parts[1].name, "chime-end.mp3"]
    assert await dispatcher.dispatch_due() == 0  # never twice
    await dispatcher.process_reports()
    assert await status_of(sm, bid) == "playing"


async def test_repeat_twice_and_emergency_chime(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
) -> None:
    admin = await add_account(sm)
    ann = await announcement()
    await send(sm, admin, channels, clock, config, ann, repeat=2, priority=Priority.EMERGENCY)
    await dispatcher.dispatch_due()
    names = [p.name for p in channels.offered[0].parts]
    assert names == ["emergency-start.mp3", f"a{ann}.mp3", f"a{ann}.mp3", "emergency-end.mp3"]


async def test_outcome_per_box_reached_and_missed(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
    events: EventBus,
) -> None:
    sub = events.subscribe()
    admin = await add_account(sm)
    d1 = await add_device(sm, SEONGNAE, "마을회관")
    d2 = await add_device(sm, SEOOE, "정자나무")
    d3 = await add_device(sm, SEOOE, "항구")  # disconnected
    channels.connected = {SEONGNAE: {d1}, SEOOE: {d2}}
    bid = await send(
        sm, admin, channels, clock, config, await announcement(), villages=(SEONGNAE, SEOOE)
    )
    await dispatcher.dispatch_due()
    await dispatcher.process_reports()
    clock.advance(seconds=30)
    channels.finish(SEONGNAE)
    channels.finish(SEOOE)
    await dispatcher.process_reports()
    assert await status_of(sm, bid) == "partial"
    async with sm() as session:
        b = await store.get_broadcast(session, bid)
        reports = {
            r.village: r
            for r in await store.village_reports(
                session, b, await store.occurrences_of(session, bid)
            )
        }
    assert reports[SEONGNAE].status == "done"
    seooe = reports[SEOOE].to_json(SEOUL)["speakers"]
    assert seooe["reached_devices"] == [{"id": d2, "name": "정자나무"}]
    assert [(m["id"], m["name"], m["online_at_start"]) for m in seooe["missed_devices"]] == [
        (d3, "항구", False)
    ]
    types = [sub.queue.get_nowait()["type"] for _ in range(sub.queue.qsize())]
    assert types.count("broadcast.started") == 2
    assert types.count("broadcast.ended") == 2


async def test_equal_priority_queues_and_higher_preempts(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
) -> None:
    admin = await add_account(sm)
    first = await send(sm, admin, channels, clock, config, await announcement("첫째"))
    await dispatcher.dispatch_due()
    second = await send(sm, admin, channels, clock, config, await announcement("둘째"))
    await dispatcher.dispatch_due()
    await dispatcher.process_reports()
    assert await status_of(sm, first) == "playing"
    assert await status_of(sm, second) == "playing"  # dispatched, queued behind the first
    onair = OnAir(sm, channels, FakeMedia(Path()), config, clock=clock)
    plan = await onair.plan(
        Staff(admin),
        AirRequest(
            await _ann_id(sm, "첫째"),
            Targets(villages=(SEONGNAE,)),
            priority=Priority.EMERGENCY,
            dry_run=True,
        ),
    )
    assert plan.entries[0].outcome == "preempts"
    assert plan.entries[0].preempted == "첫째"
    emergency = await send(
        sm, admin, channels, clock, config, await _ann_id(sm, "첫째"), priority=Priority.EMERGENCY
    )
    await dispatcher.dispatch_due()
    await dispatcher.process_reports()
    assert await status_of(sm, first) == "partial"  # cut by the emergency
    assert await status_of(sm, emergency) == "playing"
    channels.finish(SEONGNAE)
    channels.finish(SEONGNAE)  # then the queued second one
    await dispatcher.process_reports()
    assert await status_of(sm, emergency) == "done"
    assert await status_of(sm, second) == "done"


async def _ann_id(sm: Any, title: str) -> int:
    from recordings.models import Announcement

    async with sm() as session:
        return (
            await session.scalars(select(Announcement.id).where(Announcement.title == title))
        ).first()


async def test_missed_while_down_beyond_validity_plays_never(
    sm: Any, channels: FakeChannels, clock: FakeClock, config: Any, announcement: Any, tmp_path: Any
) -> None:
    admin = await add_account(sm)
    ann = await announcement()
    late_ok = await send(
        sm, admin, channels, clock, config, ann, start_at=T0 + timedelta(minutes=1)
    )
    too_late = await send(
        sm, admin, channels, clock, config, ann, start_at=T0 + timedelta(seconds=30)
    )
    emergency = await send(
        sm,
        admin,
        channels,
        clock,
        config,
        ann,
        start_at=T0 + timedelta(seconds=30),
        priority=Priority.EMERGENCY,
    )
    # The server was down from T0 to T0 + 10 min 45 s.
    clock.set(T0 + timedelta(minutes=10, seconds=45))
    d = Dispatcher(sm, channels, FakeMedia(tmp_path, chimes=False), config, clock=clock)
    d.attach()
    await d.recover()
    assert await d.dispatch_due() == 2
    assert {i.broadcast_id for i in channels.offered} == {late_ok, emergency}
    assert await status_of(sm, too_late) == "missed"
    async with sm() as session:
        audit = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "broadcast.missed"))
        )
    assert [a.target for a in audit] == [f"broadcast:{too_late}"]


async def test_a_broadcast_never_starts_after_it_expires(
    sm: Any, channels: FakeChannels, clock: FakeClock, config: Any, announcement: Any, tmp_path: Any
) -> None:
    admin = await add_account(sm)
    ann = await announcement()
    kept = await send(sm, admin, channels, clock, config, ann, start_at=T0 + timedelta(minutes=1),
                      valid_until=T0 + timedelta(minutes=30))  # fmt: skip
    expired = await send(sm, admin, channels, clock, config, ann,
                         start_at=T0 + timedelta(minutes=1), valid_until=T0 + timedelta(minutes=2),
                         priority=Priority.EMERGENCY)  # fmt: skip
    # down from T0 to T0 + 5 min: inside every validity window, but past one broadcast's expiry
    clock.set(T0 + timedelta(minutes=5))
    d = Dispatcher(sm, channels, FakeMedia(tmp_path, chimes=False), config, clock=clock)
    d.attach()
    await d.recover()
    assert await d.dispatch_due() == 1
    assert {i.broadcast_id for i in channels.offered} == {kept}
    assert await status_of(sm, expired) == "missed"
    (occ,) = await occurrences(sm, expired)
    assert "expired" in occ.note


async def test_dispatched_but_never_started_before_a_crash_is_still_due(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
    tmp_path: Any,
) -> None:
    """Issue 11 item 11: the point of no return is the channel's ``started`` report. A row
    committed ``dispatched`` whose item never started (the process died first) plays after the
    restart, once; so does one that waited in a channel's queue (memory only) behind another."""
    admin = await add_account(sm)
    first = await send(sm, admin, channels, clock, config, await announcement("첫째"))
    second = await send(sm, admin, channels, clock, config, await announcement("둘째"))
    await dispatcher.dispatch_due()  # the first plays, the second is queued behind it
    await dispatcher.process_reports()
    assert await status_of(sm, first) == "playing"
    assert [o.status for o in await occurrences(sm, second)] == ["dispatched"]
    third = await send(sm, admin, channels, clock, config, await announcement("셋째"))
    async with sm() as session:  # claimed (committed dispatched), the process dies before offering
        await store.mark_dispatched(
            session, [o.id for o in await store.occurrences_of(session, third)], clock.now()
        )
        await session.commit()
    clock.advance(seconds=3)  # back 3 s later, well inside the validity window
    fresh = FakeChannels(clock)
    d = Dispatcher(sm, fresh, FakeMedia(tmp_path), config, clock=clock)
    d.attach()
    await d.recover()
    assert await status_of(sm, first) == "partial"  # it was cut: never replayed
    assert await d.dispatch_due() == 2
    assert [i.broadcast_id for i in fresh.offered] == [second, third]
    await d.process_reports()
    fresh.finish(SEONGNAE)
    fresh.finish(SEONGNAE)
    await d.process_reports()
    assert await status_of(sm, second) == "done"
    assert await status_of(sm, third) == "done"
    again = Dispatcher(sm, FakeChannels(clock), FakeMedia(tmp_path), config, clock=clock)
    await again.recover()
    assert await again.dispatch_due() == 0  # played once: never again
    async with sm() as session:
        missed = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "broadcast.missed"))
        )
    assert missed == []


async def test_cancel_stops_it_where_it_plays_and_drops_scheduled_ones(
    onair: OnAir,
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
) -> None:
    admin = await add_account(sm)
    ann = await announcement()
    now_id = await send(sm, admin, channels, clock, config, ann)
    later_id = await send(sm, admin, channels, clock, config, ann, start_at=T0 + timedelta(hours=1))
    await dispatcher.dispatch_due()
    await dispatcher.process_reports()
    for bid in (now_id, later_id):
        await onair.cancel(Staff(admin), bid)
    await dispatcher.process_reports()
    assert channels.channels[SEONGNAE].playing is None
    assert await status_of(sm, now_id) == "cancelled"
    assert await status_of(sm, later_id) == "cancelled"
    clock.advance(hours=2)
    assert await dispatcher.dispatch_due() == 0


async def test_daily_recurrence_generates_the_next_occurrence(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
) -> None:
    admin = await add_account(sm)
    start = T0 + timedelta(hours=1)  # 15:00 in Seoul
    bid = await send(
        sm,
        admin,
        channels,
        clock,
        config,
        await announcement(),
        start_at=start,
        recurrence={"freq": "daily", "until": "2026-11-27"},
    )
    for day in range(3):
        clock.set(start + timedelta(days=day))
        assert await dispatcher.dispatch_due() == 1
        await dispatcher.process_reports()
        channels.finish(SEONGNAE)
        await dispatcher.process_reports()
        expected = "done" if day == 2 else "scheduled"
        assert await status_of(sm, bid) == expected
    occs = await occurrences(sm, bid)
    assert [o.due_at.astimezone(SEOUL).day for o in occs] == [25, 26, 27]
    assert await dispatcher.next_due() is None


async def test_deferred_by_quiet_hours_plays_at_six(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
) -> None:
    clock.set(T0 + timedelta(hours=7, minutes=30))  # 21:30 in Seoul
    officer = await add_account(sm, "district", "hai-myeon")
    bid = await send(
        sm,
        officer,
        channels,
        clock,
        config,
        await announcement(region="hai-myeon"),  # made in the officer's district: visible
        villages=("hai-myeon-deokho-ri",),
        defer_quiet=True,
    )
    occ = (await occurrences(sm, bid))[0]
    assert occ.due_at.astimezone(SEOUL).hour == 6
    clock.set(occ.due_at - timedelta(seconds=1))
    assert await dispatcher.dispatch_due() == 0
    clock.set(occ.due_at)
    assert await dispatcher.dispatch_due() == 1


async def test_timer_loop_wakes_at_the_time_and_on_poke(
    sm: Any, channels: FakeChannels, config: Any, announcement: Any, tmp_path: Any
) -> None:
    """The real loop with the real clock: armed to the earliest row, re-armed by poke()."""
    import asyncio

    from broadcast.dispatcher import SystemClock

    clock = SystemClock()
    config = DispatcherConfig(tz=SEOUL, default_quiet=QuietHours.parse("off"))  # any time of day
    onair = OnAir(sm, channels, FakeMedia(tmp_path, chimes=False), config, clock=clock)
    d = onair.dispatcher
    await d.start()
    try:
        admin = await add_account(sm)
        ann = await announcement()
        start = clock.now() + timedelta(seconds=0.5)
        sent = await onair.send(
            Staff(admin), AirRequest(ann, Targets(villages=(SEONGNAE,)), start_at=start)
        )  # send() pokes the timer
        for _ in range(100):
            if channels.offered:
                break
            await asyncio.sleep(0.02)
        late = clock.now() - start
        assert channels.offered, "not dispatched"
        assert timedelta(0) <= late < timedelta(seconds=1)
        assert sent.broadcast is not None
    finally:
        await d.stop()
    async with sm() as session:
        rows = list(await session.scalars(select(Broadcast)))
    assert rows[0].status == "playing"


class RefusingChannels(FakeChannels):
    """Channels that cannot read the item's files."""

    def offer(self, item: Any) -> Any:
        raise OSError("unreadable part")


async def test_an_item_the_channel_refuses_ends_missed_with_the_reason(
    sm: Any, clock: FakeClock, config: Any, announcement: Any, tmp_path: Any
) -> None:
    channels = RefusingChannels(clock)
    d = Dispatcher(sm, channels, FakeMedia(tmp_path, chimes=False), config, clock=clock)
    d.attach()
    admin = await add_account(sm)
    bid = await send(sm, admin, channels, clock, config, await announcement())
    assert await d.dispatch_due() == 0
    assert await status_of(sm, bid) == "missed"
    assert "unreadable part" in (await occurrences(sm, bid))[0].note


async def test_playing_when_the_server_died_ends_partial_not_replayed(
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
    tmp_path: Any,
) -> None:
    admin = await add_account(sm)
    bid = await send(sm, admin, channels, clock, config, await announcement())
    await dispatcher.dispatch_due()
    await dispatcher.process_reports()
    assert await status_of(sm, bid) == "playing"
    d = Dispatcher(sm, FakeChannels(clock), FakeMedia(tmp_path), config, clock=clock)
    await d.recover()
    assert await status_of(sm, bid) == "partial"
    assert await d.dispatch_due() == 0


async def test_claimed_ahead_then_cancelled_is_never_offered(
    onair: OnAir,
    sm: Any,
    dispatcher: Dispatcher,
    channels: FakeChannels,
    clock: FakeClock,
    config: Any,
    announcement: Any,
) -> None:
    import asyncio

    admin = await add_account(sm)
    bid = await send(
        sm, admin, channels, clock, config, await announcement(),
        start_at=T0 + timedelta(milliseconds=400),
    )  # fmt: skip
    task = asyncio.create_task(dispatcher.dispatch_due(timedelta(seconds=1)))
    for _ in range(100):
        if (await occurrences(sm, bid))[0].status == "dispatched":
            break
        await asyncio.sleep(0.01)
    await onair.cancel(Staff(admin), bid)
    assert await task == 0
    assert channels.offered == []
    assert await status_of(sm, bid) == "cancelled"


class Outage:
    """A sessionmaker whose database can be taken down (every new session fails)."""

    def __init__(self, sm: async_sessionmaker[AsyncSession]) -> None:
        self.sm = sm
        self.down = False

    def __call__(self) -> AsyncSession:
        if self.down:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database is down"))
        return self.sm()


async def test_reports_during_a_database_outage_are_kept_and_written_when_it_returns(
    sm: Any, channels: FakeChannels, clock: FakeClock, config: Any, announcement: Any, tmp_path: Any
) -> None:
    """Issue 11 item 14: the end report of a broadcast that played in full while the database was
    down is written once it returns: the broadcast does not stay ``playing``, and a later restart
    does not call it ``partial``."""
    import asyncio

    admin = await add_account(sm)
    box = await add_device(sm, SEONGNAE, "회관 스피커")
    channels.connected[SEONGNAE] = {box}
    bid = await send(sm, admin, channels, clock, config, await announcement())
    db = Outage(sm)
    d = Dispatcher(cast(Any, db), channels, FakeMedia(tmp_path, chimes=False), config, clock=clock)
    await d.start()
    try:
        for _ in range(100):
            if await status_of(sm, bid) == "playing":
                break
            await asyncio.sleep(0.02)
        assert await status_of(sm, bid) == "playing"
        db.down = True
        channels.finish(SEONGNAE)  # played in full to the box, while nothing can be written
        await asyncio.sleep(0.8)
        assert await status_of(sm, bid) == "playing"
        db.down = False
        for _ in range(100):
            if await status_of(sm, bid) != "playing":
                break
            await asyncio.sleep(0.05)
        assert await status_of(sm, bid) == "done"
    finally:
        db.down = False
        await d.stop()
    later = Dispatcher(sm, FakeChannels(clock), FakeMedia(tmp_path), config, clock=clock)
    await later.recover()
    assert await status_of(sm, bid) == "done"


async def test_reports_unwritten_at_shutdown_are_kept_on_disk_for_the_next_start(
    sm: Any, channels: FakeChannels, clock: FakeClock, config: Any, announcement: Any, tmp_path: Any
) -> None:
    """Issue 11 item 14: the database is down at the end of a broadcast and still down at the
    shutdown: the end report is kept in the data directory and written at the next start, so the
    restart does not call a broadcast that played in full ``partial``."""
    import asyncio

    admin = await add_account(sm)
    box = await add_device(sm, SEONGNAE, "회관 스피커")
    channels.connected[SEONGNAE] = {box}
    bid = await send(sm, admin, channels, clock, config, await announcement())
    pending = tmp_path / "reports-pending.jsonl"
    db = Outage(sm)
    media = FakeMedia(tmp_path, chimes=False)
    d = Dispatcher(cast(Any, db), channels, media, config, clock=clock, pending_reports=pending)
    await d.start()
    for _ in range(100):
        if await status_of(sm, bid) == "playing":
            break
        await asyncio.sleep(0.02)
    db.down = True
    channels.finish(SEONGNAE)
    await asyncio.sleep(0.2)
    await d.stop()  # still down
    assert pending.exists()
    assert await status_of(sm, bid) == "playing"
    later = Dispatcher(sm, FakeChannels(clock), media, config, clock=clock, pending_reports=pending)
    await later.start()
    await later.stop()
    assert await status_of(sm, bid) == "done"
    assert not pending.exists()
    async with sm() as session:
        occ = (await store.occurrences_of(session, bid))[0]
        rows = list(await session.scalars(select(Delivery).where(Delivery.occurrence_id == occ.id)))
    assert [(r.device_id, r.reached) for r in rows] == [(box, True)]
