"""One village channel: its queue of items, the clock that paces frames, delivery accounting.

No asyncio and no sockets here: the hub calls :meth:`Channel.pump` with ``now`` from its one pacing
loop, and the channel writes each batch of frames once to its :class:`~streaming.fanout.Fanout`.

Rules (documented in docs/streaming.md):

- the queue is ordered by priority, first come first served within a priority;
- an item of a higher priority than the playing one preempts it at once; the preempted item is
  dropped (report ``preempted``), it is not resumed;
- between items the channel sends silent frames (32 kbps, 24 ms each), so players stay connected;
- a new connection gets a burst of the last ``burst_frames`` frames sent, where frames of an item
  that no longer plays are replaced by silence (never stale audio after a reconnect).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from .fanout import Connection, Fanout
from .items import ItemReport, Placement, PlayItem, Priority
from .mp3 import FRAME_S, SILENCE_FRAME, FrameSplitter

__all__ = ["Channel", "LiveFeed"]

MAX_LAG_S = 5.0  # a stall up to this long is caught up; after a longer one, restart at now
LIVE_AHEAD_S = 1.0  # live frames are forwarded as they arrive, up to this far ahead of the clock
LIVE_STARVED_S = 0.5  # a live item that sends nothing for this long is bridged with silence
CROWD = 500  # per this many connections a channel's batches grow by one tick's worth...
MAX_BATCHES = 4  # ...up to this many ticks' worth (~1 s) per write

Reporter = Callable[[ItemReport], None]
Event = Literal["started", "finished", "preempted", "cancelled"]


class _Play:
    """An item on the channel and what it delivered so far."""

    __slots__ = (
        "device_bytes",
        "device_next",
        "feed",
        "frames",
        "item",
        "listener_ids",
        "next_index",
        "seq",
        "started",
        "total_bytes",
    )

    def __init__(self, item: PlayItem, frames: list[bytes], seq: int) -> None:
        self.item = item
        self.frames = frames
        self.seq = seq
        self.feed: LiveFeed | None = None
        self.next_index = 0
        self.total_bytes = sum(len(f) for f in frames)
        self.started = False
        self.device_next: dict[int, int] = {}  # next frame index not yet counted, per box
        self.device_bytes: dict[int, int] = {}
        self.listener_ids: set[int] = set()

    @property
    def sort_key(self) -> tuple[int, int]:
        """Queue order: higher priority first, then first come."""
        return (-int(self.item.priority), self.seq)

    def count_device(self, device_id: int, first: int, end: int, nbytes: int) -> None:
        """Count frames ``first..end`` written to a box, each frame at most once."""
        done = self.device_next.get(device_id, 0)
        if end <= done:
            return
        if first < done:
            nbytes = sum(len(f) for f in self.frames[done:end])
        self.device_bytes[device_id] = self.device_bytes.get(device_id, 0) + nbytes
        self.device_next[device_id] = end


class LiveFeed:
    """The input of a live item: channel-format MP3 bytes pushed as they arrive."""

    def __init__(self, channel: Channel, play: _Play) -> None:
        self._channel = channel
        self._play = play
        self._splitter = FrameSplitter()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once closed, or once its item ended on the channel (preempted, cancelled)."""
        return self._closed

    def push(self, mp3_bytes: bytes) -> None:
        """Add MP3 data; whole frames go out at once when the item plays (ignored once closed)."""
        if self._closed:
            return
        frames = self._splitter.feed(mp3_bytes)
        if frames:
            self._play.frames.extend(frames)
            self._play.total_bytes += sum(len(f) for f in frames)
            self._channel.feed_changed(self._play)

    def close(self) -> None:
        """No more data: the item finishes once its frames are sent."""
        if not self._closed:
            self._closed = True
            self._channel.feed_changed(self._play)

    def _ended(self) -> None:
        self._closed = True


class Channel:
    """The single timeline of one village: queue, pacing, fan-out and delivery accounting."""

    def __init__(
        self,
        village: str,
        *,
        tick_frames: int,
        burst_frames: int,
        backlog_bytes: int,
        clock: Callable[[], float],
        wall: Callable[[], datetime],
        report: Reporter,
    ) -> None:
        self.village = village
        self.tick_frames = tick_frames
        self.lead_s = tick_frames * FRAME_S
        self.burst_frames = burst_frames
        self.fanout = Fanout(backlog_bytes)
        self.devices: dict[int, Connection] = {}  # speaker boxes, also in the fan-out
        self.current: _Play | None = None
        self.queue: list[_Play] = []
        self.sent_until: float | None = None  # channel time reached by what was sent
        self.history: deque[tuple[_Play | None, int, bytes]] = deque(maxlen=burst_frames)
        self.taps: list[Callable[[bytes], None]] = []  # encoders fed the channel's MP3
        # residents on the other renditions (Ogg connections): listener id by connection id
        self.side_listeners: dict[int, int] = {}
        self._clock = clock
        self._wall = wall
        self._report = report
        self._seq = 0

    # --- state -------------------------------------------------------------------------------

    @property
    def title(self) -> str:
        """What plays now (StreamTitle); empty between items."""
        return self.current.item.title if self.current is not None else ""

    @property
    def active(self) -> bool:
        """Whether the clock must run: someone listens or something plays."""
        return bool(self.fanout.connections or self.current or self.queue or self.taps)

    # --- items -------------------------------------------------------------------------------

    def predict(self, priority: Priority) -> Placement:
        """What offering an item of this priority would do now."""
        current = self.current
        if current is None and not self.queue:
            return Placement("plays_now", self.village)
        if current is not None and priority > current.item.priority:
            return Placement("preempts", self.village, preempted=current.item.title)
        ahead = [current] if current is not None else []
        ahead += [
            p for p in sorted(self.queue, key=lambda p: p.sort_key) if p.item.priority >= priority
        ]
        return Placement("queued", self.village, ahead=tuple(p.item.title for p in ahead))

    def offer(self, item: PlayItem, frames: list[bytes]) -> tuple[Placement, LiveFeed | None]:
        """Put an item on the channel (``frames`` empty and a feed returned for a live item)."""
        placement = self.predict(item.priority)
        self._seq += 1
        play = _Play(item, frames, self._seq)
        feed = None
        if not item.parts:
            feed = play.feed = LiveFeed(self, play)
        if placement.outcome == "queued":
            self.queue.append(play)
            return placement, feed
        cut, self.current = self.current, play
        if cut is not None:  # reported after the switch: a listener may re-offer it at once
            self._end(cut, "preempted")
        self.pump(self._clock(), extra_frames=self.tick_frames)
        return placement, feed

    def cancel(self, item_id: str) -> bool:
        """Stop or unqueue an item; False when it is not on this channel."""
        if self.current is not None and self.current.item.item_id == item_id:
            self._end(self.current, "cancelled")
            return True
        for play in self.queue:
            if play.item.item_id == item_id:
                self.queue.remove(play)
                self._end(play, "cancelled")
                return True
        return False

    def feed_changed(self, play: _Play) -> None:
        """A live feed got frames or closed: forward at once when it plays."""
        if play is self.current:
            self.pump(self._clock())

    # --- connections -------------------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        """Add a connection and send it the burst; a box's older connection is replaced."""
        if conn.device_id is not None:
            old = self.devices.get(conn.device_id)
            if old is not None:
                self.detach(old, "replaced")
            self.devices[conn.device_id] = conn
        now = self._clock()
        if self.sent_until is None or self.sent_until < now - MAX_LAG_S:
            self.history.clear()
            self.sent_until = now
        burst: list[bytes] = []
        current = self.current
        for play, index, frame in self.history:
            if play is not None and play is current:
                burst.append(frame)
                if conn.device_id is not None:
                    play.count_device(conn.device_id, index, index + 1, len(frame))
            else:
                burst.append(SILENCE_FRAME)
        if len(burst) < self.burst_frames:
            burst[:0] = [SILENCE_FRAME] * (self.burst_frames - len(burst))
        if current is not None and conn.listener_id is not None:
            current.listener_ids.add(conn.listener_id)
        conn.send(b"".join(burst), self.title)
        self.fanout.add(conn)

    def recent_audio(self) -> bytes:
        """The burst a new consumer gets: recent frames, stale items replaced by silence."""
        current = self.current
        burst = [
            frame if play is not None and play is current else SILENCE_FRAME
            for play, _, frame in self.history
        ]
        return SILENCE_FRAME * (self.burst_frames - len(burst)) + b"".join(burst)

    def note_listener(self, listener_id: int) -> None:
        """A resident hears the current item on another rendition (Ogg, HLS)."""
        if self.current is not None:
            self.current.listener_ids.add(listener_id)

    def detach(self, conn: Connection, reason: str = "closed") -> None:
        """Remove a connection (and close it)."""
        if conn.device_id is not None and self.devices.get(conn.device_id) is conn:
            del self.devices[conn.device_id]
        self.fanout.remove(conn, reason)

    def close_all(self, reason: str) -> None:
        """Close every connection."""
        self.devices.clear()
        self.fanout.close_all(reason)

    # --- the clock ---------------------------------------------------------------------------

    def pump(self, now: float, extra_frames: int = 0) -> None:
        """Send the frames due by ``now`` (plus ``extra_frames`` at once) to every connection."""
        if self.sent_until is None or self.sent_until < now - MAX_LAG_S:
            self.sent_until = now
        live = self.current is not None and self.current.feed is not None
        lead = self.lead_s
        batches = min(MAX_BATCHES, 1 + len(self.fanout) // CROWD)
        if batches > 1 and not live and not extra_frames:
            # a crowd gets bigger batches less often: fewer writes (syscalls) per second
            if self.sent_until - now >= self.lead_s / 2:
                return
            lead = batches * self.lead_s
        horizon = now + (LIVE_AHEAD_S if live else lead)
        due = max(0, math.ceil((horizon - self.sent_until) / FRAME_S - 1e-9)) + extra_frames
        cap = math.ceil((now + 3 * self.lead_s + LIVE_AHEAD_S - self.sent_until) / FRAME_S)
        due = min(due, max(cap, 0))
        if due <= 0:
            return
        frames, segments, events = self._take(due, now)
        if not frames:
            self._emit(events)
            return
        self.sent_until += len(frames) * FRAME_S
        chunk = b"".join(frames)
        self.fanout.write(chunk, self.title)
        for tap in self.taps:
            tap(chunk)
        for dev_id, conn in list(self.devices.items()):
            if conn.closed_reason is not None:
                del self.devices[dev_id]
                continue
            for play, first, end, nbytes in segments:
                play.count_device(dev_id, first, end, nbytes)
        self._emit(events)

    def _take(
        self, due: int, now: float
    ) -> tuple[list[bytes], list[tuple[_Play, int, int, int]], list[tuple[_Play, Event]]]:
        """The next ``due`` frames of the timeline, which items they belong to, what happened."""
        out: list[bytes] = []
        segments: list[tuple[_Play, int, int, int]] = []
        events: list[tuple[_Play, Event]] = []
        history = self.history
        assert self.sent_until is not None
        while len(out) < due:
            play = self.current
            if play is None:
                if self.queue:
                    self.queue.sort(key=lambda p: p.sort_key)
                    self.current = self.queue.pop(0)
                    continue
                for _ in range(due - len(out)):
                    out.append(SILENCE_FRAME)
                    history.append((None, 0, SILENCE_FRAME))
                break
            first = play.next_index
            available = len(play.frames) - first
            if available > 0:
                end = first + min(available, due - len(out))
                chunk = play.frames[first:end]
                out.extend(chunk)
                for i, frame in enumerate(chunk, first):
                    history.append((play, i, frame))
                play.next_index = end
                segments.append((play, first, end, sum(len(f) for f in chunk)))
                if not play.started:
                    play.started = True
                    events.append((play, "started"))
                continue
            if play.feed is None or play.feed.closed:
                events.append((play, "finished"))
                self._finish(play)
                continue
            # a live item waiting for data: bridge with silence only once it is late
            if self.sent_until + len(out) * FRAME_S < now - LIVE_STARVED_S:
                for _ in range(min(due - len(out), self.tick_frames)):
                    out.append(SILENCE_FRAME)
                    history.append((None, 0, SILENCE_FRAME))
            break
        return out, segments, events

    # --- reports -----------------------------------------------------------------------------

    def _finish(self, play: _Play) -> None:
        if play.feed is not None:
            play.feed._ended()
        if self.current is play:
            self.current = None

    def _end(self, play: _Play, event: Event) -> None:
        """End an item that did not finish by itself, and report it."""
        self._finish(play)
        self._emit([(play, event)])

    def _emit(self, events: list[tuple[_Play, Event]]) -> None:
        for play, event in events:
            if event == "started":
                play.listener_ids.update(
                    c.listener_id for c in self.fanout.connections.values() if c.listener_id
                )
                play.listener_ids.update(self.side_listeners.values())
            self._report(
                ItemReport(
                    item_id=play.item.item_id,
                    village=self.village,
                    broadcast_id=play.item.broadcast_id,
                    event=event,
                    at=self._wall(),
                    total_bytes=play.total_bytes,
                    device_bytes=dict(play.device_bytes),
                    listener_ids=frozenset(play.listener_ids),
                    connected=frozenset(self.devices) if event == "started" else frozenset(),
                    ref=play.item.ref,
                )
            )
