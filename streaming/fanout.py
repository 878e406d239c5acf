"""Encode-once fan-out: one chunk to N transports, no per-listener coroutine, laggards dropped.

The producer calls :meth:`Fanout.write` once per chunk; each connection gets one non-blocking
``transport.write``. A connection whose unsent backlog passes the bound is aborted and reported
through its ``on_close`` callback; a slow client never delays the others.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Protocol

from .icy import IcyInterleaver

__all__ = ["Connection", "Fanout", "Transport"]


class Transport(Protocol):
    """The part of ``asyncio.WriteTransport`` the fan-out uses (fakes implement it in tests)."""

    def write(self, data: bytes) -> None:
        """Queue bytes without blocking."""
        ...

    def get_write_buffer_size(self) -> int:
        """Bytes queued but not yet handed to the kernel."""
        ...

    def is_closing(self) -> bool:
        """Whether the connection is closed or closing."""
        ...

    def abort(self) -> None:
        """Close at once, dropping what is queued."""
        ...


CloseCallback = Callable[[str], None]

_ids = itertools.count(1)


class Connection:
    """One client connection of a mount: its transport and who holds it."""

    __slots__ = (
        "bytes_sent",
        "closed_reason",
        "conn_id",
        "device_id",
        "icy",
        "listener_id",
        "on_close",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        *,
        device_id: int | None = None,
        listener_id: int | None = None,
        metaint: int | None = None,
        on_close: CloseCallback | None = None,
    ) -> None:
        self.conn_id = next(_ids)
        self.transport = transport
        self.device_id = device_id
        self.listener_id = listener_id
        self.icy = IcyInterleaver(metaint) if metaint else None
        self.on_close = on_close
        self.bytes_sent = 0
        self.closed_reason: str | None = None

    def send(self, chunk: bytes, title: str) -> None:
        """Write audio (with ICY metadata interleaved when the client asked for it)."""
        self.transport.write(chunk if self.icy is None else self.icy.interleave(chunk, title))
        self.bytes_sent += len(chunk)

    def close(self, reason: str) -> None:
        """Abort the transport (once) and tell the owner why."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        if not self.transport.is_closing():
            self.transport.abort()
        if self.on_close is not None:
            self.on_close(reason)


class Fanout:
    """The set of connections of one mount and the hot loop that writes to them."""

    def __init__(self, backlog_bytes: int) -> None:
        self.backlog_bytes = backlog_bytes
        self.connections: dict[int, Connection] = {}
        self.dropped_total = 0

    def __len__(self) -> int:
        return len(self.connections)

    def add(self, conn: Connection) -> None:
        """Start writing to a connection."""
        self.connections[conn.conn_id] = conn

    def remove(self, conn: Connection, reason: str = "closed") -> None:
        """Stop writing to a connection and close it."""
        if self.connections.pop(conn.conn_id, None) is not None:
            conn.close(reason)

    def write(self, chunk: bytes, title: str = "") -> None:
        """Write one chunk to every connection; drop the closed and the too slow."""
        limit = self.backlog_bytes
        gone: list[tuple[Connection, str]] = []
        for conn in self.connections.values():
            transport = conn.transport
            if transport.is_closing():
                gone.append((conn, "disconnected"))
            elif transport.get_write_buffer_size() > limit:
                gone.append((conn, "too slow"))
            elif conn.icy is None:  # the common case, inlined
                transport.write(chunk)
                conn.bytes_sent += len(chunk)
            else:
                conn.send(chunk, title)
        for conn, reason in gone:
            if reason == "too slow":
                self.dropped_total += 1
            self.remove(conn, reason)

    def close_all(self, reason: str) -> None:
        """Close every connection (server shutdown)."""
        for conn in list(self.connections.values()):
            self.remove(conn, reason)
