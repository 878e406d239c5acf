"""Icecast source clients (ffmpeg ``icecast://``, BUTT, Mixxx, Liquidsoap): parse and take over.

A source client sends ``PUT`` (with ``Expect: 100-continue``) or the legacy ``SOURCE`` method, then
streams its audio until it hangs up, with neither ``Content-Length`` nor chunked encoding. An HTTP
server's request parser reads such a body as empty, so :class:`StreamTap` takes over the reading
side of the connection right after the request head: the server's own protocol object still
writes responses and still hears about the connection closing.

The parsing here is pure; :class:`StreamTap` is the only I/O.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from devices.errors import UnauthorizedError

from .live_encode import SOURCE_FORMATS, LiveError

__all__ = [
    "CONTINUE",
    "SourceAuthFailed",
    "SourceRequest",
    "StreamTap",
    "input_format_of",
    "parse_basic_auth",
    "parse_source_request",
]

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class SourceAuthFailed(LiveError, UnauthorizedError):
    """Wrong source client username or token."""

    title_ko = "소스 클라이언트 아이디 또는 토큰이 틀렸습니다"


def parse_basic_auth(header: str) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` → (user, password); None when absent or malformed."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        return None
    return user, password


def input_format_of(content_type: str) -> str | None:
    """The ffmpeg demuxer for a source's declared Content-Type (None: let ffmpeg probe)."""
    return SOURCE_FORMATS.get(content_type.split(";")[0].strip().lower())


@dataclass(frozen=True, slots=True)
class SourceRequest:
    """What a source client said in its request head."""

    username: str
    password: str
    content_type: str
    name: str  # ice-name: what the stream calls itself
    expects_continue: bool


def parse_source_request(headers: Mapping[str, str]) -> SourceRequest:
    """The source request of these headers; :class:`SourceAuthFailed` without Basic credentials."""
    credentials = parse_basic_auth(headers.get("Authorization", ""))
    if credentials is None:
        raise SourceAuthFailed("send HTTP Basic credentials: your username and an API token")
    name = headers.get("ice-name", "").strip()[:200]
    if any(ord(ch) < 32 for ch in name):
        name = ""
    return SourceRequest(
        username=credentials[0],
        password=credentials[1],
        content_type=headers.get("Content-Type", "audio/mpeg"),
        name=name,
        expects_continue=headers.get("Expect", "").strip().lower() == "100-continue",
    )


class StreamTap(asyncio.Protocol):
    """Reads a connection's raw bytes in place of the HTTP protocol that parsed its head.

    Writing, flow control of writes and the end of the connection still go to the original
    protocol, so the server keeps its bookkeeping. Reading pauses while more than
    ``high_water`` bytes wait, so a fast client cannot fill our memory.
    """

    def __init__(self, transport: Any, original: Any, high_water: int = 256 * 1024) -> None:
        self._transport = transport
        self._original = original
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._high_water = high_water
        self._paused = False
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None

    @classmethod
    def take_over(cls, transport: Any, original: Any) -> StreamTap:
        """Divert the transport's incoming bytes to a new tap (call before the loop reads more)."""
        tap = cls(transport, original)
        transport.set_protocol(tap)
        return tap

    def data_received(self, data: bytes) -> None:
        """Buffer bytes for :meth:`read`."""
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > self._high_water and not self._paused:
            self._paused = True
            with contextlib.suppress(Exception):
                self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        """The client stopped sending; keep the transport open for the final response."""
        self._eof = True
        self._wake()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake the reader and let the server forget the connection."""
        self._eof = True
        self._wake()
        self._original.connection_lost(exc)

    def pause_writing(self) -> None:
        """Write flow control belongs to the original protocol."""
        self._original.pause_writing()

    def resume_writing(self) -> None:
        """Write flow control belongs to the original protocol."""
        self._original.resume_writing()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, timeout_s: float | None = None) -> bytes:
        """The next bytes, ``b""`` at the end; TimeoutError when the client is mute."""
        while not self._chunks:
            if self._eof:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout_s)
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered <= self._high_water // 2:
            self._paused = False
            with contextlib.suppress(Exception):
                self._transport.resume_reading()
        return data
