"""Every ffmpeg/ffprobe call of the ingest pipeline: asyncio subprocesses, typed results."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from .errors import EmptyAudio, NotAudio, ProcessingFailed
from .media import (
    CHANNEL_BITRATE_KBPS,
    CHANNEL_SAMPLE_RATE,
    LIMITER_CEILING_DBFS,
    OPUS_BITRATE_KBPS,
    Loudness,
    Probe,
    parse_ebur128,
    parse_probe,
    parse_progress_seconds,
)

__all__ = [
    "MP3_ARGS",
    "OPUS_ARGS",
    "decode_measure",
    "encode",
    "gain_filter",
    "measure",
    "probe",
    "readable_seconds",
    "run",
    "shape",
]

log = logging.getLogger(__name__)

FFMPEG = "ffmpeg"
FFPROBE = "ffprobe"

# The channel format: 64 kbps CBR mono 48 kHz MPEG-1 Layer III, no ID3v1, no ffmpeg ID3v2
# (mutagen writes the tags), with a LAME/Xing Info frame. lame -q 5 takes half the time of its
# default -q 3 and writes the same CBR frames.
MP3_ARGS = (
    "-c:a", "libmp3lame", "-b:a", f"{CHANNEL_BITRATE_KBPS}k", "-ar", str(CHANNEL_SAMPLE_RATE),
    "-ac", "1", "-compression_level", "5", "-id3v2_version", "0", "-write_id3v1", "0",
    "-map_metadata", "-1", "-f", "mp3",
)  # fmt: skip
OPUS_ARGS = (
    "-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k", "-ar", str(CHANNEL_SAMPLE_RATE),
    "-ac", "1", "-vbr", "constrained", "-compression_level", "5", "-map_metadata", "-1",
    "-f", "ogg",
)  # fmt: skip
RAW_INPUT = ("-f", "f32le", "-ar", str(CHANNEL_SAMPLE_RATE), "-ch_layout", "mono")


async def run(args: list[str], limit_s: float) -> tuple[int, bytes, bytes]:
    """Run a command without blocking the loop: (code, stdout, stderr); killed after ``limit_s``."""
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    return proc.returncode or 0, out, err


def _tail(err: bytes) -> str:
    return err.decode(errors="replace").strip()[-1500:]


async def probe(path: Path, limit_s: float = 30) -> Probe:
    """ffprobe an upload; :class:`NotAudio` when ffprobe cannot read it at all."""
    if (await asyncio.to_thread(path.stat)).st_size == 0:
        raise EmptyAudio("the file is empty")
    args = [FFPROBE, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    code, out, err = await run(args, limit_s)
    if code != 0:
        log.info("ffprobe refused %s: %s", path.name, _tail(err))
        raise NotAudio("the file is not audio in a format we can read")
    try:
        return parse_probe(json.loads(out))
    except (ValueError, TypeError) as exc:
        raise NotAudio("the file is not audio in a format we can read") from exc


async def readable_seconds(path: Path, limit_s: float = 60) -> float:
    """How long the first audio stream really is, by demuxing every packet (no decoding: fast)."""
    args = [
        FFMPEG, "-nostdin", "-v", "error", "-nostats", "-i", str(path), "-map", "0:a:0",
        "-c", "copy", "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    code, out, err = await run(args, limit_s)
    if code != 0:
        log.info("demux failed for %s: %s", path.name, _tail(err))
        raise NotAudio("the audio stream cannot be read")
    return parse_progress_seconds(out.decode(errors="replace"))


async def decode_measure(src: Path, raw_out: Path, limit_s: float) -> Loudness:
    """Decode the first audio stream to mono 48 kHz f32le and measure it (EBU R128) in one pass."""
    graph = (
        f"[0:a:0]aresample={CHANNEL_SAMPLE_RATE},aformat=sample_fmts=flt:channel_layouts=mono,"
        "asplit[pcm][m];[m]ebur128=peak=true:framelog=verbose,anullsink"
    )
    args = [
        FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-y", "-i", str(src),
        "-filter_complex", graph, "-map", "[pcm]", "-f", "f32le", str(raw_out),
    ]  # fmt: skip
    code, _, err = await run(args, limit_s)
    text = err.decode(errors="replace")
    if code != 0:
        log.warning("decode failed for %s: %s", src.name, text[-1500:])
        raise ProcessingFailed("the audio could not be decoded (corrupt or unsupported file)")
    return parse_ebur128(text)


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
        FFMPEG, "-nostdin", "-v", "error", "-y", *RAW_INPUT, "-ss", f"{start_s:.3f}",
        "-t", f"{duration_s:.3f}", "-i", str(raw),
        "-af", gain_filter(gain_db, limiter, ceiling_dbfs), *fmt_args, str(out),
    ]  # fmt: skip
    code, _, err = await run(args, limit_s)
    if code != 0:
        log.warning("encode failed for %s: %s", out.name, _tail(err))
        raise ProcessingFailed("the audio could not be encoded")


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
    args = [
        FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-y", *RAW_INPUT, "-ss", f"{start_s:.3f}",
        "-t", f"{duration_s:.3f}", "-i", str(raw), "-filter_complex", graph, "-map", "[pcm]",
        "-f", "f32le", str(out_raw),
    ]  # fmt: skip
    code, _, err = await run(args, limit_s)
    text = err.decode(errors="replace")
    if code != 0:
        log.warning("limiter pass failed: %s", text[-1500:])
        raise ProcessingFailed("the audio could not be processed")
    return parse_ebur128(text)


async def measure(path: Path, limit_s: float = 600) -> Loudness:
    """EBU R128 integrated loudness and true peak of any audio file."""
    args = [
        FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
        "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-",
    ]  # fmt: skip
    code, _, err = await run(args, limit_s)
    if code != 0:
        raise ProcessingFailed("the rendition could not be measured")
    return parse_ebur128(err.decode(errors="replace"))
