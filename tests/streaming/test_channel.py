"""The channel core with a fake clock and fake transports: queue, preemption, bursts, accounting."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streaming.channel import Channel
from streaming.fanout import Connection
from streaming.items import ItemReport, PlayItem, Priority
from streaming.mp3 import SILENCE_FRAME

FRAME = bytes((0xFF, 0xFB, 0x54, 0xC4)) + bytes(188)  # a 64 kbps channel frame


class FakeClock:
    """Monotonic seconds that only move when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTransport:
    """A transport whose peer reads everything, or nothing (``stalled``)."""

    def __init__(self, stalled: bool = False) -> None:
        self.data = bytearray()
        self.buffered = 0
        self.stalled = stalled
        self.closing = False

    def write(self, data: bytes) -> None:
        self.data += data
        if self.stalled:
            self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def reports() -> list[ItemReport]:
    return []


@pytest.fixture
def channel(clock: FakeClock, reports: list[ItemReport]) -> Channel:
    return Channel(
        "v",
        tick_frames=5,
        burst_frames=20,
        backlog_bytes=4000,
        clock=clock,
        wall=lambda: datetime(2026, 11, 25, tzinfo=UTC),
        report=reports.append,
    )


def item(item_id: str, priority: Priority = Priority.NORMAL, live: bool = False) -> PlayItem:
    from pathlib import Path

    return PlayItem(item_id, "v", item_id.upper(), () if live else (Path("x.mp3"),), priority)


def run(channel: Channel, clock: FakeClock, seconds: float) -> None:
    """Advance the clock tick by tick, pumping like the hub does."""
    for _ in range(round(seconds / 0.12)):
        clock.now += 0.12
        channel.pump(clock.now)


def connect(channel: Channel, **kw: object) -> tuple[Connection, FakeTransport]:
    t = FakeTransport(stalled=bool(kw.pop("stalled", False)))
    conn = Connection(t, **kw)  # type: ignore[arg-type]
    channel.attach(conn)
    return conn, t


def test_new_connection_gets_a_burst_of_silence_when_idle(channel: Channel) -> None:
    _, t = connect(channel)
    assert bytes(t.data) == SILENCE_FRAME * 20


def test_item_frames_go_out_in_real_time(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    _, t = connect(channel)
    channel.offer(item("a"), [FRAME] * 100)
    assert [r.event for r in reports] == ["started"]
    run(channel, clock, 1.2)
    # 1.2 s = 50 frames, plus one tick sent at once and one tick of lead
    sent = t.data.count(FRAME[:4] + bytes(4))
    assert 55 <= sent <= 62
    run(channel, clock, 2.0)
    assert [r.event for r in reports] == ["started", "finished"]
    assert reports[-1].total_bytes == 100 * len(FRAME)


def test_emergency_preempts_at_once_and_routine_is_dropped(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    connect(channel)
    channel.offer(item("routine"), [FRAME] * 1000)
    run(channel, clock, 1.0)
    assert channel.predict(Priority.EMERGENCY).outcome == "preempts"
    placement, _ = channel.offer(item("sos", Priority.EMERGENCY), [SILENCE_FRAME] * 10)
    assert placement.preempted == "ROUTINE"
    assert [(r.item_id, r.event) for r in reports] == [
        ("routine", "started"),
        ("routine", "preempted"),
        ("sos", "started"),
    ]
    run(channel, clock, 1.0)
    assert reports[-1].event == "finished"
    assert channel.current is None
    assert len(channel.fanout) == 1


def test_queue_by_priority_then_first_come(channel: Channel, clock: FakeClock) -> None:
    channel.offer(item("a"), [FRAME] * 10)
    assert channel.offer(item("b"), [FRAME] * 10)[0].outcome == "queued"
    placement, _ = channel.offer(item("c", Priority.URGENT), [FRAME] * 10)
    assert placement.outcome == "preempts"
    channel.offer(item("d", Priority.URGENT), [FRAME] * 10)
    assert channel.predict(Priority.URGENT).ahead == ("C", "D")
    assert [p.item.item_id for p in sorted(channel.queue, key=lambda p: p.sort_key)] == ["d", "b"]


def test_cancel_playing_and_queued(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    channel.offer(item("a"), [FRAME] * 100)
    channel.offer(item("b"), [FRAME] * 100)
    assert channel.cancel("b")
    assert channel.cancel("a")
    assert not channel.cancel("zzz")
    assert [(r.item_id, r.event) for r in reports] == [
        ("a", "started"),
        ("b", "cancelled"),
        ("a", "cancelled"),
    ]


def test_device_bytes_count_what_each_box_received(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    connect(channel, device_id=1)
    channel.offer(item("a"), [FRAME] * 100)
    run(channel, clock, 1.0)
    connect(channel, device_id=2)  # mid-way: gets the burst, not the beginning
    run(channel, clock, 3.0)
    final = reports[-1]
    assert final.event == "finished"
    assert final.device_bytes[1] == final.total_bytes == 100 * len(FRAME)
    assert 0 < final.device_bytes[2] < final.total_bytes
    assert final.reached() == {1}


def test_reconnect_does_not_count_burst_twice_and_gap_is_missed(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    first, _ = connect(channel, device_id=1)
    channel.offer(item("a"), [FRAME] * 200)
    run(channel, clock, 1.0)
    channel.detach(first)
    run(channel, clock, 1.0)
    connect(channel, device_id=1)
    run(channel, clock, 5.0)
    final = reports[-1]
    assert final.device_bytes[1] < final.total_bytes
    # each frame counted at most once
    assert final.device_bytes[1] % len(FRAME) == 0


def test_burst_never_replays_a_finished_item(channel: Channel, clock: FakeClock) -> None:
    channel.offer(item("a"), [FRAME] * 10)
    connect(channel)
    run(channel, clock, 0.36)
    assert channel.current is None
    _, t = connect(channel)
    assert bytes(t.data) == SILENCE_FRAME * 20


def test_slow_listener_is_dropped_and_others_keep_going(channel: Channel, clock: FakeClock) -> None:
    closed: list[str] = []
    _, t_fast = connect(channel)
    connect(channel, stalled=True, on_close=closed.append)
    channel.offer(item("a"), [FRAME] * 1000)
    run(channel, clock, 1.0)
    assert closed == ["too slow"]
    assert channel.fanout.dropped_total == 1
    assert len(channel.fanout) == 1
    before = len(t_fast.data)
    run(channel, clock, 1.0)
    assert len(t_fast.data) - before == pytest.approx(8000, rel=0.15)


def test_a_box_holds_one_connection(channel: Channel) -> None:
    closed: list[str] = []
    connect(channel, device_id=7, on_close=closed.append)
    second, _ = connect(channel, device_id=7)
    assert closed == ["replaced"]
    assert channel.devices == {7: second}
    assert len(channel.fanout) == 1


def test_live_frames_go_out_as_they_arrive(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    _, t = connect(channel, device_id=3)
    _, feed = channel.offer(item("live", live=True), [])
    assert feed is not None
    size = len(t.data)
    feed.push(FRAME * 2 + FRAME[:50])
    assert len(t.data) - size == 2 * len(FRAME)
    feed.push(FRAME[50:])
    assert len(t.data) - size == 3 * len(FRAME)
    clock.now += 0.072
    feed.close()
    assert feed.closed
    run(channel, clock, 0.24)
    assert [r.event for r in reports] == ["started", "finished"]
    assert reports[-1].total_bytes == 3 * len(FRAME)
    assert reports[-1].reached() == {3}


def test_preempted_live_feed_reads_closed(channel: Channel) -> None:
    _, feed = channel.offer(item("live", live=True), [])
    assert feed is not None
    channel.offer(item("sos", Priority.EMERGENCY), [FRAME])
    assert feed.closed
    feed.push(FRAME)  # ignored


def test_a_preempted_item_offered_again_from_its_report_waits_its_turn(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    routine = item("routine")

    def again(report: ItemReport) -> None:
        if report.event == "preempted":
            channel.offer(PlayItem("routine-2", "v", "ROUTINE", routine.parts), [FRAME] * 5)

    def report(r: ItemReport) -> None:
        reports.append(r)
        again(r)

    channel._report = report
    channel.offer(routine, [FRAME] * 100)
    channel.offer(item("sos", Priority.EMERGENCY), [FRAME] * 5)
    assert channel.current is not None
    assert channel.current.item.item_id == "sos"
    run(channel, clock, 1.0)
    assert [(r.item_id, r.event) for r in reports] == [
        ("routine", "started"),
        ("routine", "preempted"),
        ("sos", "started"),
        ("sos", "finished"),
        ("routine-2", "started"),
        ("routine-2", "finished"),
    ]


@pytest.mark.parametrize(("crowd", "batches"), [(1, 1), (2, 2), (3, 3), (8, 4)])
def test_a_crowd_gets_bigger_batches_less_often(
    channel: Channel, clock: FakeClock, crowd: int, batches: int
) -> None:
    from streaming import channel as channel_module

    transports = [connect(channel)[1] for _ in range(crowd * channel_module.CROWD - 1)]
    channel.offer(item("a"), [FRAME] * 1000)
    run(channel, clock, 1.0)
    sizes: list[int] = []
    for _ in range(24):
        before = len(transports[0].data)
        clock.now += 0.12
        channel.pump(clock.now)
        sizes.append(len(transports[0].data) - before)
    assert len(sizes) - sizes.count(0) == pytest.approx(24 / batches, abs=1)
    assert sum(sizes) == pytest.approx(24 * 5 * len(FRAME), abs=batches * 5 * len(FRAME))


def test_residents_on_other_renditions_count_as_listeners(
    channel: Channel, clock: FakeClock, reports: list[ItemReport]
) -> None:
    channel.side_listeners[99] = 5  # an Ogg connection held by listener 5
    channel.offer(item("a"), [FRAME] * 100)
    channel.note_listener(6)  # an HLS segment fetched by listener 6
    connect(channel, listener_id=7)
    channel.cancel("a")
    assert reports[0].listener_ids == {5}
    assert reports[-1].listener_ids == {5, 6, 7}
