"""What was broadcast to a village: the one query behind a resident's replays and replay files.

A resident (or a village's speaker box) hears an announcement only once one of its broadcasts
started on the village's channel; drafts and broadcasts to
other villages stay out of reach, whatever was published elsewhere.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from recordings.models import Announcement

from .models import Broadcast, Occurrence

__all__ = ["played_in_village", "recently_played"]


async def played_in_village(session: AsyncSession, announcement_id: int, village: str) -> bool:
    """Whether a broadcast of this announcement started on this village's channel."""
    found = await session.scalar(
        select(Occurrence.id)
        .join(Broadcast, Broadcast.id == Occurrence.broadcast_id)
        .where(
            Broadcast.announcement_id == announcement_id,
            Occurrence.village_code == village,
            Occurrence.started_at.is_not(None),
        )
        .limit(1)
    )
    return found is not None


async def recently_played(
    session: AsyncSession, village: str, limit: int
) -> list[tuple[Announcement, datetime | None]]:
    """Ready announcements that played in a village, with their last start, newest first."""
    last = func.max(Occurrence.started_at)
    rows = await session.execute(
        select(Announcement, last)
        .join(Broadcast, Broadcast.announcement_id == Announcement.id)
        .join(Occurrence, Occurrence.broadcast_id == Broadcast.id)
        .where(
            Occurrence.village_code == village,
            Occurrence.started_at.is_not(None),
            Announcement.status == "ready",
        )
        .group_by(Announcement.id)
        .order_by(last.desc())
        .limit(limit)
    )
    return [(a, played) for a, played in rows.all()]
