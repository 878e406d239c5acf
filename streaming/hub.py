"""The village channels of a server: one pacing loop, items in, reports out (``ChannelPort``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import errors
from .channel import Channel, LiveFeed
from .fanout import Connection, Transport
from .items import ItemReport, Placement, PlayItem, Priority, ReportListener
from .mp3 import CHANNEL_SAMPLE_RATE, FRAME_S, parse_header, split_frames

__all__ = ["BYTES_PER_S", "ChannelHub", "load_frames"]

log = logging.getLogger(__name__)

BYTES_PER_S = 64_000 // 8  # the channel's nominal 64 kbps
_CACHE_SIZE = 64


def load_frames(path: Path) -> list[bytes]:
    """The audio frames of a channel-format MP3 file (UnsupportedPart/PartUnreadable otherwise)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise errors.PartUnreadable(f"{path.name}: {exc.strerror or exc}") from None
    frames = split_frames(data)
    if not frames:
        raise errors.UnsupportedPart(f"{path.name}: no MPEG-1 Layer III frames")
    for frame in (frames[0], frames[-1]):
        header = parse_header(frame)
        if header is None or header.sample_rate != CHANNEL_SAMPLE_RATE or not header.mono:
            raise errors.UnsupportedPart(f"{path.name}: not 48 kHz mono MPEG-1 Layer III")
    return frames


class ChannelHub:
    """Every village channel of this server, paced by one loop; implements ``ChannelPort``."""

    def __init__(
        self,
        *,
        burst_s: float = 0.5,
        listener_backlog_s: float = 4.0,
        tick_frames: int = 10,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.tick_frames = tick_frames
        self.burst_frames = max(1, round(burst_s / FRAME_S))
        self.backlog_bytes = int(listener_backlog_s * BYTES_PER_S)
        self._clock = clock
        self._wall = wall
        self._channels: dict[str, Channel] = {}
        self._item_village: dict[str, str] = {}
        self._listeners: list[ReportListener] = []
        self._cache: OrderedDict[tuple[str, int, int], list[bytes]] = OrderedDict()
        self._wake = asyncio.Event()

    # --- ChannelPort -------------------------------------------------------------------------

    def predict(self, village: str, priority: Priority) -> Placement:
        """What would happen if an item of this priority were offered now."""
        return self.channel(village).predict(priority)

    def offer(self, item: PlayItem) -> Placement:
        """Hand an item to its village's channel (plays now, queues, or preempts)."""
        placement, _ = self._offer(item)
        return placement

    def cancel(self, item_id: str) -> bool:
        """Stop an item where it plays or remove it from the queue; False when unknown."""
        village = self._item_village.get(item_id)
        return village is not None and self._channels[village].cancel(item_id)

    def add_report_listener(self, listener: ReportListener) -> None:
        """Be told of every ItemReport (called on the event loop)."""
        self._listeners.append(listener)

    def connected_devices(self, village: str) -> set[int]:
        """Ids of the speaker boxes connected to this village's stream now."""
        ch = self._channels.get(village)
        return set(ch.devices) if ch is not None else set()

    # --- more of the same --------------------------------------------------------------------

    def open_live(self, item: PlayItem) -> LiveFeed:
        """Offer a live item (``parts == ()``); push its MP3 into the returned feed."""
        if item.parts:
            raise ValueError("a live item has no parts")
        _, feed = self._offer(item)
        assert feed is not None
        return feed

    def listener_count(self, village: str) -> int:
        """Open connections of this village's MP3 stream, speaker boxes included."""
        ch = self._channels.get(village)
        return len(ch.fanout) if ch is not None else 0

    def now_playing(self, village: str) -> PlayItem | None:
        """The item playing on this village's channel."""
        ch = self._channels.get(village)
        return ch.current.item if ch is not None and ch.current is not None else None

    def queue_of(self, village: str) -> list[PlayItem]:
        """Items waiting on this village's channel, in the order they will play."""
        ch = self._channels.get(village)
        if ch is None:
            return []
        return [p.item for p in sorted(ch.queue, key=lambda p: p.sort_key)]

    def title_of(self, village: str) -> str:
        """What plays on this village's channel (empty between items)."""
        ch = self._channels.get(village)
        return ch.title if ch is not None else ""

    @property
    def dropped_total(self) -> int:
        """Listeners dropped for being too slow, since start."""
        return sum(ch.fanout.dropped_total for ch in self._channels.values())

    def listener_counts(self) -> dict[str, int]:
        """Connections per village with anyone connected."""
        return {v: len(ch.fanout) for v, ch in self._channels.items() if len(ch.fanout)}

    def channel(self, village: str) -> Channel:
        """The channel of a village (created on first use)."""
        ch = self._channels.get(village)
        if ch is None:
            ch = self._channels[village] = Channel(
                village,
                tick_frames=self.tick_frames,
                burst_frames=self.burst_frames,
                backlog_bytes=self.backlog_bytes,
                clock=self._clock,
                wall=self._wall,
                report=self._on_report,
            )
        return ch

    # --- connections -------------------------------------------------------------------------

    def attach(
        self,
        village: str,
        transport: Transport,
        *,
        device_id: int | None = None,
        listener_id: int | None = None,
        metaint: int | None = None,
        on_close: Callable[[str], None] | None = None,
    ) -> Connection:
        """Start streaming a village's channel to a connection (burst first)."""
        conn = Connection(
            transport,
            device_id=device_id,
            listener_id=listener_id,
            metaint=metaint,
            on_close=on_close,
        )
        self.channel(village).attach(conn)
        self._wake.set()
        return conn

    def detach(self, village: str, conn: Connection, reason: str = "closed") -> None:
        """Stop streaming to a connection."""
        ch = self._channels.get(village)
        if ch is not None:
            ch.detach(conn, reason)

    def note_listener(
        self, village: str, listener_id: int, conn_id: int | None = None, present: bool = True
    ) -> None:
        """A resident listens on another rendition: counted in the playing item's listener_ids.

        With ``conn_id`` the resident stays noted for every item until ``present=False`` (a held
        Ogg connection); without it, only for the item playing now (an HLS segment fetch).
        """
        ch = self.channel(village)
        if conn_id is not None:
            if not present:
                ch.side_listeners.pop(conn_id, None)
                return
            ch.side_listeners[conn_id] = listener_id
        ch.note_listener(listener_id)

    def close_all(self, reason: str = "server shutdown") -> None:
        """Close every connection of every channel."""
        for ch in self._channels.values():
            ch.close_all(reason)

    def add_tap(self, village: str, tap: Callable[[bytes], None]) -> None:
        """Feed every chunk of a village's MP3 to ``tap`` (an encoder), until removed."""
        self.channel(village).taps.append(tap)
        self._wake.set()

    def remove_tap(self, village: str, tap: Callable[[bytes], None]) -> None:
        """Stop feeding a tap."""
        ch = self._channels.get(village)
        if ch is not None and tap in ch.taps:
            ch.taps.remove(tap)

    # --- the pacing loop ---------------------------------------------------------------------

    def tick(self) -> None:
        """Send what is due on every active channel."""
        now = self._clock()
        for ch in list(self._channels.values()):
            if ch.active:
                try:
                    ch.pump(now)
                except Exception:  # one broken channel must not silence the others
                    log.exception("channel %s failed", ch.village)
            else:
                ch.sent_until = None

    async def run(self) -> None:
        """The one pacing loop of every channel: a tick every ``tick_frames`` frames."""
        period = self.tick_frames * FRAME_S
        deadline = self._clock()
        while True:
            self.tick()
            if not any(ch.active for ch in self._channels.values()):
                self._wake.clear()
                await self._wake.wait()
                deadline = self._clock()
                continue
            deadline += period
            now = self._clock()
            if deadline < now - period:
                deadline = now  # fell behind (stall): do not catch up in a burst
            await asyncio.sleep(max(0.0, deadline - now))

    # --- internals ---------------------------------------------------------------------------

    def _offer(self, item: PlayItem) -> tuple[Placement, LiveFeed | None]:
        if item.item_id in self._item_village:
            raise errors.DuplicateItem(f"item {item.item_id!r} is already on a channel")
        frames: list[bytes] = []
        for part in item.parts:
            frames.extend(self._frames_of(Path(part)))
        self._item_village[item.item_id] = item.village
        result = self.channel(item.village).offer(item, frames)
        self._wake.set()
        return result

    def _frames_of(self, path: Path) -> list[bytes]:
        try:
            st = path.stat()
        except OSError as exc:
            raise errors.PartUnreadable(f"{path.name}: {exc.strerror or exc}") from None
        key = (str(path), st.st_mtime_ns, st.st_size)
        frames = self._cache.get(key)
        if frames is None:
            frames = self._cache[key] = load_frames(path)
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return frames

    def _on_report(self, report: ItemReport) -> None:
        if report.event != "started":
            self._item_village.pop(report.item_id, None)
        for listener in self._listeners:
            try:
                listener(report)
            except Exception:
                log.exception("item report listener failed")
