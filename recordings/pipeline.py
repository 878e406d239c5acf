"""One ingest job's audio work: decode, check, trim, normalise loudness, encode the renditions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from . import transcode
from .analysis import Span, scan_raw
from .errors import EmptyAudio
from .media import (
    CHANNEL_BITRATE_KBPS,
    CHANNEL_SAMPLE_RATE,
    LIMITER_CEILING_DBFS,
    OPUS_BITRATE_KBPS,
    TARGET_LUFS,
    TARGET_TRUE_PEAK_DBTP,
    Loudness,
    check_complete,
    gain_for,
    needs_limiter,
)

__all__ = ["FORMATS", "Normalized", "normalize"]

log = logging.getLogger(__name__)

# format → (ffmpeg output arguments, file extension, nominal bitrate)
FORMATS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "mp3": (transcode.MP3_ARGS, "mp3", CHANNEL_BITRATE_KBPS),
    "opus": (transcode.OPUS_ARGS, "opus", OPUS_BITRATE_KBPS),
}
_TOLERANCE_LU = 0.6


@dataclass(frozen=True, slots=True)
class Normalized:
    """The result of :func:`normalize`: encoded files in the job's scratch directory."""

    span: Span
    source_loudness: Loudness
    gain_db: float
    loudness: Loudness  # measured on the mp3 rendition
    files: dict[str, Path]  # format → encoded file

    @property
    def duration_ms(self) -> int:
        """Length of the renditions."""
        return round(self.span.duration_s * 1000)


async def _encode_all(
    raw: Path,
    work: Path,
    span: Span,
    formats: tuple[str, ...],
    gain: float,
    ceiling: float,
    limiter: bool,
) -> tuple[dict[str, Path], Loudness]:
    files = {fmt: work / f"out.{FORMATS[fmt][1]}" for fmt in formats}
    limit_s = 120 + span.duration_s

    async def one(fmt: str) -> Loudness | None:
        await transcode.encode(
            raw,
            files[fmt],
            FORMATS[fmt][0],
            start_s=span.start_s,
            duration_s=span.duration_s,
            gain_db=gain,
            limiter=limiter,
            ceiling_dbfs=ceiling,
            limit_s=limit_s,
        )
        # The mp3 is measured while the opus is still encoding (the two use both cores).
        return await transcode.measure(files[fmt], limit_s) if fmt == formats[0] else None

    results = await asyncio.gather(*(one(fmt) for fmt in formats))
    measured = results[0]
    assert measured is not None
    return files, measured


async def normalize(
    src: Path,
    work: Path,
    *,
    claimed_s: float | None,
    max_duration_s: float,
    formats: tuple[str, ...] = ("mp3", "opus"),
) -> Normalized:
    """Decode ``src``, refuse it if incomplete, trim silence, normalise to −16 LUFS, encode."""
    raw = work / "pcm.f32"
    decode_timeout = 120 + (claimed_s or max_duration_s) / 2
    source = await transcode.decode_measure(src, raw, decode_timeout)
    actual_s = raw.stat().st_size / 4 / CHANNEL_SAMPLE_RATE
    check_complete(claimed_s, actual_s, max_duration_s)
    span = await asyncio.to_thread(scan_raw, raw, CHANNEL_SAMPLE_RATE, source.integrated_lufs)
    if span.duration_s < 0.1:
        raise EmptyAudio("the file holds only silence")
    gain = gain_for(source)
    ceiling = LIMITER_CEILING_DBFS
    limiter = needs_limiter(source, gain)
    files, measured = await _encode_all(raw, work, span, formats, gain, ceiling, limiter)
    off_target = abs(measured.integrated_lufs - TARGET_LUFS) > _TOLERANCE_LU
    too_hot = measured.true_peak_dbtp > TARGET_TRUE_PEAK_DBTP
    if off_target or too_hot:
        # Heavy limiting lowers loudness and encoders overshoot peaks: correct once from the
        # measurement of what we actually produced.
        log.info("second pass for %s: measured %s", src.name, measured)
        gain += TARGET_LUFS - measured.integrated_lufs
        if too_hot:
            ceiling -= measured.true_peak_dbtp - TARGET_TRUE_PEAK_DBTP + 0.5
        limiter = limiter or too_hot or needs_limiter(source, gain)
        files, measured = await _encode_all(raw, work, span, formats, gain, ceiling, limiter)
    raw.unlink(missing_ok=True)
    return Normalized(span, source, gain, measured, files)
