"""SQL of residents registered to listen to a village."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from .. import errors
from ..models import (
    Listener,
)
from ..orm import utcnow
from ..policy import Visibility
from ..tokens import hash_token, new_token
from .regions import get_village

__all__ = [
    "approve_listener",
    "create_listener",
    "get_listener",
    "list_listeners",
    "listeners_of",
    "resident_counts",
    "revoke_listener",
]


async def create_listener(
    session: AsyncSession, village_code: str, nickname: str, consent: bool
) -> tuple[Listener, str]:
    """Register a resident; pending where the village requires the village head's approval."""
    village = await get_village(session, village_code)
    token = new_token("listener")
    now = utcnow()
    listener = Listener(
        village_code=village_code,
        nickname=nickname,
        token_hash=hash_token(token),
        status="pending" if village.requires_listener_approval else "active",
        consent=consent,
        consent_at=now if consent else None,
    )
    session.add(listener)
    await session.flush()
    return listener, token


async def listeners_of(session: AsyncSession, village: str) -> list[Listener]:
    """The active listeners registered to a village."""
    rows = await session.scalars(
        select(Listener)
        .where(Listener.village_code == village, Listener.status == "active")
        .order_by(Listener.id)
    )
    return list(rows.all())


async def resident_counts(session: AsyncSession) -> dict[str, int]:
    """Active listeners by village."""
    rows = await session.execute(
        select(Listener.village_code, func.count())
        .where(Listener.status == "active")
        .group_by(Listener.village_code)
    )
    return {village: int(n) for village, n in rows.all()}


async def list_listeners(
    session: AsyncSession,
    villages: Iterable[str] | None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Listener], int]:
    """A page of listeners (newest first) and the total."""
    cond: list[ColumnElement[bool]] = []
    if villages is not None:
        cond.append(Listener.village_code.in_(list(villages)))
    if status is not None:
        cond.append(Listener.status == status)
    total = await session.scalar(select(func.count()).select_from(Listener).where(*cond)) or 0
    rows = await session.scalars(
        select(Listener).where(*cond).order_by(Listener.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)


async def get_listener(
    session: AsyncSession, listener_id: int, visible: Visibility | None = None
) -> Listener:
    """The listener with this id, or :class:`errors.UnknownListener` (also when invisible)."""
    listener = await session.get(Listener, listener_id)
    if listener is None or (visible is not None and not visible.sees_region(listener.village_code)):
        raise errors.UnknownListener(f"no listener {listener_id}")
    return listener


def approve_listener(listener: Listener) -> None:
    """Let a pending listener listen."""
    if listener.status == "revoked":
        raise errors.WrongState("this registration was revoked; register again")
    listener.status = "active"


def revoke_listener(listener: Listener) -> None:
    """Revoke a listener's token."""
    listener.status = "revoked"
