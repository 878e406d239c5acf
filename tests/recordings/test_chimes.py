"""The chimes: channel format, loudness, rising/falling pitch, a distinct emergency siren."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from recordings.chimes import KINDS, chime_samples, ensure_chimes
from tests.audio import decode_pcm, ffprobe, integrated_lufs

RATE = 48000


def pitch_track(samples: np.ndarray, window_s: float = 0.1) -> list[float]:
    """Dominant frequency of each loud window."""
    win = int(RATE * window_s)
    out = []
    for i in range(0, samples.size - win, win):
        frame = samples[i : i + win]
        if np.sqrt(np.mean(frame**2)) < 0.02:
            continue
        spectrum = np.abs(np.fft.rfft(frame * np.hanning(win)))
        out.append(float(np.argmax(spectrum) * RATE / win))
    return out


def test_start_rises_and_end_falls() -> None:
    start = pitch_track(chime_samples("start"))
    end = pitch_track(chime_samples("end"))
    assert start[0] < start[-1]
    assert end[0] > end[-1]


def test_emergency_chime_alternates_two_tones() -> None:
    track = pitch_track(chime_samples("emergency_start"), window_s=0.05)
    highs = sum(1 for f in track if 900 < f < 1020)
    lows = sum(1 for f in track if 720 < f < 820)
    assert highs > 10
    assert lows > 10
    changes = sum(1 for a, b in itertools.pairwise(track) if abs(a - b) > 100)
    assert changes >= 8


@pytest.mark.ffmpeg
def test_ensure_chimes_writes_channel_format_files_once(tmp_path: Path) -> None:
    chimes = ensure_chimes(tmp_path / "chimes")
    mtimes = {p: p.stat().st_mtime_ns for p in chimes.paths()}
    for path in chimes.paths():
        info = ffprobe(path)
        stream = info["streams"][0]
        assert (stream["codec_name"], stream["channels"], stream["sample_rate"]) == (
            "mp3", 1, "48000",
        )  # fmt: skip
        assert int(stream["bit_rate"]) == 64000
        assert integrated_lufs(path) == pytest.approx(-16, abs=1)
        assert 1.0 < float(info["format"]["duration"]) < 5.0
        assert decode_pcm(path).size > 0
        raw = path.read_bytes()
        assert raw[-128:-125] != b"TAG"
    assert ensure_chimes(tmp_path / "chimes") == chimes
    assert {p: p.stat().st_mtime_ns for p in chimes.paths()} == mtimes
    assert len(KINDS) == 4
