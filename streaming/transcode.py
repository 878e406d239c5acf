"""One ffmpeg process per channel, fed the channel's MP3 as it is paced (Ogg/Opus, HLS).

The channel's pacing loop hands each chunk to :meth:`Transcoder.tap`, which writes it to ffmpeg's
stdin without waiting; an encoder that stops reading loses chunks instead of slowing the channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .hub import ChannelHub

__all__ = ["Transcoder"]

log = logging.getLogger(__name__)

STDIN_BOUND = 256 * 1024  # bytes queued for ffmpeg before chunks are skipped


class Transcoder:
    """ffmpeg reading the channel's MP3 on stdin; ``on_output`` gets its stdout, if any."""

    def __init__(
        self,
        hub: ChannelHub,
        village: str,
        output_args: list[str],
        on_output: Callable[[bytes], None] | None = None,
    ) -> None:
        self.hub = hub
        self.village = village
        self.output_args = output_args
        self.on_output = on_output
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether ffmpeg runs."""
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start ffmpeg, prime it with the channel's recent audio and tap the channel."""
        self._proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-hide_banner", "-v", "error",
            "-f", "mp3", "-probesize", "4096", "-analyzeduration", "0", "-i", "pipe:0",
            *self.output_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if self.on_output else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self.tap(self.hub.channel(self.village).recent_audio())
        self.hub.add_tap(self.village, self.tap)
        if self.on_output is not None:
            self._reader = asyncio.create_task(self._read(), name=f"transcode-{self.village}")

    def tap(self, chunk: bytes) -> None:
        """Hand a chunk of the channel's MP3 to ffmpeg without waiting."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return
        transport = proc.stdin.transport
        if transport.is_closing() or transport.get_write_buffer_size() > STDIN_BOUND:
            return
        proc.stdin.write(chunk)

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        assert self.on_output is not None
        while data := await self._proc.stdout.read(65536):
            self.on_output(data)

    async def stop(self) -> None:
        """Untap the channel and end ffmpeg."""
        self.hub.remove_tap(self.village, self.tap)
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
