"""ICY metadata blocks: encoder and decoder agree, blocks sit every metaint bytes."""

from __future__ import annotations

import pytest

from streaming.icy import EMPTY_BLOCK, IcyInterleaver, IcyReader, metadata_block, parse_metadata


def test_metadata_block_is_padded_to_16_bytes() -> None:
    block = metadata_block("경로잔치 안내")
    assert (len(block) - 1) % 16 == 0
    assert block[0] * 16 == len(block) - 1
    assert parse_metadata(block[1:]) == {"StreamTitle": "경로잔치 안내"}


def test_quotes_cannot_break_out_of_the_title() -> None:
    assert parse_metadata(metadata_block("it's; fine")[1:]) == {"StreamTitle": "it’s, fine"}


@pytest.mark.parametrize("piece", [1, 100, 999, 5000])
def test_interleaved_stream_reads_back(piece: int) -> None:
    audio = bytes(range(256)) * 100  # 25,600 bytes
    enc = IcyInterleaver(metaint=1000)
    wire = b"".join(
        enc.interleave(audio[i : i + piece], "A" if i < 12_000 else "B")
        for i in range(0, len(audio), piece)
    )
    reader = IcyReader(metaint=1000)
    back, metas = b"", []
    for i in range(0, len(wire), 333):
        a, m = reader.feed(wire[i : i + 333])
        back += a
        metas += m
    assert back == audio
    assert [m["StreamTitle"] for m in metas] == ["A", "B"]
    assert wire.count(EMPTY_BLOCK * 1) >= 20
