"""Every process of the recordings package (ffmpeg, ffprobe, espeak-ng): one wrapper, typed results.

ffmpeg is a parser of hostile files, so every call here holds the same rules, in one place:

- inputs are opened with ``-protocol_whitelist file,pipe`` and a ``-format_whitelist`` of audio
  demuxers (:data:`recordings.media.UPLOAD_DEMUXERS`), with the probed demuxer forced by ``-f``;
- every output file is bounded in size (``-fs``) and every process in time (killed after
  ``limit_s``, and on cancellation): container timestamps lie, so ``-t`` alone bounds nothing;
- a process that fails because the disk is full raises :class:`StorageFull`, never a false
  "corrupt file".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .channel_format import BYTES_PER_S, OPUS_BITRATE_KBPS, SAMPLE_RATE_HZ
from .errors import EmptyAudio, NotAudio, ProcessingFailed, StorageFull
from .media import (
    LIMITER_CEILING_DBFS,
    UPLOAD_DEMUXERS,
    Loudness,
    Probe,
    parse_ebur128,
    parse_probe,
    parse_progress_seconds,
)

__all__ = [
    "ESPEAK",
    "FFMPEG",
    "PCM_BYTES_PER_S",
    "Completed",
    "Decoded",
    "decode_measure",
    "encode",
    "gain_filter",
    "input_args",
    "max_rendition_bytes",
    "measure",
    "probe",
    "readable_seconds",
    "run",
    "run_blocking",
    "shape",
]

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"
ESPEAK = "espeak-ng"

PCM_BYTES_PER_S = 4 * SAMPLE_RATE_HZ  # mono float32: the scratch format of a job
_PROTOCOLS = ("-protocol_whitelist", "file,pipe")
_RAW = "f32le"
RAW_INPUT = ("-f", _RAW, "-ar", str(SAMPLE_RATE_HZ), "-ch_layout", "mono")
_DISK_FULL = (b"No space left on device", b"Disk quota exceeded")


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished process: exit code and what it wrote."""

    code: int
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        """Whether it exited with 0."""
        return self.code == 0

    @property
    def disk_full(self) -> bool:
        """Whether it failed because the disk (or quota) is full."""
        return any(marker in self.stderr for marker in _DISK_FULL)

    def tail(self) -> str:
        """The end of stderr, for the log (never for a user)."""
        return self.stderr.decode(errors="replace").strip()[-1500:]


@dataclass(frozen=True, slots=True)
class Decoded:
    """The result of :func:`decode_measure`: the loudness and the length of the PCM written."""

    loudness: Loudness | None  # None when cut
    seconds: float
    cut: bool  # stopped at the size bound: the audio is longer than that


async def run(args: list[str], limit_s: float, *, stdin: bytes | None = None) -> Completed:
    """Run a command without blocking the loop; killed after ``limit_s`` or when cancelled."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), limit_s)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    return Completed(proc.returncode or 0, out, err)


def run_blocking(args: list[str], limit_s: float) -> Completed:
    """:func:`run` for blocking callers (the chimes, made once at start in a thread)."""
    proc = subprocess.run(args, capture_output=True, timeout=limit_s, check=False)
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def _checked(done: Completed, error: Exception, what: str) -> Completed:
    """``done`` when it succeeded; otherwise StorageFull (disk full) or ``error``, logged."""
    if done.ok:
        return done
    if done.disk_full:
        log.warning("%s: the disk is full", what)
        raise StorageFull(f"the server ran out of disk space while {what}")
    log.warning("%s failed: %s", what, done.tail())
    raise error


def input_args(path: Path, demuxer: str | None = None) -> list[str]:
    """ffmpeg input options for a file we were given: whitelisted, the demuxer forced if known."""
    if demuxer is None:
        return [*_PROTOCOLS, "-format_whitelist", ",".join(UPLOAD_DEMUXERS), "-i", str(path)]
    if demuxer not in UPLOAD_DEMUXERS and demuxer != _RAW:
        raise NotAudio(f"the {demuxer} format is not accepted")
    return [*_PROTOCOLS, "-format_whitelist", demuxer, "-f", demuxer, "-i", str(path)]


def _raw_input(path: Path, start_s: float, duration_s: float) -> list[str]:
    return [
        *_PROTOCOLS, "-format_whitelist", _RAW, *RAW_INPUT, "-ss", f"{start_s:.3f}",
        "-t", f"{duration_s:.3f}", "-i", str(path),
    ]  # fmt: skip


def max_rendition_bytes(fmt_args: tuple[str, ...], duration_s: float) -> int:
    """The size bound of an encoded rendition: twice its nominal bitrate, plus headers."""
    per_s = BYTES_PER_S if "libmp3lame" in fmt_args else OPUS_BITRATE_KBPS * 1000 // 8
    return int(2 * per_s * duration_s) + 256 * 1024


async def probe(path: Path, limit_s: float = 30) -> Probe:
    """ffprobe an upload (audio demuxers only); :class:`NotAudio` when it cannot read it."""
    if (await asyncio.to_thread(path.stat)).st_size == 0:
        raise EmptyAudio("the file is empty")
    args = [
        FFPROBE, "-v", "error", *_PROTOCOLS, "-format_whitelist", ",".join(UPLOAD_DEMUXERS),
        "-show_format", "-show_streams", "-of", "json", str(path),
    ]  # fmt: skip
    done = await run(args, limit_s)
    if not done.ok:
        log.info("ffprobe refused %s: %s", path.name, done.tail())
        raise NotAudio("the file is not audio in a format we can read")
    try:
        return parse_probe(json.loads(done.stdout))
    except (ValueError, TypeError) as exc:
        raise NotAudio("the file is not audio in a format we can read") from exc


async def readable_seconds(path: Path, demuxer: str, limit_s: float = 60) -> float:
    """How long the first audio stream's packets say it is (demuxing only, no decoding: fast)."""
    args = [
        FFMPEG, "-nostdin", "-v", "error", "-nostats", *input_args(path, demuxer),
        "-map", "0:a:0", "-c", "copy", "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    done = await run(args, limit_s)
    _checked(done, NotAudio("the audio stream cannot be read"), f"demuxing {path.name}")
    return parse_progress_seconds(done.stdout.decode(errors="replace"))


async def decode_measure(
    src: Path, raw_out: Path, *, demuxer: str | None, max_seconds: float, limit_s: float
) -> Decoded:
    """Decode the first audio stream to mono 48 kHz f32le and measure it (EBU R128) in one pass.

    The PCM is cut at ``max_seconds`` (``-fs``: the decoded size is the truth, whatever the
    timestamps say); a decode that reaches the cut returns ``cut=True`` and no loudness.
    """
    max_bytes = int(max_seconds * PCM_BYTES_PER_S)
    graph = (
        f"[0:a:0]aresample={SAMPLE_RATE_HZ},aformat=sample_fmts=flt:channel_layouts=mono,"
        "asplit[pcm][m];[m]ebur128=peak=true:framelog=verbose,anullsink"
    )
    args = [
        FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-y", *input_args(src, demuxer),
        "-filter_complex", graph, "-map", "[pcm]", "-fs", str(max_bytes), "-f", _RAW, str(raw_out),
    ]  # fmt: skip
    done = await run(args, limit_s)
    error = ProcessingFailed("the audio could not be decoded (corrupt or unsupported file)")
    _checked(done, error, f"decoding {src.name}")
    written = (await asyncio.to_thread(raw_out.stat)).st_size
    if written >= max_bytes:
        return Decoded(None, written / PCM_BYTES_PER_S, cut=True)
    try:
        loudness = parse_ebur128(done.stderr.decode(errors="replace"))
    except ValueError:
        raise error from None
    return Decoded(loudness, written / PCM_BYTES_PER_S, cut=False)


def gain_filter(gain_db: float, limiter: bool, ceiling_dbfs: float) -> str:
    """The ffmpeg filter chain of a gain, optionally followed by the peak limiter."""
    chain = [f"volume={gain_db:.2f}dB"]
    if limiter:
        limit = 10 ** (ceiling_dbfs / 20)
        chain.append(f"alimiter=limit={limit:.4f}:level=false:attack=5:release=50")
    return ",".join(chain)


async def encode(
    raw: Path,
    out: Path,
    fmt_args: tuple[str, ...],
    *,
    start_s: float,
    duration_s: float,
    gain_db: float,
    limiter: bool,
    ceiling_dbfs: float = LIMITER_CEILING_DBFS,
    limit_s: float = 600,
) -> None:
    """Encode a span of the decoded PCM with gain (and limiter) into one rendition."""
    args = [
        FFMPEG, "-nostdin", "-v", "error", "-y", *_raw_input(raw, start_s, duration_s),
        "-af", gain_filter(gain_db, limiter, ceiling_dbfs), *fmt_args,
        "-fs", str(max_rendition_bytes(fmt_args, duration_s)), str(out),
    ]  # fmt: skip
    done = await run(args, limit_s)
    _checked(done, ProcessingFailed("the audio could not be encoded"), f"encoding {out.name}")


async def shape(
    raw: Path,
    out_raw: Path,
    *,
    start_s: float,
    duration_s: float,
    gain_db: float,
    ceiling_dbfs: float,
    limit_s: float,
) -> Loudness:
    """Cut the span, apply gain and the peak limiter into new PCM, and measure it, in one pass."""
    graph = (
        f"[0:a]{gain_filter(gain_db, True, ceiling_dbfs)},asplit[pcm][m];"
        "[m]ebur128=peak=true:framelog=verbose,anullsink"
    )
    max_bytes = int((duration_s + 1) * PCM_BYTES_PER_S)
    args = [
        FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-y", *_raw_input(raw, start_s, duration_s),
        "-filter_complex", graph, "-map", "[pcm]", "-fs", str(max_bytes), "-f", _RAW,
        str(out_raw),
    ]  # fmt: skip
    done = await run(args, limit_s)
    _checked(done, ProcessingFailed("the audio could not be processed"), "limiting")
    return parse_ebur128(done.stderr.decode(errors="replace"))


async def measure(path: Path, limit_s: float = 600) -> Loudness:
    """EBU R128 integrated loudness and true peak of one of our renditions."""
    demuxer = "mp3" if path.suffix == ".mp3" else "ogg"
    args = [
        FFMPEG, "-nostdin", "-hide_banner", "-nostats", *input_args(path, demuxer),
        "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-",
    ]  # fmt: skip
    done = await run(args, limit_s)
    _checked(done, ProcessingFailed("the rendition could not be measured"), "measuring")
    return parse_ebur128(done.stderr.decode(errors="replace"))
