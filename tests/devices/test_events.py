"""The event bus: publishing never waits, a full subscriber is told it lost events."""

from __future__ import annotations

import asyncio

from devices.events import EventBus


async def test_every_subscriber_gets_each_event_in_order() -> None:
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe()
    bus.publish("broadcast.started", broadcast_id=1, village="v")
    bus.publish("broadcast.ended", broadcast_id=1, village="v")
    for sub in (a, b):
        assert (await sub.queue.get())["type"] == "broadcast.started"
        assert (await sub.queue.get()) == {
            "type": "broadcast.ended",
            "broadcast_id": 1,
            "village": "v",
        }


async def test_a_full_subscriber_overflows_without_blocking_others() -> None:
    bus = EventBus()
    slow = bus.subscribe(maxsize=2)
    fast = bus.subscribe(maxsize=1000)
    for i in range(500):
        bus.publish("tick", seq=i)
    assert slow.overflowed
    assert slow.queue.qsize() == 2
    assert fast.queue.qsize() == 500
    assert not fast.overflowed


async def test_closed_subscription_stops_receiving() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    sub.close()
    bus.publish("tick")
    assert bus.subscriber_count == 0
    assert sub.queue.empty()
    await asyncio.sleep(0)
