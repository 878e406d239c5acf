"""``villagecast archive prune [--dry-run]``: delete announcements past the retention period,
and archive files that no announcement references (left by a crash), older than an hour."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broadcast.models import Broadcast
from devices.orm import utcnow
from recordings.archive import Archive
from recordings.retention import apply_prune, cutoff_for, find_orphans, plan_prune

from .db import make_engine, make_sessionmaker, migrate
from .settings import Settings

__all__ = ["run"]


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Plan the prune, print it, and (unless ``--dry-run``) carry it out."""
    cutoff = cutoff_for(utcnow(), settings.retention_days)
    return asyncio.run(_prune(settings, cutoff, dry_run=bool(args.dry_run)))


async def _prune(settings: Settings, cutoff: datetime | None, *, dry_run: bool) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    archive = Archive(settings.data_dir / "archive")
    zone = ZoneInfo(settings.timezone)
    engine = make_engine(settings.effective_database_url)
    try:
        await migrate(engine)
        async with make_sessionmaker(engine)() as session:
            verb = "would delete" if dry_run else "deleting"
            if cutoff is None:
                print("retention is off (VILLAGECAST_RETENTION_DAYS=0 keeps everything): "
                      "nothing to prune")  # fmt: skip
            else:
                await _expire(session, archive, cutoff, zone, verb, dry_run)
            orphans = await find_orphans(session, archive)
            for rel in orphans:
                print(f"{verb} orphan file {rel}: no announcement refers to it")
            if orphans and not dry_run:
                await asyncio.to_thread(archive.remove, orphans)
    finally:
        await engine.dispose()
    sys.stdout.flush()
    return 0


async def _expire(
    session: AsyncSession, archive: Archive, cutoff: datetime, zone: ZoneInfo, verb: str,
    dry_run: bool,
) -> None:  # fmt: skip
    keep = set(await session.scalars(select(Broadcast.announcement_id)))
    plan = await plan_prune(session, archive, cutoff, keep)
    for a in plan.announcements:
        when = a.created_at.astimezone(zone).isoformat(timespec="minutes")
        print(f"{verb} announcement {a.id} ({a.status}, {when}): {a.title}")
    for announcement_id in plan.kept_in_use:
        print(f"keeping announcement {announcement_id}: broadcasts refer to it")
    print(
        f"{verb} {len(plan.announcements)} announcement(s), {len(plan.files)} file(s), "
        f"{plan.bytes / 1e6:.1f} MB (created before {cutoff})"
    )
    if not dry_run:
        await apply_prune(session, archive, plan)
