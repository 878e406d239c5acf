"""Writing the as-run log: one signed entry per ended broadcast, whoever sent it.

The writer sweeps for broadcasts that ended and have no entry yet (woken by ``broadcast.ended``
events, and every minute), so an entry is never lost to a crash or a missed event, and two nodes
never write one twice (``asrun_entries.broadcast_id`` is unique; the loser of a race skips it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices.models import AuditEntry
from recordings.models import Announcement

from .. import store as broadcast_store
from ..models import Broadcast
from .asrun import AsRunEntry, export_lines
from .models import Alert, AsRunRow
from .store import append_asrun, asrun_between

__all__ = ["AsRunLog", "asrun_body"]

log = logging.getLogger(__name__)
ENDED = ("done", "partial", "missed", "cancelled")
SWEEP_S = 60.0
BATCH = 200


class AsRunLog:
    """Appends entries for ended broadcasts; exports ranges for auditors."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], key: Ed25519PrivateKey
    ) -> None:
        self.sessionmaker = sessionmaker
        self.key = key
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self) -> None:
        """Sweep in the background until :meth:`stop`."""
        self._task = asyncio.create_task(self._run(), name="asrun-writer")

    async def stop(self) -> None:
        """Write what ended so far, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(Exception):
            await self.sweep()

    def poke(self) -> None:
        """A broadcast ended: sweep soon."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the database may be down: the next sweep catches up
                log.exception("as-run sweep failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SWEEP_S)
            self._wake.clear()

    async def sweep(self) -> int:
        """Append an entry for every ended broadcast that has none; how many were written."""
        written = 0
        async with self._lock:
            while True:
                async with self.sessionmaker() as session:
                    logged = select(AsRunRow.broadcast_id).where(AsRunRow.broadcast_id.is_not(None))
                    rows = list(
                        await session.scalars(
                            select(Broadcast)
                            .where(Broadcast.status.in_(ENDED), Broadcast.id.not_in(logged))
                            .order_by(Broadcast.ended_at, Broadcast.id)
                            .limit(BATCH)
                        )
                    )
                    if not rows:
                        return written
                    for b in rows:
                        body = await asrun_body(session, b)
                        at = b.ended_at or b.cancelled_at or b.start_at
                        if await append_asrun(session, body, self.key, at, broadcast_id=b.id):
                            written += 1

    async def export(self, start: datetime | None, end: datetime | None) -> list[str]:
        """The JSON Lines export of a time range (header first)."""
        async with self.sessionmaker() as session:
            entries: list[AsRunEntry] = await asrun_between(session, start, end)
        return list(export_lines(entries, self.key))


async def asrun_body(session: AsyncSession, b: Broadcast) -> dict[str, Any]:
    """What the as-run entry of a broadcast says: what, where, when, by whom, reached."""
    occurrences = await broadcast_store.occurrences_of(session, b.id)
    reports = await broadcast_store.village_reports(session, b, occurrences)
    ann = await session.get(Announcement, b.announcement_id)
    by = await session.scalar(
        select(AuditEntry.actor)
        .where(
            AuditEntry.target == f"broadcast:{b.id}",
            AuditEntry.action.in_(("broadcast.create", "broadcast.live")),
        )
        .limit(1)
    )
    alert = await session.scalar(select(Alert).where(Alert.broadcast_id == b.id).limit(1))
    speakers = [d for r in reports for d in r.devices]
    listeners = [x for r in reports for x in r.listeners]
    return {
        "broadcast_id": b.id,
        "title": b.title,
        "announcement": {"id": b.announcement_id, "sha256": ann.sha256 if ann else None},
        "priority": b.priority,
        "exercise": bool(getattr(b, "exercise", False)),
        "villages": sorted(b.villages),
        "start_at": b.start_at.isoformat(),
        "ended_at": (b.ended_at or b.cancelled_at or b.start_at).isoformat(),
        "status": b.status,
        "by": by or "unknown",
        "alert": (
            {"identifier": alert.identifier, "sender": alert.sender, "sent": alert.sent}
            if alert
            else None
        ),
        "reached": {
            "speakers_targeted": len(speakers),
            "speakers_reached": sum(1 for d in speakers if d.reached),
            "listeners_live": sum(1 for x in listeners if x.heard == "live"),
            "listeners_replayed": sum(1 for x in listeners if x.heard == "replay"),
        },
        "villages_status": {r.village: r.status for r in reports},
    }
