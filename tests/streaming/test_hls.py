"""HLS playlist helpers."""

from __future__ import annotations

from streaming.hls import SEGMENT_NAME, segment_count, with_token

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:4
#EXTINF:2.005333,
seg00004.ts
#EXTINF:1.994667,
seg00005.ts
"""


def test_segment_uris_carry_the_token() -> None:
    out = with_token(PLAYLIST, "listener_a+b/c")
    assert "seg00004.ts?token=listener_a%2Bb%2Fc" in out.splitlines()
    assert "#EXT-X-MEDIA-SEQUENCE:4" in out.splitlines()
    assert with_token(PLAYLIST, None) == PLAYLIST


def test_segment_count_and_names() -> None:
    assert segment_count(PLAYLIST) == 2
    assert SEGMENT_NAME.match("seg00004.ts")
    assert not SEGMENT_NAME.match("../villagecast.db")
    assert not SEGMENT_NAME.match("live.m3u8")
