"""SQL of alerts and of the as-run log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .asrun import AsRunEntry, next_entry
from .models import Alert, AsRunRow

__all__ = ["alert_by_key", "append_asrun", "asrun_between", "last_asrun"]


async def alert_by_key(
    session: AsyncSession, identifier: str, sender: str, sent: str
) -> Alert | None:
    """The alert with this CAP key, if it was received before."""
    return await session.scalar(
        select(Alert).where(
            Alert.identifier == identifier, Alert.sender == sender, Alert.sent == sent
        )
    )


def _entry(row: AsRunRow) -> AsRunEntry:
    return AsRunEntry(row.seq, row.prev, row.hash, row.sig, row.body)


async def last_asrun(session: AsyncSession) -> AsRunEntry | None:
    """The newest entry of the chain."""
    row = await session.scalar(select(AsRunRow).order_by(AsRunRow.seq.desc()).limit(1))
    return _entry(row) if row else None


async def append_asrun(
    session: AsyncSession,
    body: Mapping[str, Any],
    key: Ed25519PrivateKey,
    at: datetime,
    broadcast_id: int | None = None,
) -> AsRunEntry | None:
    """Sign and commit the next entry; a concurrent writer (another node) makes it retry.

    None when the broadcast's entry was written meanwhile (by another node).
    """
    for _ in range(10):
        entry = next_entry(await last_asrun(session), body, key)
        row = AsRunRow(seq=entry.seq, at=at, prev=entry.prev, hash=entry.hash, sig=entry.sig)
        row.body, row.broadcast_id = dict(entry.body), broadcast_id
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            if broadcast_id is not None and await session.scalar(
                select(AsRunRow.seq).where(AsRunRow.broadcast_id == broadcast_id)
            ):
                return None
            continue
        return entry
    raise RuntimeError("the as-run log is too busy to append")  # ten lost races in a row


async def asrun_between(
    session: AsyncSession, start: datetime | None, end: datetime | None, limit: int = 100_000
) -> list[AsRunEntry]:
    """Entries with ``start <= at < end``, in chain order."""
    query = select(AsRunRow).order_by(AsRunRow.seq)
    if start is not None:
        query = query.where(AsRunRow.at >= start)
    if end is not None:
        query = query.where(AsRunRow.at < end)
    return [_entry(r) for r in (await session.scalars(query.limit(limit))).all()]
