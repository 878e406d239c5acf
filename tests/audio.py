"""Test audio made at test time (espeak-ng, ffmpeg) and measured the way a listener would.

Every helper shells out to the real Debian tools; nothing is mocked.
"""

from __future__ import annotations

import json
import math
import subprocess
import wave
from pathlib import Path
from typing import Any

import numpy as np

# The channel format every rendition and chime shares (see streaming/items.py).
CHANNEL_MP3_ARGS = ["-ac", "1", "-ar", "48000", "-c:a", "libmp3lame", "-b:a", "64k"]


def run(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run a command; raise with its stderr when it fails."""
    proc = subprocess.run(args, capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return proc


def speech_wav(
    path: Path, text: str = "오늘 오전 열시 마을회관에서 경로잔치가 열립니다.", voice: str = "ko"
) -> Path:
    """Korean speech from espeak-ng as a WAV file."""
    run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text])
    return path


def tone_wav(
    path: Path, seconds: float, freq_hz: float = 440.0, level_dbfs: float = -20.0, rate: int = 48000
) -> Path:
    """A sine tone of a given length and peak level as 16-bit mono WAV (stdlib only)."""
    n = int(seconds * rate)
    amp = 10 ** (level_dbfs / 20) * 32767
    t = np.arange(n) / rate
    samples = (amp * np.sin(2 * math.pi * freq_hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def encode(src: Path, dst: Path, *args: str) -> Path:
    """Transcode ``src`` to ``dst`` with ffmpeg and the given output arguments."""
    run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)])
    return dst


def channel_mp3(src: Path, dst: Path) -> Path:
    """``src`` as a channel-format MP3 (64 kbps CBR mono 48 kHz)."""
    return encode(src, dst, *CHANNEL_MP3_ARGS)


def decode_pcm(
    path: Path | str, rate: int = 16000, extra_input_args: tuple[str, ...] = ()
) -> np.ndarray:
    """Decode any audio file or URL to mono float32 samples in [-1, 1] at ``rate``."""
    proc = run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            *extra_input_args,
            "-i",
            str(path),
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-f",
            "f32le",
            "-",
        ],
        timeout=120,
    )
    return np.frombuffer(proc.stdout, dtype="<f4")


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level in dBFS (−inf for silence)."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * math.log10(rms) if rms > 0 else float("-inf")


def loud_seconds(
    samples: np.ndarray, rate: int = 16000, threshold_dbfs: float = -40.0, window_s: float = 0.1
) -> float:
    """Seconds of audio whose 100 ms windows are louder than the threshold."""
    win = int(rate * window_s)
    if samples.size < win:
        return 0.0
    frames = samples[: samples.size // win * win].reshape(-1, win)
    levels = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-20)
    return float(np.sum(levels > threshold_dbfs) * window_s)


def ffprobe(path: Path | str) -> dict[str, Any]:
    """ffprobe's JSON of format and streams."""
    proc = run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def integrated_lufs(path: Path) -> float:
    """EBU R128 integrated loudness measured by ffmpeg's ebur128 filter."""
    proc = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    text = proc.stderr.decode(errors="replace")
    summary = text[text.rfind("Summary:") :]
    for line in summary.splitlines():
        line = line.strip()
        if line.startswith("I:"):
            return float(line.split()[1])
    raise RuntimeError("no integrated loudness in ffmpeg output")
