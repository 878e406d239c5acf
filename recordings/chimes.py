"""The chimes: a rising 딩동댕 before, a falling one after, and a siren-like emergency pair.

Synthesised here (pure numpy), then normalised and encoded once into the channel format, like any
announcement, so that a channel plays chime and message back to back without a glitch.
"""

from __future__ import annotations

import math
import os
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .channel_format import MP3_FILE_ARGS, SAMPLE_RATE_HZ
from .media import LIMITER_CEILING_DBFS, TARGET_LUFS, gain_for, needs_limiter, parse_ebur128
from .transcode import FFMPEG, gain_filter, input_args, run_blocking

__all__ = ["CHIME_VERSION", "Chimes", "chime_samples", "ensure_chimes"]

CHIME_VERSION = "1"
RATE = SAMPLE_RATE_HZ
KINDS = ("start", "end", "emergency_start", "emergency_end")
# Rendered bytes by kind, kept for the life of the process: a second app (tests, restarts in
# one process) writes them without running ffmpeg again.
_RENDERED: dict[str, bytes] = {}
_C5, _E5, _G5 = 523.25, 659.26, 783.99


@dataclass(frozen=True, slots=True)
class Chimes:
    """Channel-format MP3 files of the four chimes."""

    start: Path
    end: Path
    emergency_start: Path
    emergency_end: Path

    def paths(self) -> tuple[Path, ...]:
        """All four files."""
        return (self.start, self.end, self.emergency_start, self.emergency_end)


def _bell(freq_hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    partials = (1.0, 0.45 * np.sin(2 * math.pi * 2.0 * freq_hz * t + 0.3), 0.0)
    tone = np.sin(2 * math.pi * freq_hz * t) * partials[0] + partials[1]
    tone += 0.18 * np.sin(2 * math.pi * 3.01 * freq_hz * t)
    envelope = np.exp(-t / 0.55) * np.minimum(1.0, t / 0.004)
    return (tone * envelope).astype(np.float64)


def _melody(notes: tuple[float, ...], spacing_s: float = 0.55, ring_s: float = 1.6) -> np.ndarray:
    out = np.zeros(int((spacing_s * (len(notes) - 1) + ring_s) * RATE))
    for i, freq in enumerate(notes):
        start = int(i * spacing_s * RATE)
        note = _bell(freq, ring_s)
        out[start : start + note.size] += note
    return out


def _siren(
    cycles: int, hi_hz: float = 960.0, lo_hz: float = 770.0, half_s: float = 0.3
) -> np.ndarray:
    # A two-tone hi-lo alarm with continuous phase, slightly square (odd harmonics).
    freqs = np.concatenate(
        [np.full(int(half_s * RATE), f) for _ in range(cycles) for f in (hi_hz, lo_hz)]
    )
    phase = 2 * math.pi * np.cumsum(freqs) / RATE
    tone = np.sin(phase) + 0.3 * np.sin(3 * phase) + 0.12 * np.sin(5 * phase)
    fade = np.minimum(1.0, np.minimum(np.arange(tone.size), tone.size - np.arange(tone.size)) / 480)
    return tone * fade


def _sweep_down(seconds: float, f0: float = 960.0, f1: float = 330.0) -> np.ndarray:
    n = int(seconds * RATE)
    freqs = np.geomspace(f0, f1, n)
    phase = 2 * math.pi * np.cumsum(freqs) / RATE
    tone = np.sin(phase) + 0.3 * np.sin(3 * phase)
    return tone * np.minimum(1.0, (n - np.arange(n)) / (0.2 * RATE))


def chime_samples(kind: str) -> np.ndarray:
    """Mono 48 kHz samples (peak 0.5) of a chime: start, end, emergency_start, emergency_end."""
    if kind == "start":
        samples = _melody((_C5, _E5, _G5))  # 딩동댕, rising
    elif kind == "end":
        samples = _melody((_G5, _E5, _C5))  # 댕동딩, falling
    elif kind == "emergency_start":
        samples = _siren(cycles=5)
    elif kind == "emergency_end":
        samples = np.concatenate([_siren(cycles=2), _sweep_down(1.2)])
    else:
        raise ValueError(f"unknown chime {kind!r}")
    silence = np.zeros(int(0.1 * RATE))
    samples = np.concatenate([silence, samples, silence])
    return 0.5 * samples / float(np.max(np.abs(samples)))


def _write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def _ffmpeg(args: list[str]) -> str:
    done = run_blocking([FFMPEG, "-nostdin", "-hide_banner", "-nostats", *args], limit_s=120)
    if not done.ok:
        raise RuntimeError(f"ffmpeg failed: {done.tail()}")
    return done.stderr.decode(errors="replace")


def _render(kind: str, final: Path) -> None:
    wav = final.with_suffix(".src.wav")
    tmp = final.with_suffix(".tmp")
    try:
        if kind in _RENDERED:
            tmp.write_bytes(_RENDERED[kind])
        else:
            _encode(kind, wav, tmp)
            _RENDERED[kind] = tmp.read_bytes()
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        tmp.replace(final)
    finally:
        wav.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def _encode(kind: str, wav: Path, out: Path) -> None:
    _write_wav(wav, chime_samples(kind))
    measure = "ebur128=peak=true:framelog=verbose"
    source = parse_ebur128(_ffmpeg([*input_args(wav, "wav"), "-af", measure, "-f", "null", "-"]))
    gain = gain_for(source, TARGET_LUFS)
    chain = gain_filter(gain, needs_limiter(source, gain), LIMITER_CEILING_DBFS)
    _ffmpeg(["-v", "error", "-y", *input_args(wav, "wav"), "-af", chain, *MP3_FILE_ARGS, str(out)])


def ensure_chimes(root: Path) -> Chimes:
    """The chime files in directory ``root``, generated the first time (idempotent, blocking)."""
    root.mkdir(parents=True, exist_ok=True)
    chimes = Chimes(
        start=root / f"start-v{CHIME_VERSION}.mp3",
        end=root / f"end-v{CHIME_VERSION}.mp3",
        emergency_start=root / f"emergency_start-v{CHIME_VERSION}.mp3",
        emergency_end=root / f"emergency_end-v{CHIME_VERSION}.mp3",
    )
    for kind, path in zip(KINDS, chimes.paths(), strict=True):
        if not path.exists():
            _render(kind, path)
    return chimes
