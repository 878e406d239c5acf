"""Silence trimming and waveform peaks, computed from decoded mono float samples."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Span", "find_span", "peaks_of", "scan_raw", "window_levels"]

WINDOW_S = 0.01
PAD_S = 0.15  # silence kept before the first and after the last sound
PEAK_BUCKETS = 200
_CHUNK_WINDOWS = 1_000  # 10 s of audio per read: ~2 MB of samples, ~8 MB while computing


@dataclass(frozen=True, slots=True)
class Span:
    """The part of a recording that holds sound, and its waveform."""

    start_s: float
    end_s: float
    peaks: tuple[float, ...]  # max |sample| per bucket, 0..1, before gain

    @property
    def duration_s(self) -> float:
        """Length of the kept part."""
        return max(0.0, self.end_s - self.start_s)


def window_levels(samples: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-window RMS level (dBFS) and max |sample| of whole windows of ``samples``."""
    n = samples.size // window
    frames = samples[: n * window].reshape(n, window).astype(np.float64)
    rms_db = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-20)
    return rms_db, np.max(np.abs(frames), axis=1) if n else np.zeros(0)


def find_span(
    rms_db: np.ndarray, maxima: np.ndarray, threshold_db: float, window_s: float = WINDOW_S
) -> Span:
    """Trim leading and trailing windows quieter than ``threshold_db`` (keeping a little pad)."""
    loud = np.flatnonzero(rms_db > threshold_db)
    if loud.size == 0:
        return Span(0.0, 0.0, ())
    pad = int(PAD_S / window_s)
    first = max(0, int(loud[0]) - pad)
    last = min(rms_db.size, int(loud[-1]) + 1 + pad)
    return Span(first * window_s, last * window_s, peaks_of(maxima[first:last]))


def peaks_of(maxima: np.ndarray, buckets: int = PEAK_BUCKETS) -> tuple[float, ...]:
    """``buckets`` waveform peaks from per-window maxima."""
    if maxima.size == 0:
        return ()
    parts = np.array_split(maxima, min(buckets, maxima.size))
    return tuple(round(float(min(1.0, p.max())), 3) for p in parts)


def scan_raw(path: Path, rate: int, integrated_lufs: float) -> Span:
    """Scan a raw mono f32le file in chunks (bounded memory) and find its sounding span."""
    window = int(rate * WINDOW_S)
    levels: list[np.ndarray] = []
    maxima: list[np.ndarray] = []
    with path.open("rb") as f:
        while True:
            chunk = np.fromfile(f, dtype="<f4", count=window * _CHUNK_WINDOWS)
            if chunk.size == 0:
                break
            rms_db, peak = window_levels(chunk, window)
            levels.append(rms_db)
            maxima.append(peak)
    if not levels:
        return Span(0.0, 0.0, ())
    # Relative threshold: a recording made 30 dB too quietly is trimmed like a normal one.
    threshold = max(-90.0, (integrated_lufs if math.isfinite(integrated_lufs) else -70) - 30)
    return find_span(np.concatenate(levels), np.concatenate(maxima), threshold)
