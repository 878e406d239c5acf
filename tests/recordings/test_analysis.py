"""Silence trimming and waveform peaks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recordings.analysis import PAD_S, peaks_of, scan_raw

RATE = 48000


def raw_file(path: Path, *parts: tuple[float, float]) -> Path:
    """Concatenated (seconds, amplitude) parts of a 1 kHz tone as raw f32le."""
    chunks = []
    for seconds, amplitude in parts:
        t = np.arange(int(seconds * RATE)) / RATE
        chunks.append((amplitude * np.sin(2 * np.pi * 1000 * t)).astype("<f4"))
    path.write_bytes(np.concatenate(chunks).tobytes())
    return path


def test_leading_and_trailing_silence_is_trimmed_with_a_small_pad(tmp_path: Path) -> None:
    path = raw_file(tmp_path / "a.f32", (2.0, 0.0), (3.0, 0.5), (1.5, 0.0))
    span = scan_raw(path, RATE, integrated_lufs=-9.0)
    assert abs(span.start_s - (2.0 - PAD_S)) < 0.02
    assert abs(span.end_s - (5.0 + PAD_S)) < 0.02
    assert len(span.peaks) == 200
    assert max(span.peaks) == 0.5


def test_trimming_is_relative_to_the_recording_level(tmp_path: Path) -> None:
    # A recording 40 dB too quiet, over a noise floor 40 dB below it, is trimmed like a normal one.
    path = raw_file(tmp_path / "q.f32", (1.0, 0.00005), (3.0, 0.005), (1.0, 0.00005))
    span = scan_raw(path, RATE, integrated_lufs=-49.0)
    assert abs(span.start_s - (1.0 - PAD_S)) < 0.02
    assert abs(span.duration_s - (3.0 + 2 * PAD_S)) < 0.03


def test_silence_has_no_span(tmp_path: Path) -> None:
    span = scan_raw(raw_file(tmp_path / "s.f32", (1.0, 0.0)), RATE, integrated_lufs=-70.0)
    assert span.duration_s == 0.0
    empty = tmp_path / "e.f32"
    empty.write_bytes(b"")
    assert scan_raw(empty, RATE, -70.0).duration_s == 0.0


def test_peaks_are_bucket_maxima() -> None:
    assert peaks_of(np.array([0.1, 0.5, 0.2, 0.9]), buckets=2) == (0.5, 0.9)
    assert peaks_of(np.array([]), buckets=2) == ()
