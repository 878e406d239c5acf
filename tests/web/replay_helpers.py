"""Helpers of the replay and feed tests: an announcement that played in a village."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from broadcast.models import Broadcast, Occurrence
from web.keys import SESSIONMAKER


async def played(app: Any, announcement_id: int, village: str, minutes_ago: int = 1) -> None:
    """A broadcast of the announcement that started in the village some minutes ago."""
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    async with app[SESSIONMAKER]() as session:
        b = Broadcast(
            announcement_id=announcement_id, title="t", villages=[village], start_at=at,
            status="done", targets={"villages": [village]},
        )  # fmt: skip
        session.add(b)
        await session.flush()
        session.add(
            Occurrence(
                broadcast_id=b.id, village_code=village, nominal_at=at, due_at=at,
                started_at=at, ended_at=at, status="done",
            )
        )  # fmt: skip
        await session.commit()
