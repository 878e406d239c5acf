"""Live audio into the channel format, once per session: encode, fan out to feeds, record.

A live session (a browser mic over WebRTC, or an Icecast source client) produces audio in real
time. It is turned into channel-format MP3 (64 kbps CBR mono 48 kHz, MPEG-1 Layer III) exactly
once, and the same frames go to every targeted village's ``LiveFeed`` and to a recording file
that is ingested into the archive when the session ends.

- :class:`Mp3Encoder` — PCM frames (any rate/layout) → MP3 frames, in process (PyAV libmp3lame).
- :class:`Mp3FrameSplitter` — pure: a byte stream → whole MP3 frames (skips ID3/Xing/garbage).
- :class:`SessionOutput` — one session's sink: whole frames to every feed and to the recording.
- :class:`SourceTranscoder` — any compressed stream (a source client's MP3/Ogg) → channel MP3
  through an ffmpeg subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import av
from av.audio.frame import AudioFrame

from devices.errors import VillagecastError

__all__ = [
    "CHANNEL_BITRATE_KBPS",
    "CHANNEL_RATE_HZ",
    "FRAME_SAMPLES",
    "LiveError",
    "LiveSink",
    "Mp3Encoder",
    "Mp3FrameSplitter",
    "Recording",
    "SessionOutput",
    "SourceTranscoder",
    "mp3_frame_length",
]

log = logging.getLogger(__name__)

CHANNEL_RATE_HZ = 48000
CHANNEL_BITRATE_KBPS = 64
FRAME_SAMPLES = 1152  # MPEG-1 Layer III: one frame = 24 ms at 48 kHz
FRAME_MS = FRAME_SAMPLES * 1000 / CHANNEL_RATE_HZ


class LiveError(VillagecastError):
    """Live session error."""


# MPEG-1/2/2.5 Layer III header tables (index by the header's bits).
_BITRATES_KBPS = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),  # MPEG-2
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0),  # MPEG-2.5
}
_RATES_HZ = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frame_length(header: bytes) -> int | None:
    """Byte length of the Layer III frame whose 4-byte header this is (None: not a header)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 0x3
    layer = (header[1] >> 1) & 0x3
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0x3
    if version == 1 or layer != 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None
    bitrate = _BITRATES_KBPS[version][bitrate_index] * 1000
    rate = _RATES_HZ[version][rate_index]
    padding = (header[2] >> 1) & 0x1
    coefficient = 144 if version == 3 else 72
    return coefficient * bitrate // rate + padding


class Mp3FrameSplitter:
    """Cut a byte stream into whole MP3 frames; bytes that are not frames are dropped."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the frames completed by them."""
        self._buffer += data
        frames: list[bytes] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 4:
            length = mp3_frame_length(bytes(buf[pos : pos + 4]))
            if length is None:
                pos += 1  # resync: ID3 tag, garbage or a torn frame
                continue
            if len(buf) - pos < length:
                break
            frames.append(bytes(buf[pos : pos + length]))
            pos += length
        del buf[:pos]
        return frames


class LiveSink(Protocol):
    """Where live channel-format MP3 goes (``streaming.hub.LiveFeed`` implements it)."""

    def push(self, data: bytes) -> None:
        """Take some channel-format MP3 (whole frames), arriving in real time."""
        ...

    def close(self) -> None:
        """The session has ended."""
        ...

    @property
    def closed(self) -> bool:
        """True once closed here, or once the channel ended the item (preempted, cancelled)."""
        ...


class Mp3Encoder:
    """PCM audio frames of any rate and layout → channel-format MP3 frames (libmp3lame)."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libmp3lame", "w")
        self._codec.sample_rate = CHANNEL_RATE_HZ
        self._codec.layout = "mono"
        self._codec.format = "s16p"
        self._codec.bit_rate = CHANNEL_BITRATE_KBPS * 1000  # CBR: libmp3lame's default mode
        self._codec.time_base = fractions.Fraction(1, CHANNEL_RATE_HZ)
        self._codec.open()
        self._resampler = av.AudioResampler(format="s16p", layout="mono", rate=CHANNEL_RATE_HZ)
        self._samples = 0

    def encode(self, frame: AudioFrame) -> bytes:
        """Encode one frame; returns the MP3 frames it completed (possibly none)."""
        out = bytearray()
        for mono in self._resampler.resample(frame):
            mono.pts = self._samples
            self._samples += mono.samples
            for packet in self._codec.encode(mono):
                out += bytes(packet)
        return bytes(out)

    def flush(self) -> bytes:
        """The encoder's remaining frames at the end of the session."""
        out = bytearray()
        with contextlib.suppress(av.error.EOFError):
            for mono in self._resampler.resample(None):
                mono.pts = self._samples
                self._samples += mono.samples
                for packet in self._codec.encode(mono):
                    out += bytes(packet)
            for packet in self._codec.encode(None):
                out += bytes(packet)
        return bytes(out)


@dataclass(frozen=True, slots=True)
class Recording:
    """What a session left behind: the channel-format MP3 file of everything said."""

    path: Path
    bytes: int
    duration_ms: int


class SessionOutput:
    """One live session's sink: whole MP3 frames to every feed and to the recording file.

    A feed that raises is closed and dropped, so one broken channel never stops the others.
    """

    def __init__(self, feeds: Sequence[LiveSink], recording: Path) -> None:
        self.feeds: list[LiveSink] = list(feeds)
        self.recording = recording
        recording.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = recording.open("wb")
        self._splitter = Mp3FrameSplitter()
        self._encoder: Mp3Encoder | None = None
        self.frames = 0
        self.bytes = 0
        self.last_audio_at = time.monotonic()
        self.closed = False
        self._hold_until = 0.0  # the speaker's audio is held back while the opening chime plays

    def push_frame(self, frame: AudioFrame) -> None:
        """Encode a PCM frame (once) and send the result everywhere."""
        if self.closed:
            return  # frames still in flight after the session ended
        if self._encoder is None:
            self._encoder = Mp3Encoder()
        self.push_mp3(self._encoder.encode(frame))

    def push_mp3(self, data: bytes) -> None:
        """Send channel-format MP3 bytes (any cut) everywhere, as whole frames."""
        if self.closed or not data:
            return
        self.last_audio_at = time.monotonic()
        if self.last_audio_at < self._hold_until:
            return
        frames = self._splitter.feed(data)
        if not frames:
            return
        chunk = b"".join(frames)
        self.frames += len(frames)
        self.bytes += len(chunk)
        if self._file is not None:
            self._file.write(chunk)
        for feed in list(self.feeds):
            try:
                feed.push(chunk)
            except Exception:
                log.exception("live feed failed; dropping it")
                self._drop(feed)

    def play_jingle(self, frames: Sequence[bytes], *, hold: bool) -> float:
        """Send frames (a chime) to the feeds only, not to the recording; returns its seconds.

        With ``hold``, the speaker's audio is dropped until the chime has played (an opening
        chime: the channel must not queue the speaker's words behind it, which would add its
        length to the delay for the whole session).
        """
        seconds = len(frames) * FRAME_MS / 1000
        if self.closed or not frames:
            return 0.0
        chunk = b"".join(frames)
        for feed in list(self.feeds):
            try:
                feed.push(chunk)
            except Exception:
                log.exception("live feed failed; dropping it")
                self._drop(feed)
        if hold:
            self._hold_until = time.monotonic() + seconds
        return seconds

    @property
    def feeds_ended(self) -> bool:
        """Every channel has ended the live item (cancelled, preempted): nobody hears it now."""
        return all(feed.closed for feed in self.feeds)

    def _drop(self, feed: LiveSink) -> None:
        self.feeds.remove(feed)
        with contextlib.suppress(Exception):
            feed.close()

    def close(self, outro: Sequence[bytes] = ()) -> Recording:
        """Flush the encoder, send ``outro`` (a closing chime), close every feed and the file."""
        if not self.closed:
            if self._encoder is not None:
                self.push_mp3(self._encoder.flush())
            self.play_jingle(outro, hold=False)
            self.closed = True
            for feed in list(self.feeds):
                self._drop(feed)
            if self._file is not None:
                self._file.close()
                self._file = None
        return Recording(self.recording, self.bytes, int(self.frames * FRAME_MS))


# Input formats an Icecast source may declare, by Content-Type.
SOURCE_FORMATS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "application/ogg": "ogg",
    "audio/aac": "aac",
    "audio/aacp": "aac",
    "audio/webm": "webm",
}


class SourceTranscoder:
    """A compressed live stream (any bitrate/rate) → channel MP3, through one ffmpeg process."""

    def __init__(self, on_mp3: Callable[[bytes], None], input_format: str | None = None) -> None:
        self._on_mp3 = on_mp3
        self._input_format = input_format
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    def command(self) -> list[str]:
        """The ffmpeg command line (low-latency input, channel-format raw MP3 frames out)."""
        fmt = ["-f", self._input_format] if self._input_format else []
        return [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
            "-probesize", "2048", "-analyzeduration", "0",
            *fmt, "-i", "pipe:0",
            "-vn", "-ac", "1", "-ar", str(CHANNEL_RATE_HZ),
            "-c:a", "libmp3lame", "-b:a", f"{CHANNEL_BITRATE_KBPS}k",
            "-write_xing", "0", "-id3v2_version", "0", "-flush_packets", "1",
            "-f", "mp3", "pipe:1",
        ]  # fmt: skip

    async def start(self) -> None:
        """Start ffmpeg."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while chunk := await self._proc.stdout.read(4096):
            self._on_mp3(chunk)

    async def write(self, data: bytes) -> bool:
        """Feed incoming bytes; False once ffmpeg has gone away."""
        if self._proc is None or self._proc.stdin is None or self._proc.stdin.is_closing():
            return False
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    async def close(self, timeout_s: float = 5.0) -> None:
        """End of input: let ffmpeg flush its last frames, then reap it."""
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()
        try:
            if self._reader is not None:
                await asyncio.wait_for(asyncio.shield(self._reader), timeout_s)
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            log.warning("ffmpeg source transcoder did not finish in %.0f s; killed", timeout_s)
            await self._kill(proc)
        except asyncio.CancelledError:
            await self._kill(proc)
            raise
        finally:
            self._proc = None

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
