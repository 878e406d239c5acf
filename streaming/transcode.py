"""Every ffmpeg process of the streaming package: one owner (start, feed, stop, kill).

:class:`FfmpegPipe` is one ffmpeg reading stdin, its stdout going to a callback. Its input is
always whitelisted (``-protocol_whitelist pipe`` and a ``-format_whitelist`` of the demuxers it
may use, the demuxer forced with ``-f`` where known): a source client's bytes are as hostile as
an upload, and ffmpeg otherwise picks a demuxer (HLS, DASH, concat…) by content.

:class:`Transcoder` taps a channel: the channel's pacing loop hands each chunk to
:meth:`Transcoder.tap`, which writes it to ffmpeg without waiting; an encoder that stops
reading loses chunks instead of slowing the channel (the Ogg/Opus and HLS renditions).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .hub import ChannelHub

__all__ = ["LIVE_DEMUXERS", "FfmpegExit", "FfmpegPipe", "Transcoder"]

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
# What a live source may send (Icecast source clients: MP3, Ogg Vorbis/Opus, AAC, WebM).
LIVE_DEMUXERS = ("mp3", "ogg", "aac", "matroska")
STDIN_BOUND = 256 * 1024  # bytes queued for ffmpeg before chunks are skipped (taps)
_STDERR_KEPT = 2048


@dataclass(frozen=True, slots=True)
class FfmpegExit:
    """How an ffmpeg process ended: its exit code (negative: a signal) and its last words."""

    code: int | None
    killed: bool
    error: str  # the end of its stderr, for the log (never for a user)


class FfmpegPipe:
    """One ffmpeg process: bytes in on stdin, ``on_output`` gets its stdout (when given)."""

    def __init__(
        self,
        output_args: Sequence[str],
        on_output: Callable[[bytes], None] | None = None,
        *,
        input_format: str | None,
        allowed: Sequence[str] = LIVE_DEMUXERS,
        input_options: Sequence[str] = ("-probesize", "4096", "-analyzeduration", "0"),
        name: str = "ffmpeg",
        read_size: int = 65536,
    ) -> None:
        if input_format is not None and input_format not in allowed:
            raise ValueError(f"input format {input_format!r} is not allowed here")
        self.output_args = list(output_args)
        self.on_output = on_output
        self.input_format = input_format
        self.allowed = tuple(allowed)
        self.input_options = list(input_options)
        self.name = name
        self.read_size = read_size
        self.exit: FfmpegExit | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr = b""

    def command(self) -> list[str]:
        """The ffmpeg command line: whitelisted stdin in, ``output_args`` out."""
        whitelist = self.input_format or ",".join(self.allowed)
        forced = ["-f", self.input_format] if self.input_format else []
        return [
            FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error",
            "-protocol_whitelist", "pipe", "-format_whitelist", whitelist,
            *self.input_options, *forced, "-i", "pipe:0", *self.output_args,
        ]  # fmt: skip

    @property
    def running(self) -> bool:
        """Whether ffmpeg runs."""
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start ffmpeg."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if self.on_output else asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        proc = self._proc
        self._tasks = [asyncio.create_task(self._read_stderr(proc), name=f"{self.name}-stderr")]
        if self.on_output is not None:
            self._tasks.append(asyncio.create_task(self._read(proc), name=f"{self.name}-out"))

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        assert self.on_output is not None
        while data := await proc.stdout.read(self.read_size):
            self.on_output(data)

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while data := await proc.stderr.read(4096):
            self._stderr = (self._stderr + data)[-_STDERR_KEPT:]

    def write_nowait(self, data: bytes, bound: int = STDIN_BOUND) -> bool:
        """Queue bytes for ffmpeg without waiting; False (dropped) when it lags or has ended."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            return False
        transport = proc.stdin.transport
        if transport.is_closing() or transport.get_write_buffer_size() > bound:
            return False
        proc.stdin.write(data)
        return True

    async def write(self, data: bytes) -> bool:
        """Feed bytes, waiting while ffmpeg catches up; False once it has gone away."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdin.is_closing():
            return False
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> FfmpegExit | None:
        """End of input: let ffmpeg flush its last output, then reap it (killed after
        ``timeout_s``, or when cancelled)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return self.exit
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        killed = False
        try:
            await asyncio.wait_for(self._drain(proc), timeout_s)
        except TimeoutError:
            log.warning("%s did not finish in %.0f s; killed", self.name, timeout_s)
            killed = True
            await self._kill(proc)
        except asyncio.CancelledError:
            await self._kill(proc)
            raise
        self.exit = FfmpegExit(proc.returncode, killed, self._stderr.decode(errors="replace"))
        if proc.returncode not in (0, None) and not killed:
            log.info("%s exited with %s: %s", self.name, proc.returncode, self.exit.error[-500:])
        return self.exit

    async def stop(self, timeout_s: float = 5.0) -> FfmpegExit | None:
        """Stop now: close its input and terminate it (killed after ``timeout_s``)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        return await self.close(timeout_s)

    async def _drain(self, proc: asyncio.subprocess.Process) -> None:
        await asyncio.gather(*(asyncio.shield(t) for t in self._tasks), return_exceptions=True)
        await proc.wait()

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


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
        self._pipe = FfmpegPipe(
            output_args, on_output, input_format="mp3", allowed=("mp3",),
            name=f"transcode-{village}",
        )  # fmt: skip

    @property
    def running(self) -> bool:
        """Whether ffmpeg runs."""
        return self._pipe.running

    async def start(self) -> None:
        """Start ffmpeg, prime it with the channel's recent audio and tap the channel."""
        await self._pipe.start()
        self.tap(self.hub.channel(self.village).recent_audio())
        self.hub.add_tap(self.village, self.tap)

    def tap(self, chunk: bytes) -> None:
        """Hand a chunk of the channel's MP3 to ffmpeg without waiting."""
        self._pipe.write_nowait(chunk)

    async def stop(self) -> None:
        """Untap the channel and end ffmpeg."""
        self.hub.remove_tap(self.village, self.tap)
        await self._pipe.stop()
