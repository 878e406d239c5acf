"""Retention: which announcements and archive files a prune removes (planned before it acts)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from . import store
from .archive import Archive

__all__ = ["ORPHAN_GRACE_S", "PrunePlan", "apply_prune", "cutoff_for", "find_orphans", "plan_prune"]

# Archive files younger than this are never swept as orphans: their row may be about to commit.
ORPHAN_GRACE_S = 3600.0


@dataclass(frozen=True, slots=True)
class Doomed:
    """One announcement a prune deletes."""

    id: int
    title: str
    created_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What a prune deletes: announcements, and the files no remaining announcement uses."""

    cutoff: datetime
    announcements: tuple[Doomed, ...]
    files: tuple[str, ...]  # archive-relative
    bytes: int
    kept_in_use: tuple[int, ...]  # old announcements kept because broadcasts refer to them


def cutoff_for(now: datetime, retention_days: int) -> datetime | None:
    """The creation time before which announcements expire (None: keep forever)."""
    return None if retention_days <= 0 else now - timedelta(days=retention_days)


async def plan_prune(
    session: AsyncSession, archive: Archive, cutoff: datetime, keep: Iterable[int] = ()
) -> PrunePlan:
    """Plan a prune of announcements created before ``cutoff`` (except ``keep`` and unfinished)."""
    keep_ids = set(keep)
    old = await store.announcements_before(session, cutoff)
    doomed = [a for a in old if a.id not in keep_ids and a.status != "processing"]
    doomed_ids = {a.id for a in doomed}
    used_elsewhere = await store.paths_in_use(session, exclude=doomed_ids)
    files: set[str] = set()
    for a in doomed:
        candidates = [a.original_path, *(r.path for r in a.renditions)]
        files.update(p for p in candidates if p and p not in used_elsewhere)
    sizes = await asyncio.to_thread(_sizes, archive, sorted(files))
    return PrunePlan(
        cutoff=cutoff,
        announcements=tuple(Doomed(a.id, a.title, a.created_at, a.status) for a in doomed),
        files=tuple(sorted(files)),
        bytes=sum(sizes),
        kept_in_use=tuple(sorted(a.id for a in old if a.id in keep_ids)),
    )


def _sizes(archive: Archive, files: list[str]) -> list[int]:
    out = []
    for rel in files:
        path = archive.absolute(rel)
        out.append(path.stat().st_size if path.exists() else 0)
    return out


async def apply_prune(session: AsyncSession, archive: Archive, plan: PrunePlan) -> None:
    """Delete the planned rows (committed first), then their files."""
    for doomed in plan.announcements:
        await store.delete_announcement(session, doomed.id)
    await session.commit()
    await asyncio.to_thread(archive.remove, list(plan.files))


async def find_orphans(
    session: AsyncSession, archive: Archive, grace_s: float = ORPHAN_GRACE_S
) -> list[str]:
    """Archive files that no announcement references (left by a crash between moving a file in
    and committing its row), older than ``grace_s``; archive-relative paths."""
    in_use = await store.paths_in_use(session)
    return await asyncio.to_thread(archive.orphans, in_use, grace_s)
