"""SQL of the archive on real databases: lookups, listing with scope and search, replays."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from devices import store as dstore
from recordings import store
from recordings.errors import UnknownAnnouncement


async def _seed(db: AsyncSession) -> list[int]:
    await dstore.import_regions_file(db, dstore.DEMO_REGIONS)
    ids = []
    for title, region in (
        ("성내리 경로잔치", "goseong-eup-seongnae-ri"),
        ("서외리 수도 공사", "goseong-eup-seooe-ri"),
        ("군청 태풍 안내", "48820"),
    ):
        row = await store.create_announcement(db, title=title, source="upload", region_code=region)
        ids.append(row.id)
    await db.commit()
    return ids


async def test_get_unknown_announcement_raises(db: AsyncSession) -> None:
    with pytest.raises(UnknownAnnouncement):
        await store.get_announcement(db, 12345)


async def test_list_is_newest_first_with_search_and_scope(db: AsyncSession) -> None:
    ids = await _seed(db)
    rows = await store.list_announcements(db, limit=10, offset=0)
    assert [r.id for r in rows] == list(reversed(ids))
    rows = await store.list_announcements(db, limit=10, offset=0, query="수도")
    assert [r.title for r in rows] == ["서외리 수도 공사"]
    rows = await store.list_announcements(db, limit=10, offset=0, query="100%_")
    assert rows == []
    scope = ["goseong-eup-seongnae-ri"]
    rows = await store.list_announcements(db, limit=10, offset=0, region_codes=scope)
    assert [r.id for r in rows] == [ids[0]]
    await store.mark_published(db, ids[2])
    await db.commit()
    rows = await store.list_announcements(db, limit=10, offset=0, region_codes=scope)
    assert [r.id for r in rows] == [ids[2], ids[0]]
    assert await store.count_announcements(db, region_codes=scope) == 2
    assert await store.processing_ids(db) == ids


async def test_replays_are_recorded_once_per_listener(db: AsyncSession) -> None:
    ids = await _seed(db)
    first, _ = await dstore.create_listener(db, "goseong-eup-seongnae-ri", "박씨", True)
    second, _ = await dstore.create_listener(db, "goseong-eup-seongnae-ri", "김씨", True)
    assert await store.record_replay(db, ids[0], first.id)
    assert not await store.record_replay(db, ids[0], first.id)
    assert await store.record_replay(db, ids[0], second.id)
    await db.commit()
    replays = await store.replays_of(db, ids[0])
    assert set(replays) == {first.id, second.id}
    assert all(at.tzinfo is not None for at in replays.values())
    assert await store.replays_of(db, ids[1]) == {}
