"""The channel format, defined once: what every village channel carries and every rendition is.

MP3: MPEG-1 Layer III, 64 kbps CBR, mono, 48 kHz (24 ms frames sent back to back by the channel).
Opus: Ogg/Opus, 32 kbps, mono, 48 kHz (replays and the ``.ogg`` stream for phones).

Also the one MP3 frame parser (pure): ``recordings`` checks its renditions with it and
``streaming`` splits files and live input into frames with it (``streaming.mp3`` re-exports it).
Tags (ID3v2 in front, ID3v1/APE at the end) and the LAME Xing/Info frame are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BYTES_PER_S",
    "FRAME_S",
    "MP3_BITRATE_KBPS",
    "MP3_FILE_ARGS",
    "MP3_STREAM_ARGS",
    "OPUS_BITRATE_KBPS",
    "OPUS_FILE_ARGS",
    "OPUS_STREAM_ARGS",
    "SAMPLES_PER_FRAME",
    "SAMPLE_RATE_HZ",
    "SILENCE_FRAME",
    "FrameHeader",
    "FrameSplitter",
    "parse_header",
    "split_frames",
]

SAMPLE_RATE_HZ = 48_000
MP3_BITRATE_KBPS = 64
OPUS_BITRATE_KBPS = 32
SAMPLES_PER_FRAME = 1152  # MPEG-1 Layer III
FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE_HZ  # 24 ms
BYTES_PER_S = MP3_BITRATE_KBPS * 1000 // 8

_MP3 = (
    "-c:a", "libmp3lame", "-b:a", f"{MP3_BITRATE_KBPS}k", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1",
)  # fmt: skip
# A rendition file: no ID3v1, no ffmpeg ID3v2 (mutagen writes the tags), with a LAME/Xing Info
# frame. lame -q 5 takes half the time of its default -q 3 and writes the same CBR frames.
MP3_FILE_ARGS = (
    *_MP3, "-compression_level", "5", "-id3v2_version", "0", "-write_id3v1", "0",
    "-map_metadata", "-1", "-f", "mp3",
)  # fmt: skip
# Live channel input: raw frames as soon as they are encoded (no Info frame, no tag).
MP3_STREAM_ARGS = (
    *_MP3, "-write_xing", "0", "-id3v2_version", "0", "-flush_packets", "1", "-f", "mp3",
)  # fmt: skip

_OPUS = ("-c:a", "libopus", "-b:a", f"{OPUS_BITRATE_KBPS}k", "-ar", str(SAMPLE_RATE_HZ), "-ac", "1")
# libopus's default unconstrained VBR made ~60 kbps of espeak speech from float input.
OPUS_FILE_ARGS = (
    *_OPUS, "-vbr", "constrained", "-compression_level", "5", "-map_metadata", "-1", "-f", "ogg",
)  # fmt: skip
# The live ``.ogg`` stream: 200 ms pages flushed at once, so a listener gets audio without delay.
OPUS_STREAM_ARGS = (
    *_OPUS, "-application", "audio", "-f", "ogg", "-page_duration", "200000",
    "-flush_packets", "1",
)  # fmt: skip

_MAX_TAG_BYTES = 1024 * 1024  # in live input, a leading "ID3v2 tag" larger than this is garbage
_BITRATES_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_SAMPLE_RATES = (44_100, 48_000, 32_000)

# A 32 kbps mono 48 kHz frame whose side information is all zero: it decodes to 24 ms of digital
# silence and costs half the bytes of a 64 kbps frame (decoders accept per-frame bitrate changes).
SILENCE_FRAME = bytes((0xFF, 0xFB, 0x14, 0xC4)) + bytes(92)


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """The fields of an MPEG-1 Layer III frame header the channel cares about."""

    bitrate_kbps: int
    sample_rate: int
    mono: bool
    length: int  # whole frame in bytes, header included

    @property
    def side_info_bytes(self) -> int:
        """Bytes of side information after the 4-byte header (no CRC)."""
        return 17 if self.mono else 32


def parse_header(data: bytes | memoryview, offset: int = 0) -> FrameHeader | None:
    """The MPEG-1 Layer III frame header at ``offset``, or None when there is none."""
    if offset + 4 > len(data):
        return None
    b0, b1, b2, b3 = data[offset], data[offset + 1], data[offset + 2], data[offset + 3]
    # sync (11 bits), MPEG-1 (11), Layer III (01); the protection bit may be either
    if b0 != 0xFF or (b1 & 0xFE) != 0xFA:
        return None
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 0x3
    if bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate_kbps = _BITRATES_KBPS[bitrate_index]
    sample_rate = _SAMPLE_RATES[rate_index]
    padding = (b2 >> 1) & 0x1
    length = 144_000 * bitrate_kbps // sample_rate + padding
    return FrameHeader(bitrate_kbps, sample_rate, (b3 >> 6) == 0x3, length)


def _id3v2_size(data: bytes) -> int:
    """Bytes of a leading ID3v2 tag (0 when there is none)."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = 0
    for byte in data[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[5] & 0x10 else 0
    return 10 + size + footer


def _is_info_frame(data: bytes, offset: int, header: FrameHeader) -> bool:
    """Whether the frame at ``offset`` is a LAME Xing/Info or VBRI header, not audio."""
    at = offset + 4 + header.side_info_bytes
    return data[at : at + 4] in (b"Xing", b"Info") or data[offset + 36 : offset + 40] == b"VBRI"


def split_frames(data: bytes) -> list[bytes]:
    """Whole audio frames of an MP3 file, tags and the Xing/Info frame left out."""
    return FrameSplitter().feed(data, final=True)


class FrameSplitter:
    """Splits MP3 bytes arriving in arbitrary pieces (a file, or live input) into whole frames.

    Bytes that are not frames (tags, garbage, a torn frame) are skipped by resynchronising.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._seen_first = False

    def feed(self, data: bytes, *, final: bool = False) -> list[bytes]:
        """The frames completed by ``data``; an incomplete tail waits for the next call.

        With ``final`` (the end of a file) trailing ID3v1/APE tags end the search.
        """
        buf = self._pending + data if self._pending else data
        frames: list[bytes] = []
        pos = 0
        if not self._seen_first and buf[:3] == b"ID3":
            size = _id3v2_size(buf)
            if size > _MAX_TAG_BYTES and not final:
                size = 0  # live input: not a real tag; resynchronise instead of waiting for it
            elif len(buf) < max(size, 10) and not final:
                self._pending = buf
                return frames
            pos = size
        end = len(buf)
        while pos + 4 <= end:
            header = parse_header(buf, pos)
            if header is None:
                if final and (buf[pos : pos + 3] == b"TAG" or buf[pos : pos + 8] == b"APETAGEX"):
                    pos = end  # trailing tags
                    break
                pos += 1  # resync on garbage
                continue
            if pos + header.length > end:
                if not final:
                    break
                pos += 1  # a torn last frame: look for a whole one after it
                continue
            if self._seen_first or not _is_info_frame(buf, pos, header):
                frames.append(buf[pos : pos + header.length])
            self._seen_first = True
            pos += header.length
        self._pending = b"" if final else buf[pos:]
        return frames
