"""The audit log (who, when, what, where) and the ``Issued`` value of new tokens."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from ..models import (
    Account,
    AuditEntry,
)

__all__ = [
    "Issued",
    "actor_of",
    "audit",
    "list_audit",
]


@dataclass(frozen=True, slots=True)
class Issued:
    """A newly created row and its token, shown once."""

    id: int
    token: str


def audit(
    session: AsyncSession,
    actor: str,
    action: str,
    target: str = "",
    region_code: str | None = None,
    note: str = "",
    **detail: Any,
) -> AuditEntry:
    """Add an audit log entry (committed with the caller's transaction)."""
    entry = AuditEntry(
        actor=actor, action=action, target=target, region_code=region_code, note=note, detail=detail
    )
    session.add(entry)
    return entry


def actor_of(account: Account | None) -> str:
    """How an account appears in the audit log."""
    return "system" if account is None else f"account:{account.id} ({account.username})"


async def list_audit(
    session: AsyncSession,
    regions: Iterable[str] | None,
    limit: int = 100,
    offset: int = 0,
    action: str | None = None,
) -> tuple[list[AuditEntry], int]:
    """A page of audit entries (newest first) and the total, optionally within some regions."""
    cond: list[ColumnElement[bool]] = []
    if regions is not None:
        cond.append(AuditEntry.region_code.in_(list(regions)))
    if action:
        cond.append(AuditEntry.action.startswith(action, autoescape=True))
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*cond)) or 0
    rows = await session.scalars(
        select(AuditEntry).where(*cond).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), int(total)
