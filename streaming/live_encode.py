"""Live audio into the channel format, once per session: encode, fan out to feeds, record.

A live session (a browser mic over WebRTC, or an Icecast source client) produces audio in real
time. It is turned into channel-format MP3 (:mod:`recordings.channel_format`) exactly once, and
the same frames go to every targeted village's ``LiveFeed`` and to a recording file that is
ingested into the archive when the session ends.

- :class:`Mp3Encoder` — PCM frames (any rate/layout) → MP3 frames, in process (PyAV libmp3lame).
- :class:`SessionOutput` — one session's sink: whole frames to every feed and to the recording.
- :class:`SourceTranscoder` — any compressed stream (a source client's MP3/Ogg) → channel MP3
  through one whitelisted ffmpeg process (:class:`streaming.transcode.FfmpegPipe`).
"""

from __future__ import annotations

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
from recordings.channel_format import (
    FRAME_S,
    MP3_BITRATE_KBPS,
    MP3_STREAM_ARGS,
    SAMPLE_RATE_HZ,
    FrameSplitter,
)

from .transcode import LIVE_DEMUXERS, FfmpegPipe

__all__ = [
    "SOURCE_FORMATS",
    "LiveError",
    "LiveSink",
    "Mp3Encoder",
    "Recording",
    "SessionOutput",
    "SourceTranscoder",
]

log = logging.getLogger(__name__)


# Live audio is made in real time: a source may run this far ahead of the clock (its encoder's
# buffer), and what comes faster is dropped, so that a file pushed at full speed (or one that
# decodes to far more than it is) cannot fill the channel's queue and the recording.
LIVE_AHEAD_MAX_S = 5.0


class LiveError(VillagecastError):
    """Live session error."""


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
        self._codec.sample_rate = SAMPLE_RATE_HZ
        self._codec.layout = "mono"
        self._codec.format = "s16p"
        self._codec.bit_rate = MP3_BITRATE_KBPS * 1000  # CBR: libmp3lame's default mode
        self._codec.time_base = fractions.Fraction(1, SAMPLE_RATE_HZ)
        self._codec.open()
        self._resampler = av.AudioResampler(format="s16p", layout="mono", rate=SAMPLE_RATE_HZ)
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

    def __init__(
        self,
        feeds: Sequence[LiveSink],
        recording: Path,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.feeds: list[LiveSink] = list(feeds)
        self._clock = clock
        self.recording = recording
        recording.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = recording.open("wb")
        self._splitter = FrameSplitter()
        self._encoder: Mp3Encoder | None = None
        self.frames = 0
        self.bytes = 0
        self.dropped_frames = 0  # arrived faster than real time (see LIVE_AHEAD_MAX_S)
        self.last_audio_at = clock()
        self._started_at: float | None = None
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
        now = self.last_audio_at = self._clock()
        if now < self._hold_until:
            return
        frames = self._splitter.feed(data)
        if not frames:
            return
        if self._started_at is None:
            self._started_at = now
        allowed = max(0, int((now - self._started_at + LIVE_AHEAD_MAX_S) / FRAME_S) - self.frames)
        if len(frames) > allowed:
            if not self.dropped_frames:
                log.warning("live audio arrives faster than real time; dropping the excess")
            self.dropped_frames += len(frames) - allowed
            frames = frames[:allowed]
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
        seconds = len(frames) * FRAME_S
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
            self._hold_until = self._clock() + seconds
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
        return Recording(self.recording, self.bytes, int(self.frames * FRAME_S * 1000))


# Input formats an Icecast source may declare, by Content-Type (demuxers of LIVE_DEMUXERS).
SOURCE_FORMATS = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "application/ogg": "ogg",
    "audio/aac": "aac",
    "audio/aacp": "aac",
    "audio/webm": "matroska",
}


class SourceTranscoder(FfmpegPipe):
    """A compressed live stream (any bitrate/rate) → channel MP3, through one ffmpeg process.

    ``start()``, ``await write(data)`` (False once ffmpeg has gone), ``await close()``.
    """

    def __init__(self, on_mp3: Callable[[bytes], None], input_format: str | None = None) -> None:
        super().__init__(
            ["-vn", *MP3_STREAM_ARGS, "pipe:1"], on_mp3, input_format=input_format,
            allowed=LIVE_DEMUXERS, input_options=("-probesize", "2048", "-analyzeduration", "0"),
            name="source-transcoder", read_size=4096,
        )  # fmt: skip
