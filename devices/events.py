"""In-process publish/subscribe of events for the console and phones (``/api/v1/events``).

Publishing never waits: a subscriber whose queue is full misses events and is told so once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

__all__ = ["Event", "EventBus", "Subscription"]

Event = dict[str, Any]


class Subscription:
    """One subscriber's bounded queue of events."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        """Queue an event without waiting; remember an overflow."""
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True

    async def __aiter__(self) -> AsyncIterator[Event]:
        while True:
            yield await self.queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus._subs.discard(self)


class EventBus:
    """Fan events out to every subscriber without awaiting any of them."""

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def subscribe(self, maxsize: int = 256) -> Subscription:
        """A new subscription; close it when done."""
        sub = Subscription(self, maxsize)
        self._subs.add(sub)
        return sub

    def publish(self, type_: str, **data: Any) -> None:
        """Send ``{"type": type_, **data}`` to every subscriber."""
        event: Event = {"type": type_, **data}
        for sub in list(self._subs):
            sub.offer(event)

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are listening."""
        return len(self._subs)
