"""``/live/{village}.ogg``: one Opus encoder per channel while listened, fanned out by page."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from recordings.channel_format import BYTES_PER_S, OPUS_STREAM_ARGS

from .fanout import Connection, Fanout, Transport
from .hub import ChannelHub
from .ogg import OggPageReader
from .transcode import Transcoder

__all__ = ["OggStreams"]


class _OggChannel:
    """The Ogg/Opus rendition of one channel: its encoder, header pages and listeners."""

    def __init__(self, hub: ChannelHub, village: str, backlog_bytes: int) -> None:
        self.fanout = Fanout(backlog_bytes)
        self.headers: list[bytes] = []
        self.headers_ready = asyncio.Event()
        self._pages = OggPageReader()
        self.transcoder = Transcoder(hub, village, [*OPUS_STREAM_ARGS, "pipe:1"], self._on_output)

    def _on_output(self, data: bytes) -> None:
        audio: list[bytes] = []
        for page in self._pages.feed(data):
            if page.is_stream_header and not self.headers_ready.is_set():
                self.headers.append(page.raw)
                if page.first_packet == b"OpusTags":
                    self.headers_ready.set()
            else:
                audio.append(page.raw)
        if audio:
            self.fanout.write(b"".join(audio))


class OggStreams:
    """The Ogg/Opus streams of every channel, each encoding only while it has listeners."""

    def __init__(self, hub: ChannelHub, listener_backlog_s: float) -> None:
        self.hub = hub
        # Opus at 32 kbps is half the MP3's bytes; the same bound in bytes is ample
        self.backlog_bytes = int(listener_backlog_s * BYTES_PER_S)
        self._channels: dict[str, _OggChannel] = {}
        self._lock = asyncio.Lock()

    def listener_count(self, village: str) -> int:
        """Open Ogg connections of a village."""
        ch = self._channels.get(village)
        return len(ch.fanout) if ch is not None else 0

    async def attach(
        self,
        village: str,
        transport: Transport,
        on_close: Callable[[str], None],
        listener_id: int | None = None,
    ) -> Connection:
        """Start the encoder if needed; send the Ogg headers, then live pages."""
        async with self._lock:
            ch = self._channels.get(village)
            if ch is None or not ch.transcoder.running:
                ch = self._channels[village] = _OggChannel(self.hub, village, self.backlog_bytes)
                await ch.transcoder.start()
        await asyncio.wait_for(ch.headers_ready.wait(), 10)
        conn = Connection(transport, listener_id=listener_id, on_close=on_close)
        conn.send(b"".join(ch.headers), "")
        ch.fanout.add(conn)
        if listener_id is not None:
            self.hub.note_listener(village, listener_id, conn.conn_id)
        return conn

    async def detach(self, village: str, conn: Connection) -> None:
        """Remove a listener; stop the encoder when it was the last."""
        ch = self._channels.get(village)
        if ch is None:
            return
        ch.fanout.remove(conn, "handler ended")
        if conn.listener_id is not None:
            self.hub.note_listener(village, conn.listener_id, conn.conn_id, present=False)
        async with self._lock:
            if not ch.fanout.connections and self._channels.get(village) is ch:
                del self._channels[village]
                await ch.transcoder.stop()

    async def close(self) -> None:
        """Close every listener and stop every encoder."""
        for ch in list(self._channels.values()):
            ch.fanout.close_all("server shutdown")
            await ch.transcoder.stop()
        self._channels.clear()
