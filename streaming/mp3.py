"""MPEG audio frames: a pure parser for the channel format (MPEG-1 Layer III, 48 kHz, mono).

Parts are split into whole frames once, when loaded; the channel then sends frames, never
re-encoding. Tags (ID3v2 in front, ID3v1/APE at the end) and the LAME Xing/Info frame are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CHANNEL_SAMPLE_RATE",
    "FRAME_S",
    "SILENCE_FRAME",
    "FrameHeader",
    "FrameSplitter",
    "parse_header",
    "split_frames",
]

CHANNEL_SAMPLE_RATE = 48_000
SAMPLES_PER_FRAME = 1152  # MPEG-1 Layer III
FRAME_S = SAMPLES_PER_FRAME / CHANNEL_SAMPLE_RATE  # 24 ms

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
    frames: list[bytes] = []
    pos = _id3v2_size(data)
    end = len(data)
    first = True
    while pos + 4 <= end:
        header = parse_header(data, pos)
        if header is None or pos + header.length > end:
            if data[pos : pos + 3] == b"TAG" or data[pos : pos + 8] == b"APETAGEX":
                break  # trailing tags
            pos += 1  # resync on garbage
            continue
        if not (first and _is_info_frame(data, pos, header)):
            frames.append(data[pos : pos + header.length])
        first = False
        pos += header.length
    return frames


class FrameSplitter:
    """Splits MP3 bytes arriving in arbitrary pieces (live input) into whole frames."""

    def __init__(self) -> None:
        self._pending = b""
        self._seen_first = False

    def feed(self, data: bytes) -> list[bytes]:
        """The frames completed by ``data``; an incomplete tail waits for the next call."""
        buf = self._pending + data
        frames: list[bytes] = []
        pos = 0
        if not self._seen_first and buf[:3] == b"ID3":
            size = _id3v2_size(buf)
            if len(buf) < max(size, 10):
                self._pending = buf
                return frames
            pos = size
        while pos + 4 <= len(buf):
            header = parse_header(buf, pos)
            if header is None:
                pos += 1
                continue
            if pos + header.length > len(buf):
                break
            if not (not self._seen_first and _is_info_frame(buf, pos, header)):
                frames.append(buf[pos : pos + header.length])
            self._seen_first = True
            pos += header.length
        self._pending = buf[pos:]
        return frames
