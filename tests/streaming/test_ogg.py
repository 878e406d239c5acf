"""The Ogg page splitter on real ffmpeg Ogg/Opus output."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from streaming.ogg import OggPageReader
from tests.audio import tone_wav


@pytest.mark.ffmpeg
@pytest.mark.parametrize("piece", [1, 333, 100_000])
def test_pages_split_from_any_pieces(tmp_path: Path, piece: int) -> None:
    wav = tone_wav(tmp_path / "t.wav", 2.0)
    data = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "libopus", "-b:a", "32k",
         "-f", "ogg", "-page_duration", "200000", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    reader = OggPageReader()
    pages = []
    for i in range(0, len(data), piece):
        pages += reader.feed(data[i : i + piece])
    assert b"".join(p.raw for p in pages) == data
    assert [p.first_packet for p in pages[:2]] == [b"OpusHead", b"OpusTags"]
    assert all(p.is_stream_header for p in pages[:2])
    assert not any(p.is_stream_header for p in pages[2:])
    assert [p.sequence for p in pages] == list(range(len(pages)))
