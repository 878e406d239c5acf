"""One ingest job's audio work: decode, check, trim, normalise loudness, encode the renditions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from . import transcode
from .analysis import Span, scan_raw
from .channel_format import (
    MP3_BITRATE_KBPS,
    MP3_FILE_ARGS,
    OPUS_BITRATE_KBPS,
    OPUS_FILE_ARGS,
    SAMPLE_RATE_HZ,
    FrameSplitter,
    parse_header,
)
from .errors import DecodesTooLong, EmptyAudio, ProcessingFailed
from .media import (
    LIMITER_CEILING_DBFS,
    TARGET_LUFS,
    TARGET_TRUE_PEAK_DBTP,
    Loudness,
    check_complete,
    decoded_bound_s,
    gain_for,
    needs_limiter,
)

__all__ = ["FORMATS", "Normalized", "normalize"]

log = logging.getLogger(__name__)

# format → (ffmpeg output arguments, file extension, nominal bitrate)
FORMATS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "mp3": (MP3_FILE_ARGS, "mp3", MP3_BITRATE_KBPS),
    "opus": (OPUS_FILE_ARGS, "opus", OPUS_BITRATE_KBPS),
}
_TOLERANCE_LU = 0.6
_CODEC_OVERSHOOT_DB = 0.5  # MP3/Opus encoding can raise true peaks a little


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
        if fmt == "mp3":
            await asyncio.to_thread(_check_channel_format, files[fmt])
        # The mp3 is measured while the opus is still encoding (the two use both cores).
        return await transcode.measure(files[fmt], limit_s) if fmt == formats[0] else None

    # A task group cancels (and so kills) the other encoder when one fails: no ffmpeg outlives
    # its job's scratch directory.
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(fmt)) for fmt in formats]
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
    measured = tasks[0].result()
    assert measured is not None
    return files, measured


def _check_channel_format(mp3: Path) -> None:
    """Refuse an mp3 rendition whose first frames are not the channel format (the channel
    sends them as they are, so a wrong encoder setting would reach every speaker)."""
    with mp3.open("rb") as f:
        frames = FrameSplitter().feed(f.read(64 * 1024))
    headers = [parse_header(frame) for frame in frames]
    if not headers or any(
        h is None
        or (h.bitrate_kbps, h.sample_rate, h.mono) != (MP3_BITRATE_KBPS, SAMPLE_RATE_HZ, True)
        for h in headers
    ):
        raise ProcessingFailed("the mp3 rendition is not in the channel format")


async def normalize(
    src: Path,
    work: Path,
    *,
    claimed_s: float | None,
    accepted_s: float | None,
    demuxer: str | None,
    max_duration_s: float,
    formats: tuple[str, ...] = ("mp3", "opus"),
) -> Normalized:
    """Decode ``src``, refuse it if incomplete, trim silence, normalise to −16 LUFS, encode.

    ``accepted_s`` is the length the upload check measured: the decode is cut a little past it
    (or past ``max_duration_s`` when nothing was measured), whatever the file's timestamps say.
    """
    raw = work / "pcm.f32"
    bound_s = decoded_bound_s(accepted_s, max_duration_s)
    decoded = await transcode.decode_measure(
        src, raw, demuxer=demuxer, max_seconds=bound_s, limit_s=120 + bound_s / 2
    )
    if decoded.cut and accepted_s is not None:
        raise DecodesTooLong(
            f"the audio decodes to more than {bound_s:.0f} s although the file says it lasts "
            f"{accepted_s:.0f} s; decoding was stopped"
        )
    check_complete(claimed_s, decoded.seconds, max_duration_s)  # cut: too long, by the limit
    source = decoded.loudness
    assert source is not None
    span = await asyncio.to_thread(scan_raw, raw, SAMPLE_RATE_HZ, source.integrated_lufs)
    if span.duration_s < 0.1:
        raise EmptyAudio("the file holds only silence")
    gain = gain_for(source)
    pcm, pcm_span = raw, span
    if needs_limiter(source, gain):
        pcm, gain = await _limit(raw, work, span, gain)
        pcm_span = Span(0.0, span.duration_s, span.peaks)
    files, measured = await _encode_all(pcm, work, pcm_span, formats, gain, 0.0, False)
    if measured.true_peak_dbtp > TARGET_TRUE_PEAK_DBTP or (
        abs(measured.integrated_lufs - TARGET_LUFS) > _TOLERANCE_LU
    ):
        # Rare: the encoder moved loudness or peaks. Correct once from what we produced.
        log.info("second pass for %s: measured %s", src.name, measured)
        gain += min(
            TARGET_LUFS - measured.integrated_lufs,
            TARGET_TRUE_PEAK_DBTP - 0.3 - measured.true_peak_dbtp,
        )
        files, measured = await _encode_all(pcm, work, pcm_span, formats, gain, 0.0, False)
    return Normalized(span, source, gain, measured, files)


async def _limit(raw: Path, work: Path, span: Span, gain: float) -> tuple[Path, float]:
    """Gain and limit the span into new PCM; returns it and the small gain still to apply.

    Limiting lowers loudness a little, so the gain before the limiter is raised from the measured
    shortfall (up to three cheap passes), and what remains is applied at encoding time within
    the headroom the limiter left.
    """
    limited = work / "limited.f32"
    limit_s = 120 + span.duration_s
    for _ in range(3):
        measured = await transcode.shape(
            raw, limited, start_s=span.start_s, duration_s=span.duration_s, gain_db=gain,
            ceiling_dbfs=LIMITER_CEILING_DBFS, limit_s=limit_s,
        )  # fmt: skip
        shortfall = TARGET_LUFS - measured.integrated_lufs
        headroom = TARGET_TRUE_PEAK_DBTP - _CODEC_OVERSHOOT_DB - measured.true_peak_dbtp
        if shortfall <= headroom + _TOLERANCE_LU / 2:
            break  # what is missing fits in the headroom: a plain gain at encoding time
        gain += shortfall
    return limited, min(shortfall, headroom)
