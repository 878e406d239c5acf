"""The pure MP3 frame parser on real LAME output (ID3v2, Xing/Info, ID3v1 and APE tags)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streaming.mp3 import (
    CHANNEL_SAMPLE_RATE,
    SILENCE_FRAME,
    FrameSplitter,
    parse_header,
    split_frames,
)
from tests.audio import channel_mp3, tone_wav


@pytest.fixture(scope="module")
def tagged_mp3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of tone encoded by LAME with an ID3v2 tag and a Xing/Info frame."""
    d = tmp_path_factory.mktemp("mp3")
    return channel_mp3(tone_wav(d / "t.wav", 2.0), d / "t.mp3")


@pytest.mark.ffmpeg
def test_frames_of_a_lame_file_skip_tags_and_info_frame(tagged_mp3: Path) -> None:
    data = tagged_mp3.read_bytes()
    assert data[:3] == b"ID3"
    frames = split_frames(data + b"TAG" + bytes(125))
    assert all(len(f) == 192 for f in frames)
    assert all(b"Info" not in f[:40] and b"Xing" not in f[:40] for f in frames)
    # 2 s = 83.3 frames of 24 ms, plus the encoder's delay and padding
    assert 83 <= len(frames) <= 86
    header = parse_header(frames[0])
    assert header is not None
    assert (header.bitrate_kbps, header.sample_rate, header.mono) == (64, CHANNEL_SAMPLE_RATE, True)


@pytest.mark.ffmpeg
def test_frames_decode_like_the_file(tagged_mp3: Path, tmp_path: Path) -> None:
    frames = split_frames(tagged_mp3.read_bytes())
    out = tmp_path / "frames.mp3"
    out.write_bytes(b"".join(frames))
    proc = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "s16le", "-"],
        capture_output=True, check=True,
    )  # fmt: skip
    assert len(proc.stdout) == len(frames) * 1152 * 2


def test_garbage_between_frames_is_skipped() -> None:
    frames = split_frames(b"junk" + SILENCE_FRAME + b"\x00\xff" + SILENCE_FRAME + b"APETAGEX")
    assert frames == [SILENCE_FRAME, SILENCE_FRAME]


def test_silence_frame_is_a_32_kbps_channel_frame() -> None:
    header = parse_header(SILENCE_FRAME)
    assert header is not None
    assert (header.bitrate_kbps, header.sample_rate, header.mono) == (32, 48000, True)
    assert header.length == len(SILENCE_FRAME) == 96


@pytest.mark.parametrize("piece", [1, 7, 100, 191, 1000])
def test_splitter_reassembles_frames_from_any_pieces(piece: int) -> None:
    frame = bytes((0xFF, 0xFB, 0x54, 0xC4)) + bytes(range(188))
    data = frame * 5 + SILENCE_FRAME
    splitter = FrameSplitter()
    got: list[bytes] = []
    for i in range(0, len(data), piece):
        got += splitter.feed(data[i : i + piece])
    assert got == [frame] * 5 + [SILENCE_FRAME]
