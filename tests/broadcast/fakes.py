"""Fakes that implement the real protocols: a settable clock, village channels, media files."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from recordings.models import Rendition
from streaming.items import ItemReport, Placement, PlayItem, Priority, ReportListener


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


class FakeChannels:
    """Village channels with the real queueing rules: one item plays; equal priorities queue in
    order; a higher one preempts at once. Items end when the test says so (:meth:`finish`)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.channels: dict[str, _Channel] = {}
        self.listeners: list[ReportListener] = []
        self.connected: dict[str, set[int]] = {}
        self.offered: list[PlayItem] = []
        self.live_listeners: dict[str, frozenset[int]] = {}
        self.item_bytes = 4000

    def _ch(self, village: str) -> _Channel:
        return self.channels.setdefault(village, _Channel())

    def predict(self, village: str, priority: Priority) -> Placement:
        ch = self._ch(village)
        if ch.playing is None:
            return Placement("plays_now", village)
        if priority > ch.playing.priority:
            return Placement("preempts", village, preempted=ch.playing.title)
        ahead = [ch.playing] + [i for i in ch.queue if i.priority >= priority]
        return Placement("queued", village, ahead=tuple(i.title for i in ahead))

    def offer(self, item: PlayItem) -> Placement:
        self.offered.append(item)
        placement = self.predict(item.village, item.priority)
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

    def cancel(self, item_id: str) -> bool:
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

    def connected_devices(self, village: str) -> set[int]:
        return set(self.connected.get(village, set()))

    # --- test controls ---

    def finish(self, village: str, reached: set[int] | None = None) -> PlayItem:
        """The item playing in a village ends; ``reached`` boxes (default: connected) got it all."""
        ch = self._ch(village)
        assert ch.playing is not None, f"nothing plays in {village}"
        item = ch.playing
        boxes = self.connected_devices(village) if reached is None else reached
        ch.playing = None
        self._end(item, "finished", {d: self.item_bytes for d in boxes})
        self._next(ch)
        return item

    def _next(self, ch: _Channel) -> None:
        if ch.queue:
            ch.playing = ch.queue.pop(0)
            self._emit(ch.playing, "started", {})

    def _end(self, item: PlayItem, event: str, device_bytes: dict[int, int]) -> None:
        self._emit(item, event, device_bytes)

    def _emit(self, item: PlayItem, event: str, device_bytes: dict[int, int]) -> None:
        report = ItemReport(
            item_id=item.item_id,
            village=item.village,
            broadcast_id=item.broadcast_id,
            event=event,  # type: ignore[arg-type]
            at=self.clock.now(),
            total_bytes=self.item_bytes,
            device_bytes=device_bytes,
            listener_ids=self.live_listeners.get(item.village, frozenset()),
        )
        for listener in self.listeners:
            listener(report)


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
