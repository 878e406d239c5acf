"""Fakes that implement the real protocols: a settable clock, village channels, media files."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from recordings.models import Rendition
from streaming.errors import PartUnreadable
from streaming.items import (
    ChannelPort,
    ItemReport,
    LiveInput,
    Placement,
    PlayItem,
    Priority,
    Reader,
    ReportListener,
)

Event = Literal["started", "finished", "preempted", "cancelled"]


class FakeClock:
    """A clock that only moves when told."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> datetime:
        self._now += timedelta(**kwargs)
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now


@dataclass
class _Channel:
    playing: PlayItem | None = None
    queue: list[PlayItem] = field(default_factory=list)


class FakeFeed:
    """A live item's input: keeps what is pushed."""

    def __init__(self) -> None:
        self.data = bytearray()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, data: bytes) -> None:
        if not self._closed:
            self.data += data

    def close(self) -> None:
        self._closed = True


class FakeChannels:
    """Village channels with the real queueing rules: one item plays; equal priorities queue in
    order; a higher one preempts at once. Items end when the test says so (:meth:`finish`).
    Implements :class:`~streaming.items.ChannelPort` (checked by mypy: see ``_port`` below)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.channels: dict[str, _Channel] = {}
        self.listeners: list[ReportListener] = []
        self.connected: dict[str, set[int]] = {}
        self.offered: list[PlayItem] = []
        self.live_listeners: dict[str, frozenset[int]] = {}
        self.readers: dict[str, list[Reader]] = {}
        self.feeds: dict[str, FakeFeed] = {}
        self.item_bytes = 4000

    def _ch(self, village: str) -> _Channel:
        return self.channels.setdefault(village, _Channel())

    async def predict(self, village: str, priority: Priority) -> Placement:
        return self._predict(village, priority)

    def _predict(self, village: str, priority: Priority) -> Placement:
        ch = self._ch(village)
        if ch.playing is None:
            return Placement("plays_now", village)
        if priority > ch.playing.priority:
            return Placement("preempts", village, preempted=ch.playing.title)
        ahead = [ch.playing] + [i for i in ch.queue if i.priority >= priority]
        return Placement("queued", village, ahead=tuple(i.title for i in ahead))

    async def offer(self, item: PlayItem) -> Placement:
        return self._offer(item)

    async def open_live(self, item: PlayItem) -> tuple[Placement, LiveInput]:
        feed = self.feeds[item.item_id] = FakeFeed()
        return self._offer(item), feed

    def _offer(self, item: PlayItem) -> Placement:
        self.offered.append(item)
        placement = self._predict(item.village, item.priority)
        ch = self._ch(item.village)
        if placement.outcome == "queued":
            index = len([i for i in ch.queue if i.priority >= item.priority])
            ch.queue.insert(index, item)
            return placement
        if placement.outcome == "preempts" and ch.playing is not None:
            self._end(ch.playing, "preempted", {})
        ch.playing = item
        self._emit(item, "started", {})
        return placement

    async def cancel(self, item_id: str) -> bool:
        for ch in self.channels.values():
            if ch.playing is not None and ch.playing.item_id == item_id:
                item = ch.playing
                ch.playing = None
                self._end(item, "cancelled", {})
                self._next(ch)
                return True
            for item in ch.queue:
                if item.item_id == item_id:
                    ch.queue.remove(item)
                    self._end(item, "cancelled", {})
                    return True
        return False

    def add_report_listener(self, listener: ReportListener) -> None:
        self.listeners.append(listener)

    async def connected_devices(self, village: str) -> set[int]:
        return set(self.connected.get(village, set()))

    async def load_audio(self, path: Path) -> list[bytes]:
        if not await asyncio.to_thread(path.exists):
            raise PartUnreadable(f"{path.name}: No such file or directory")
        return [path.name.encode()]  # stands for the file's frames

    async def add_reader(self, village: str, reader: Reader) -> None:
        self.readers.setdefault(village, []).append(reader)

    async def remove_reader(self, village: str, reader: Reader) -> None:
        self.readers.get(village, []).remove(reader)

    async def note_listener(
        self, village: str, listener_id: int, reader_id: int, present: bool = True
    ) -> None:
        ids = set(self.live_listeners.get(village, frozenset()))
        ids.add(listener_id) if present else ids.discard(listener_id)
        self.live_listeners[village] = frozenset(ids)

    # --- test controls ---

    def finish(self, village: str, reached: set[int] | None = None) -> PlayItem:
        """The item playing in a village ends; ``reached`` boxes (default: connected) got it all."""
        ch = self._ch(village)
        assert ch.playing is not None, f"nothing plays in {village}"
        item = ch.playing
        boxes = set(self.connected.get(village, set())) if reached is None else reached
        ch.playing = None
        self._end(item, "finished", {d: self.item_bytes for d in boxes})
        self._next(ch)
        return item

    def _next(self, ch: _Channel) -> None:
        if ch.queue:
            ch.playing = ch.queue.pop(0)
            self._emit(ch.playing, "started", {})

    def _end(self, item: PlayItem, event: Event, device_bytes: dict[int, int]) -> None:
        self._emit(item, event, device_bytes)

    def _emit(self, item: PlayItem, event: Event, device_bytes: dict[int, int]) -> None:
        connected = self.connected.get(item.village, set()) if event == "started" else set()
        report = ItemReport(
            item_id=item.item_id,
            village=item.village,
            broadcast_id=item.broadcast_id,
            event=event,
            at=self.clock.now(),
            total_bytes=self.item_bytes,
            device_bytes=device_bytes,
            listener_ids=self.live_listeners.get(item.village, frozenset()),
            connected=frozenset(connected),
            ref=item.ref,
        )
        for listener in self.listeners:
            listener(report)


def _port(channels: FakeChannels) -> ChannelPort:
    return channels  # mypy checks that the fake implements the port


class FakeMedia:
    """Renditions and chimes as files under one directory."""

    def __init__(self, root: Path, chimes: bool = True) -> None:
        self.root = root
        self.chimes = chimes

    def rendition_path(self, rendition: Rendition) -> Path:
        return self.root / rendition.path

    def chime_parts(self, emergency: bool) -> tuple[Path, Path] | None:
        if not self.chimes:
            return None
        kind = "emergency" if emergency else "chime"
        return (self.root / f"{kind}-start.mp3", self.root / f"{kind}-end.mp3")
