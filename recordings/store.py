"""SQL access of the archive: announcements, renditions, replays.

Every function takes an ``AsyncSession`` and leaves committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from devices.orm import utcnow

from .errors import UnknownAnnouncement
from .models import Announcement, Rendition, Replay

__all__ = [
    "announcements_before",
    "count_announcements",
    "create_announcement",
    "delete_announcement",
    "get_announcement",
    "list_announcements",
    "mark_published",
    "paths_in_use",
    "processing_ids",
    "record_replay",
    "replays_of",
]


async def get_announcement(session: AsyncSession, announcement_id: int) -> Announcement:
    """The announcement with this id, or :class:`UnknownAnnouncement`."""
    row = await session.get(Announcement, announcement_id)
    if row is None:
        raise UnknownAnnouncement(f"no announcement with id {announcement_id}")
    return row


def _filtered(query: Any, search: str | None, region_codes: Iterable[str] | None) -> Any:
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                Announcement.title.ilike(pattern, escape="\\"),
                Announcement.text.ilike(pattern, escape="\\"),
            )
        )
    if region_codes is not None:
        query = query.where(
            or_(
                Announcement.region_code.in_(list(region_codes)),
                Announcement.published_at.is_not(None),
            )
        )
    return query


async def list_announcements(
    session: AsyncSession,
    *,
    limit: int,
    offset: int,
    query: str | None = None,
    region_codes: Iterable[str] | None = None,
) -> list[Announcement]:
    """Announcements newest first; ``query`` searches title and text; ``region_codes`` (None: all)
    keeps those authored in these regions plus every published one."""
    stmt = _filtered(select(Announcement), query, region_codes)
    stmt = stmt.order_by(Announcement.created_at.desc(), Announcement.id.desc())
    return list((await session.scalars(stmt.limit(limit).offset(offset))).all())


async def count_announcements(
    session: AsyncSession, *, query: str | None = None, region_codes: Iterable[str] | None = None
) -> int:
    """How many announcements :func:`list_announcements` pages through."""
    stmt = _filtered(select(func.count(Announcement.id)), query, region_codes)
    return int(await session.scalar(stmt) or 0)


async def create_announcement(session: AsyncSession, **fields: Any) -> Announcement:
    """Insert an announcement (status ``processing``) and flush to learn its id."""
    row = Announcement(status="processing", **fields)
    session.add(row)
    await session.flush()
    return row


async def processing_ids(session: AsyncSession) -> list[int]:
    """Ids of announcements still ``processing`` (to resume at start), oldest first."""
    stmt = select(Announcement.id).where(Announcement.status == "processing")
    return list((await session.scalars(stmt.order_by(Announcement.id))).all())


async def mark_published(session: AsyncSession, announcement_id: int) -> None:
    """Record that an announcement was broadcast (from then on every staff member sees it)."""
    row = await get_announcement(session, announcement_id)
    if row.published_at is None:
        row.published_at = utcnow()


async def record_replay(session: AsyncSession, announcement_id: int, listener_id: int) -> bool:
    """Record a resident's replay (once per listener and announcement); True when new."""
    exists = await session.scalar(
        select(Replay.id).where(
            Replay.announcement_id == announcement_id, Replay.listener_id == listener_id
        )
    )
    if exists is not None:
        return False
    session.add(Replay(announcement_id=announcement_id, listener_id=listener_id))
    await session.flush()
    return True


async def replays_of(session: AsyncSession, announcement_id: int) -> dict[int, datetime]:
    """Listener id → time of that listener's first replay of the announcement."""
    rows = await session.execute(
        select(Replay.listener_id, func.min(Replay.at))
        .where(Replay.announcement_id == announcement_id)
        .group_by(Replay.listener_id)
    )
    return {listener: at for listener, at in rows.all()}


async def announcements_before(session: AsyncSession, cutoff: datetime) -> list[Announcement]:
    """Announcements created before ``cutoff`` (retention), oldest first."""
    stmt = select(Announcement).where(Announcement.created_at < cutoff)
    return list((await session.scalars(stmt.order_by(Announcement.id))).all())


async def delete_announcement(session: AsyncSession, announcement_id: int) -> None:
    """Delete an announcement with its renditions and replays."""
    await session.execute(delete(Replay).where(Replay.announcement_id == announcement_id))
    await session.execute(delete(Rendition).where(Rendition.announcement_id == announcement_id))
    await session.execute(delete(Announcement).where(Announcement.id == announcement_id))


async def paths_in_use(session: AsyncSession, exclude: Iterable[int] = ()) -> set[str]:
    """Archive-relative paths referenced by any announcement (but ``exclude``) or rendition."""
    skip = list(exclude)
    originals = await session.scalars(
        select(Announcement.original_path).where(
            Announcement.original_path.is_not(None), Announcement.id.not_in(skip)
        )
    )
    renditions = await session.scalars(
        select(Rendition.path).where(Rendition.announcement_id.not_in(skip))
    )
    return {p for p in originals.all() if p} | set(renditions.all())
