"""What a village channel plays and what it reports back: streaming's contract with broadcast.

Pure values only. ``broadcast`` builds :class:`PlayItem` values and hands them to the channels
through the :class:`ChannelPort` protocol; the channels report :class:`ItemReport` values when an
item starts and ends. Tests of ``broadcast`` use a fake implementing :class:`ChannelPort`.
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
    "ItemReport",
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
class PlayItem:
    """One thing to play on one village channel.

    ``parts`` are MP3 files with the channel's fixed parameters (64 kbps CBR mono, 48 kHz), played
    back to back as one item: e.g. chime, announcement, announcement, closing chime.
    """

    item_id: (
        str  # unique per (broadcast occurrence, village), e.g. "b42-o0-goseong-eup-seongnae-ri"
    )
    village: str
    title: str  # what StreamTitle shows
    parts: tuple[Path, ...]
    priority: Priority = Priority.NORMAL
    broadcast_id: int | None = None


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
    # listener ids that received any of this item live
    listener_ids: frozenset[int] = frozenset()

    def reached(self) -> set[int]:
        """Speaker boxes that received the whole item."""
        return {d for d, n in self.device_bytes.items() if n >= self.total_bytes > 0}


ReportListener = Callable[[ItemReport], None]


class ChannelPort(Protocol):
    """What broadcast needs of the village channels (``streaming.hub.ChannelHub`` implements it)."""

    def predict(self, village: str, priority: Priority) -> Placement:
        """What would happen if an item of this priority were offered now."""
        ...

    def offer(self, item: PlayItem) -> Placement:
        """Hand an item to its village's channel (plays now, queues, or preempts)."""
        ...

    def cancel(self, item_id: str) -> bool:
        """Stop an item where it plays or remove it from the queue; False when unknown."""
        ...

    def add_report_listener(self, listener: ReportListener) -> None:
        """Be told of every :class:`ItemReport` (called on the event loop; must not block)."""
        ...

    def connected_devices(self, village: str) -> set[int]:
        """Ids of the speaker boxes connected to this village's stream now."""
        ...
