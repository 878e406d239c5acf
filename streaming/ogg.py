"""Ogg pages: a pure splitter of an Ogg byte stream into whole pages (RFC 3533)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OggPage", "OggPageReader"]

_CAPTURE = b"OggS"


@dataclass(frozen=True, slots=True)
class OggPage:
    """One whole Ogg page and the header fields a relay needs."""

    raw: bytes
    header_type: int
    granule: int
    serial: int
    sequence: int

    @property
    def first_packet(self) -> bytes:
        """The start of the page body (to recognise OpusHead / OpusTags)."""
        segments = self.raw[26]
        return self.raw[27 + segments : 27 + segments + 8]

    @property
    def is_stream_header(self) -> bool:
        """Whether this page carries codec headers that a new listener needs first."""
        return self.granule == 0 or self.first_packet in (b"OpusHead", b"OpusTags")


class OggPageReader:
    """Splits bytes arriving in arbitrary pieces into whole pages."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[OggPage]:
        """The pages completed by ``data``."""
        buf = self._buf + data
        pages: list[OggPage] = []
        pos = 0
        while True:
            start = buf.find(_CAPTURE, pos)
            if start < 0:
                pos = max(pos, len(buf) - 3)
                break
            if len(buf) - start < 27:
                pos = start
                break
            segments = buf[start + 26]
            if len(buf) - start < 27 + segments:
                pos = start
                break
            body = sum(buf[start + 27 : start + 27 + segments])
            end = start + 27 + segments + body
            if end > len(buf):
                pos = start
                break
            raw = buf[start:end]
            pages.append(
                OggPage(
                    raw=raw,
                    header_type=raw[5],
                    granule=int.from_bytes(raw[6:14], "little", signed=True),
                    serial=int.from_bytes(raw[14:18], "little"),
                    sequence=int.from_bytes(raw[18:22], "little"),
                )
            )
            pos = end
        self._buf = buf[pos:]
        return pages
