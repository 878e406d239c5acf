"""What a village channel plays and what it reports back: streaming's contract with broadcast.

Pure values and one protocol. ``broadcast`` builds :class:`PlayItem` values, each carrying a typed
:class:`ItemRef` (broadcast, occurrence, start, village, live session), and hands them to the
channels through :class:`ChannelPort`; the channels report :class:`ItemReport` values (with the same
reference) when an item starts and ends. The port is asynchronous wherever a remote implementation
(channels on another node, behind a bus) would have to wait: the on-air service never calls the hub
directly. ``streaming.hub.HubPort`` is the in-process implementation; tests use fakes of the same
protocol (type-checked).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Literal, Protocol

__all__ = [
    "ChannelPort",
    "ItemRef",
    "ItemReport",
    "LiveInput",
    "Placement",
    "PlayItem",
    "Priority",
    "ReportListener",
]


class Priority(IntEnum):
    """Priority of an item on a channel; a higher one preempts a lower one at once."""

    NORMAL = 0  # 행정·마을 안내
    URGENT = 1  # 긴급
    EMERGENCY = 2  # 위급/재난

    @classmethod
    def parse(cls, name: str) -> Priority:
        """``"normal"`` / ``"urgent"`` / ``"emergency"`` → Priority (ValueError otherwise)."""
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unknown priority {name!r}") from None


@dataclass(frozen=True, slots=True)
class ItemRef:
    """Which broadcast start an item is: the typed reference that travels with items and reports."""

    broadcast_id: int
    occurrence_id: int
    village: str
    seq: int = 0  # the recurrence (0 for a one-off)
    session_id: int | None = None  # the live session, for a live item

    @property
    def key(self) -> str:
        """The channel's key of the item (unique per occurrence; never parsed back)."""
        return f"b{self.broadcast_id}-o{self.occurrence_id}-{self.village}"


@dataclass(frozen=True, slots=True)
class PlayItem:
    """One thing to play on one village channel.

    ``parts`` are MP3 files with the channel's fixed parameters (64 kbps CBR mono, 48 kHz), played
    back to back as one item: e.g. chime, announcement, announcement, closing chime. A live item has
    no parts: its audio is pushed into the :class:`LiveInput` the channel returns.
    """

    item_id: str  # the channel's key: ``ref.key`` for a broadcast, any unique text otherwise
    village: str
    title: str  # what StreamTitle shows
    parts: tuple[Path, ...]
    priority: Priority = Priority.NORMAL
    broadcast_id: int | None = None
    ref: ItemRef | None = None

    @classmethod
    def of(cls, ref: ItemRef, title: str, parts: tuple[Path, ...], priority: Priority) -> PlayItem:
        """The item of one broadcast start in one village."""
        return cls(ref.key, ref.village, title, parts, priority, ref.broadcast_id, ref)


@dataclass(frozen=True, slots=True)
class Placement:
    """What happens to an item offered to a channel (also answerable before sending)."""

    outcome: Literal["plays_now", "queued", "preempts"]
    village: str
    ahead: tuple[str, ...] = ()  # titles of items that play first (queued)
    preempted: str | None = None  # title of the item it cuts (preempts)


@dataclass(frozen=True, slots=True)
class ItemReport:
    """A channel's account of one item: sent when it starts and again when it ends."""

    item_id: str
    village: str
    broadcast_id: int | None
    event: Literal["started", "finished", "preempted", "cancelled"]
    at: datetime
    total_bytes: int  # audio bytes of the whole item
    # device id → audio bytes of this item written to that box's connection
    device_bytes: dict[int, int] = field(default_factory=dict)
    # listener ids that received any of this item live (MP3, Ogg, HLS and WebRTC readers)
    listener_ids: frozenset[int] = frozenset()
    # speaker boxes connected when the item started (presence at the start, in the report itself)
    connected: frozenset[int] = frozenset()
    ref: ItemRef | None = None

    def reached(self) -> set[int]:
        """Speaker boxes that received the whole item."""
        return {d for d, n in self.device_bytes.items() if n >= self.total_bytes > 0}


ReportListener = Callable[[ItemReport], None]


class LiveInput(Protocol):
    """Where a live item's channel-format MP3 goes as it is spoken."""

    @property
    def closed(self) -> bool:
        """True once closed, or once its item ended on the channel (preempted, cancelled)."""
        ...

    def push(self, data: bytes) -> None:
        """Add channel-format MP3 data (ignored once closed)."""
        ...

    def close(self) -> None:
        """No more data: the item finishes once its audio is sent."""
        ...


Reader = Callable[[bytes], None]


class ChannelPort(Protocol):
    """Everything the on-air service needs of the village channels.

    Items (offer, live feeds, cancel, predict), readers (taps of a channel's MP3 for the WebRTC
    encoder; residents listening on other renditions), presence and typed reports.
    """

    async def predict(self, village: str, priority: Priority) -> Placement:
        """What would happen if an item of this priority were offered now."""
        ...

    async def offer(self, item: PlayItem) -> Placement:
        """Hand an item to its village's channel (plays now, queues, or preempts)."""
        ...

    async def open_live(self, item: PlayItem) -> tuple[Placement, LiveInput]:
        """Offer a live item (no parts); its audio goes into the returned input."""
        ...

    async def cancel(self, item_id: str) -> bool:
        """Stop an item where it plays or remove it from the queue; False when unknown."""
        ...

    async def load_audio(self, path: Path) -> list[bytes]:
        """The channel-format frames of a file (read off the event loop, cached)."""
        ...

    async def connected_devices(self, village: str) -> set[int]:
        """Ids of the speaker boxes connected to this village's stream now."""
        ...

    async def add_reader(self, village: str, reader: Reader) -> None:
        """Feed every chunk of the village's MP3 to ``reader`` (e.g. the WebRTC encoder)."""
        ...

    async def remove_reader(self, village: str, reader: Reader) -> None:
        """Stop feeding a reader."""
        ...

    async def note_listener(
        self, village: str, listener_id: int, reader_id: int, present: bool = True
    ) -> None:
        """A resident listens on a held reader (WebRTC, Ogg) until ``present=False``: counted in
        the report of every item that plays meanwhile."""
        ...

    def add_report_listener(self, listener: ReportListener) -> None:
        """Be told of every :class:`ItemReport` (called on the event loop; must not block)."""
        ...
