"""The village channels of a server: one pacing loop, items in, reports out.

:class:`ChannelHub` is the playback engine (synchronous, in process: every call returns at once).
:class:`HubPort` is the in-process implementation of :class:`~streaming.items.ChannelPort`, the
one door the on-air service uses: it reads the parts of an item off the event loop (a bounded cache
of decoded frames, loaded in a thread) before the item reaches its channel, so the start path of a
broadcast never reads a file on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import errors
from .channel import Channel, LiveFeed
from .fanout import Connection, Transport
from .items import ItemReport, LiveInput, Placement, PlayItem, Priority, Reader, ReportListener
from .mp3 import CHANNEL_SAMPLE_RATE, FRAME_S, parse_header, split_frames

__all__ = ["BYTES_PER_S", "ChannelHub", "FrameCache", "HubPort", "load_frames"]

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


class FrameCache:
    """The frames of recently played files, bounded to ``size`` files (a chime, an announcement).

    :meth:`get` stats and reads the file (blocking: call it in a thread, as :meth:`load` does);
    a file changed on disk (mtime, size) is read again. :meth:`peek` answers from memory only,
    for files checked on disk within ``fresh_s``: the start path of a broadcast (whose parts the
    scheduler loaded when it claimed the rows) touches no disk at all.
    """

    def __init__(self, size: int = _CACHE_SIZE, fresh_s: float = 60.0) -> None:
        self.size = size
        self.fresh_s = fresh_s
        # path → (mtime_ns, size, when last checked on disk, frames)
        self._entries: OrderedDict[str, tuple[int, int, float, list[bytes]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> list[bytes]:
        """The frames of one file (blocking)."""
        try:
            st = path.stat()
        except OSError as exc:
            raise errors.PartUnreadable(f"{path.name}: {exc.strerror or exc}") from None
        key, now = str(path), time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[:2] == (st.st_mtime_ns, st.st_size):
                self._entries[key] = (*entry[:2], now, entry[3])
                self._entries.move_to_end(key)
                return entry[3]
        frames = load_frames(path)
        with self._lock:
            self._entries[key] = (st.st_mtime_ns, st.st_size, now, frames)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return frames

    def parts(self, parts: Sequence[Path]) -> list[bytes]:
        """The frames of an item's parts, back to back (blocking)."""
        frames: list[bytes] = []
        for part in parts:
            frames.extend(self.get(Path(part)))
        return frames

    def peek(self, parts: Sequence[Path]) -> list[bytes] | None:
        """The parts' frames if every one was checked on disk recently (no I/O), else None."""
        oldest = time.monotonic() - self.fresh_s
        frames: list[bytes] = []
        with self._lock:
            for part in parts:
                entry = self._entries.get(str(part))
                if entry is None or entry[2] < oldest:
                    return None
                frames.extend(entry[3])
        return frames

    async def load(self, parts: Sequence[Path]) -> list[bytes]:
        """The parts' frames: from memory when fresh, else read in a thread (never on the loop)."""
        frames = self.peek(parts)
        if frames is None:
            frames = await asyncio.to_thread(self.parts, parts)
        return frames


class ChannelHub:
    """Every village channel of this server, paced by one loop (behind :class:`HubPort`)."""

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
        self.frames = FrameCache()
        self._wake = asyncio.Event()

    # --- ChannelPort -------------------------------------------------------------------------

    def predict(self, village: str, priority: Priority) -> Placement:
        """What would happen if an item of this priority were offered now."""
        return self.channel(village).predict(priority)

    def offer(self, item: PlayItem, frames: list[bytes] | None = None) -> Placement:
        """Hand an item to its village's channel (plays now, queues, or preempts).

        ``frames``: its parts already loaded (:class:`HubPort` loads them in a thread); without
        them the parts are read here, on the caller's thread (tests and benchmarks).
        """
        placement, _ = self._offer(item, frames)
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
        _, feed = self._offer(item, [])
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

    def _offer(
        self, item: PlayItem, frames: list[bytes] | None
    ) -> tuple[Placement, LiveFeed | None]:
        if item.item_id in self._item_village:
            raise errors.DuplicateItem(f"item {item.item_id!r} is already on a channel")
        if frames is None:
            frames = self.frames.parts(item.parts)
        self._item_village[item.item_id] = item.village
        result = self.channel(item.village).offer(item, frames)
        self._wake.set()
        return result

    def _on_report(self, report: ItemReport) -> None:
        if report.event != "started":
            self._item_village.pop(report.item_id, None)
        for listener in self._listeners:
            try:
                listener(report)
            except Exception:
                log.exception("item report listener failed")


class HubPort:
    """The in-process :class:`~streaming.items.ChannelPort`: the hub, nothing blocking."""

    def __init__(self, hub: ChannelHub) -> None:
        self.hub = hub

    async def predict(self, village: str, priority: Priority) -> Placement:
        """What would happen if an item of this priority were offered now."""
        return self.hub.predict(village, priority)

    async def offer(self, item: PlayItem) -> Placement:
        """Load the parts in a thread (cached), then hand the item to its channel."""
        frames = await self.hub.frames.load(item.parts)
        return self.hub.offer(item, frames)

    async def open_live(self, item: PlayItem) -> tuple[Placement, LiveInput]:
        """Offer a live item; its audio goes into the returned feed."""
        placement = self.hub.predict(item.village, item.priority)
        return placement, self.hub.open_live(item)

    async def cancel(self, item_id: str) -> bool:
        """Stop or unqueue an item; False when unknown."""
        return self.hub.cancel(item_id)

    async def load_audio(self, path: Path) -> list[bytes]:
        """A file's frames, read in a thread (cached)."""
        return await self.hub.frames.load((path,))

    async def connected_devices(self, village: str) -> set[int]:
        """Speaker boxes connected to the village's stream now."""
        return self.hub.connected_devices(village)

    async def add_reader(self, village: str, reader: Reader) -> None:
        """Feed the village's MP3 to ``reader``."""
        self.hub.add_tap(village, reader)

    async def remove_reader(self, village: str, reader: Reader) -> None:
        """Stop feeding ``reader``."""
        self.hub.remove_tap(village, reader)

    async def note_listener(
        self, village: str, listener_id: int, reader_id: int, present: bool = True
    ) -> None:
        """A resident on a held reader, counted in every item's report while present."""
        self.hub.note_listener(village, listener_id, reader_id, present)

    def add_report_listener(self, listener: ReportListener) -> None:
        """Be told of every report."""
        self.hub.add_report_listener(listener)
