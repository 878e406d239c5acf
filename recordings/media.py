"""Pure decisions about media: what a probe says, which uploads we accept, and loudness math."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import AudioTooLong, EmptyAudio, NotAudio, TruncatedAudio

__all__ = [
    "TARGET_LUFS",
    "TARGET_TRUE_PEAK_DBTP",
    "UPLOAD_DEMUXERS",
    "Loudness",
    "Probe",
    "check_complete",
    "check_probe",
    "decoded_bound_s",
    "demuxer_of",
    "gain_for",
    "needs_limiter",
    "original_extension",
    "parse_ebur128",
    "parse_probe",
    "parse_progress_seconds",
]

TARGET_LUFS = -16.0
TARGET_TRUE_PEAK_DBTP = -1.0
# The limiter aims below the target so that MP3/Opus encoding overshoot stays under it.
LIMITER_CEILING_DBFS = -2.5

# The only demuxers ffmpeg may use on an upload (``-format_whitelist``): audio containers that
# never open another file. Without it, ffmpeg picks a demuxer by content, and a DASH manifest or
# HLS playlist named ``.mp3`` makes it read local media files.
UPLOAD_DEMUXERS = (
    "wav", "w64", "mp3", "flac", "ogg", "matroska", "mov", "aac", "amr", "amrnb", "amrwb",
    "aiff", "caf", "asf",
)  # fmt: skip
# A decode may give this much more audio than the upload check measured (resampler and codec
# delay) before it is stopped as a file whose timestamps lie.
_DECODE_SLACK = 1.25
_DECODE_SLACK_S = 5.0

_ESTIMATED_DURATION = frozenset({"aac", "amr"})

_EXTENSIONS: dict[str, str] = {
    "wav": "wav",
    "mp3": "mp3",
    "flac": "flac",
    "ogg": "ogg",
    "amr": "amr",
    "aac": "aac",
    "matroska,webm": "webm",
    "mov,mp4,m4a,3gp,3g2,mj2": "m4a",
    "aiff": "aiff",
    "caf": "caf",
    "asf": "wma",
}


@dataclass(frozen=True, slots=True)
class Probe:
    """What ffprobe says about an upload's container and first audio stream."""

    format_name: str
    codec: str | None  # first audio stream's codec; None when there is no audio stream
    duration_s: float | None  # from the container or stream header (a claim, not a measurement)
    channels: int
    sample_rate: int
    size_bytes: int
    major_brand: str = ""
    readable_s: float | None = None  # what demuxing every packet found (set by the upload check)

    @property
    def claimed_s(self) -> float | None:
        """The duration the file's headers claim; None where ffprobe only estimates it from the
        bitrate (raw ADTS AAC, AMR), which would make a good VBR file look truncated."""
        return None if self.format_name in _ESTIMATED_DURATION else self.duration_s

    @property
    def has_audio(self) -> bool:
        """Whether the file has an audio stream."""
        return self.codec is not None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def parse_probe(data: dict[str, Any]) -> Probe:
    """A :class:`Probe` from ffprobe's ``-show_format -show_streams`` JSON."""
    fmt = data.get("format") or {}
    audio = next((s for s in data.get("streams") or [] if s.get("codec_type") == "audio"), None)
    duration = _float(fmt.get("duration"))
    if audio is not None and duration is None:
        duration = _float(audio.get("duration"))
    tags = fmt.get("tags") or {}
    return Probe(
        format_name=str(fmt.get("format_name", "")),
        codec=str(audio.get("codec_name")) if audio is not None else None,
        duration_s=duration,
        channels=int(audio.get("channels") or 0) if audio is not None else 0,
        sample_rate=int(_float(audio.get("sample_rate")) or 0) if audio is not None else 0,
        size_bytes=int(_float(fmt.get("size")) or 0),
        major_brand=str(tags.get("major_brand", "")).strip().lower(),
    )


def check_probe(probe: Probe, max_duration_s: float) -> None:
    """Refuse what is not an acceptable audio upload (raises a recordings error)."""
    if probe.size_bytes == 0:
        raise EmptyAudio("the file is empty")
    if demuxer_of(probe) is None or not probe.has_audio:
        raise NotAudio(f"no audio stream found (the file looks like {probe.format_name or '?'})")
    if probe.codec in ("none", "unknown"):
        raise NotAudio("the audio codec is unknown")
    if probe.duration_s is not None and probe.duration_s > max_duration_s:
        raise AudioTooLong(
            f"the recording lasts {probe.duration_s / 60:.1f} min; "
            f"the limit is {max_duration_s / 60:.0f} min",
            duration_s=round(probe.duration_s, 1),
            max_duration_s=max_duration_s,
        )


def check_complete(claimed_s: float | None, actual_s: float, max_duration_s: float) -> None:
    """Refuse audio whose readable length falls short of its header's claim, or is empty."""
    if actual_s <= 0.05:
        raise EmptyAudio("the file holds no audio")
    if actual_s > max_duration_s:
        raise AudioTooLong(
            f"the recording lasts {actual_s / 60:.1f} min; "
            f"the limit is {max_duration_s / 60:.0f} min"
        )
    if claimed_s is not None and actual_s < claimed_s * 0.97 - 0.3:
        raise TruncatedAudio(
            f"the header claims {claimed_s:.1f} s but only {actual_s:.1f} s can be read",
            claimed_s=round(claimed_s, 2),
            readable_s=round(actual_s, 2),
        )


def demuxer_of(probe: Probe) -> str | None:
    """The allowed demuxer (``-f``) ffprobe found for an upload; None when it is not allowed."""
    names = probe.format_name.split(",")
    return next((name for name in names if name in UPLOAD_DEMUXERS), None)


def decoded_bound_s(accepted_s: float | None, max_duration_s: float) -> float:
    """The most audio a decode may write: a little more than the upload check accepted (or the
    length limit when nothing was measured), so that lying timestamps cannot fill the disk."""
    longest = max_duration_s + _DECODE_SLACK_S
    if accepted_s is None:
        return longest
    return min(accepted_s * _DECODE_SLACK + _DECODE_SLACK_S, longest)


def original_extension(probe: Probe) -> str:
    """A safe file extension for the original, from its probed format (never the client's name)."""
    ext = _EXTENSIONS.get(probe.format_name, "bin")
    if ext == "m4a" and probe.major_brand.startswith("3g"):
        return "3gp"
    if ext == "ogg" and probe.codec == "opus":
        return "opus"
    return ext


_PROGRESS_TIME = re.compile(r"^out_time_us=(\d+)\s*$", re.MULTILINE)


def parse_progress_seconds(text: str) -> float:
    """The last ``out_time_us`` of ffmpeg's ``-progress`` output, in seconds (0 when absent)."""
    values = _PROGRESS_TIME.findall(text)
    return int(values[-1]) / 1e6 if values else 0.0


@dataclass(frozen=True, slots=True)
class Loudness:
    """An EBU R128 measurement: integrated loudness and true peak."""

    integrated_lufs: float  # -70 or lower: silence
    true_peak_dbtp: float


def parse_ebur128(stderr: str) -> Loudness:
    """The summary of ffmpeg's ``ebur128=peak=true`` filter from its log."""
    summary = stderr[stderr.rfind("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+|-inf)\s+LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf)\s+dBFS", summary)
    if integrated is None:
        raise ValueError("no integrated loudness in ffmpeg's log")

    def num(m: re.Match[str] | None) -> float:
        return -math.inf if m is None or m.group(1) == "-inf" else float(m.group(1))

    return Loudness(num(integrated), num(peak))


def gain_for(measured: Loudness, target_lufs: float = TARGET_LUFS) -> float:
    """The gain in dB that brings the measured loudness to the target."""
    if measured.integrated_lufs <= -70:
        raise EmptyAudio("the file holds only silence")
    return target_lufs - measured.integrated_lufs


def needs_limiter(measured: Loudness, gain_db: float) -> bool:
    """Whether the peaks after the gain would pass the limiter's ceiling."""
    return measured.true_peak_dbtp + gain_db > LIMITER_CEILING_DBFS
