"""ICY (SHOUTcast/Icecast) in-band metadata: pure encoder and decoder of the metadata blocks."""

from __future__ import annotations

__all__ = [
    "DEFAULT_METAINT",
    "EMPTY_BLOCK",
    "IcyInterleaver",
    "IcyReader",
    "metadata_block",
    "parse_metadata",
]

DEFAULT_METAINT = 8_192  # audio bytes between two metadata blocks (~1 s at 64 kbps)
EMPTY_BLOCK = b"\x00"  # "no change"
_MAX_BLOCK = 255 * 16


def metadata_block(title: str) -> bytes:
    """A metadata block ``<len/16><StreamTitle='…';>`` padded with NUL to 16-byte units."""
    clean = title.replace("'", "’").replace("\x00", "").replace(";", ",")
    text = f"StreamTitle='{clean}';".encode()
    if len(text) > _MAX_BLOCK:
        text = f"StreamTitle='{clean[:300]}';".encode()[:_MAX_BLOCK]
    units = (len(text) + 15) // 16
    return bytes((units,)) + text.ljust(units * 16, b"\x00")


def parse_metadata(block: bytes) -> dict[str, str]:
    """Key/values of a metadata block's text (without its length byte)."""
    text = block.rstrip(b"\x00").decode("utf-8", errors="replace")
    out: dict[str, str] = {}
    for item in text.split("';"):
        key, sep, value = item.partition("='")
        if sep:
            out[key.strip()] = value
    return out


class IcyInterleaver:
    """Puts a metadata block after every ``metaint`` audio bytes sent to one client."""

    __slots__ = ("_left", "_sent_title", "metaint")

    def __init__(self, metaint: int = DEFAULT_METAINT) -> None:
        self.metaint = metaint
        self._left = metaint
        self._sent_title: str | None = None

    def interleave(self, audio: bytes, title: str) -> bytes:
        """``audio`` with metadata blocks inserted where due; the title is sent when it changed."""
        if len(audio) < self._left:
            self._left -= len(audio)
            return audio
        parts: list[bytes] = []
        pos = 0
        while len(audio) - pos >= self._left:
            parts.append(audio[pos : pos + self._left])
            pos += self._left
            if title != self._sent_title:
                parts.append(metadata_block(title))
                self._sent_title = title
            else:
                parts.append(EMPTY_BLOCK)
            self._left = self.metaint
        parts.append(audio[pos:])
        self._left -= len(audio) - pos
        return b"".join(parts)


class IcyReader:
    """Separates audio from metadata blocks in a stream received with ``Icy-MetaData: 1``."""

    def __init__(self, metaint: int) -> None:
        self.metaint = metaint
        self._left = metaint
        self._meta_len: int | None = None  # None: reading audio
        self._meta = b""

    def feed(self, data: bytes) -> tuple[bytes, list[dict[str, str]]]:
        """Audio bytes and the metadata blocks (parsed) found in ``data``."""
        audio: list[bytes] = []
        metas: list[dict[str, str]] = []
        pos = 0
        while pos < len(data):
            if self._meta_len is None:
                take = min(self._left, len(data) - pos)
                audio.append(data[pos : pos + take])
                pos += take
                self._left -= take
                if self._left == 0:
                    self._meta_len = -1  # length byte next
            elif self._meta_len == -1:
                self._meta_len = data[pos] * 16
                pos += 1
                self._meta = b""
                if self._meta_len == 0:
                    self._meta_len, self._left = None, self.metaint
            else:
                take = min(self._meta_len - len(self._meta), len(data) - pos)
                self._meta += data[pos : pos + take]
                pos += take
                if len(self._meta) == self._meta_len:
                    metas.append(parse_metadata(self._meta))
                    self._meta_len, self._left = None, self.metaint
        return b"".join(audio), metas
