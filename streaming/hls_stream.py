"""``/hls/{village}/live.m3u8``: one ffmpeg segmenter per channel while phones fetch it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownStream
from .hls import SEGMENT_NAME, segment_count
from .hub import ChannelHub
from .transcode import Transcoder

__all__ = ["HlsStreams"]

PLAYLIST = "live.m3u8"
LIST_SIZE = 6
# Players start a live playlist three segments from its end (RFC 8216 6.3.3); Chromium's native
# HLS refuses a live playlist with fewer ("DEMUXER_ERROR_COULD_NOT_PARSE"), so serve none before.
MIN_SEGMENTS = 3


@dataclass(slots=True)
class _Segmenter:
    transcoder: Transcoder
    directory: Path
    last_used: float


class HlsStreams:
    """The HLS renditions of the channels: AAC in MPEG-TS segments, written under ``root``."""

    def __init__(
        self,
        hub: ChannelHub,
        root: Path,
        segment_s: float,
        idle_stop_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub = hub
        self.root = root
        self.segment_s = segment_s
        self.idle_stop_s = idle_stop_s
        self._clock = clock
        self._segmenters: dict[str, _Segmenter] = {}
        self._lock = asyncio.Lock()

    def _args(self, directory: Path) -> list[str]:
        return [
            "-ac", "1", "-c:a", "aac", "-b:a", "64k",
            "-f", "hls", "-hls_time", f"{self.segment_s:g}", "-hls_list_size", str(LIST_SIZE),
            "-hls_flags", "delete_segments+omit_endlist+temp_file",
            "-hls_segment_filename", str(directory / "seg%05d.ts"), str(directory / PLAYLIST),
        ]  # fmt: skip

    async def _ensure(self, village: str) -> _Segmenter:
        async with self._lock:
            seg = self._segmenters.get(village)
            if seg is None or not seg.transcoder.running:
                directory = self.root / village
                await asyncio.to_thread(shutil.rmtree, directory, True)
                await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
                transcoder = Transcoder(self.hub, village, self._args(directory))
                await transcoder.start()
                seg = self._segmenters[village] = _Segmenter(transcoder, directory, self._clock())
            seg.last_used = self._clock()
            return seg

    async def playlist(self, village: str) -> str:
        """The live playlist (starting the segmenter and waiting for its first segments)."""
        seg = await self._ensure(village)
        path = seg.directory / PLAYLIST
        deadline = self._clock() + (MIN_SEGMENTS + 1) * self.segment_s + 5
        while True:
            with contextlib.suppress(FileNotFoundError):
                text = await asyncio.to_thread(path.read_text)
                if segment_count(text) >= MIN_SEGMENTS:
                    return text
            if self._clock() > deadline:
                raise UnknownStream("the HLS stream did not start in time; retry")
            await asyncio.sleep(0.1)

    def segment(self, village: str, name: str) -> Path:
        """The file of a segment that is still listed (UnknownStream otherwise)."""
        seg = self._segmenters.get(village)
        if seg is None or not SEGMENT_NAME.match(name):
            raise UnknownStream(f"no HLS segment {name!r}")
        seg.last_used = self._clock()
        path = seg.directory / name
        if not path.is_file():
            raise UnknownStream(f"HLS segment {name!r} is gone")
        return path

    async def reap(self) -> None:
        """Stop the segmenters nobody fetched from for ``idle_stop_s``."""
        now = self._clock()
        for village, seg in list(self._segmenters.items()):
            if now - seg.last_used > self.idle_stop_s:
                async with self._lock:
                    if self._segmenters.get(village) is seg:
                        del self._segmenters[village]
                await seg.transcoder.stop()
                await asyncio.to_thread(shutil.rmtree, seg.directory, True)

    async def run(self) -> None:
        """Reap idle segmenters forever."""
        while True:
            await asyncio.sleep(max(1.0, self.idle_stop_s / 4))
            await self.reap()

    async def close(self) -> None:
        """Stop every segmenter."""
        for seg in list(self._segmenters.values()):
            await seg.transcoder.stop()
        self._segmenters.clear()
