"""Residents hear only what was broadcast to their village (issue 11.4).

A self-registered listener once downloaded the county's unpublished drafts from ``/media``; any
token replayed what was broadcast to other villages; approval-gated villages had a public feed.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from devices import store
from recordings.models import Announcement
from tests.broadcast.support import add_listener, add_speaker, ready_announcement
from tests.web.replay_helpers import played
from web.keys import SESSIONMAKER

pytestmark = pytest.mark.ffmpeg

HOME = "goseong-eup-seongnae-ri"
OTHER = "goseong-eup-seooe-ri"


async def _draft(app: Any, region: str) -> int:
    ann = await ready_announcement(app, "군청 초안")
    async with app[SESSIONMAKER]() as session:
        await session.execute(
            update(Announcement).where(Announcement.id == ann).values(region_code=region)
        )
        await session.commit()
    return ann


async def _fetch(client: Any, ann: int, token: str) -> tuple[int, dict[str, Any] | bytes]:
    resp = await client.get(f"/media/announcements/{ann}.mp3", params={"token": token})
    if resp.status == 200:
        return 200, await resp.read()
    problem = await resp.json()
    problem.pop("request_id", None)
    problem["detail"] = problem["detail"].replace(str(ann), "ID")
    return resp.status, problem


async def test_a_listener_cannot_download_drafts_of_the_county_or_district(client: Any) -> None:
    app = client.app
    _, token = await add_listener(app, HOME, "박씨")
    missing = await _fetch(client, 999_999, token)
    assert missing[0] == 404
    for region in ("48820", "goseong-eup", HOME):  # county, district, even the own village
        draft = await _draft(app, region)
        assert await _fetch(client, draft, token) == missing


async def test_listeners_and_boxes_replay_only_what_played_in_their_own_village(
    client: Any,
) -> None:
    app = client.app
    _, home_listener = await add_listener(app, HOME, "박씨")
    _, other_listener = await add_listener(app, OTHER, "김씨")
    _, home_box = await add_speaker(app, HOME, "회관")
    _, other_box = await add_speaker(app, OTHER, "정자")
    ann = await ready_announcement(app, "성내리 안내")
    await played(app, ann, HOME)  # published (broadcast), but to the home village only
    missing = await _fetch(client, 999_999, other_listener)
    for token in (home_listener, home_box):
        status, body = await _fetch(client, ann, token)
        assert status == 200
        assert isinstance(body, bytes)
        assert len(body) > 1000
    for token in (other_listener, other_box):
        assert await _fetch(client, ann, token) == missing
    replays = await (await client.get("/api/v1/replays", params={"token": other_listener})).json()
    assert replays["items"] == []
    replays = await (await client.get("/api/v1/replays", params={"token": home_listener})).json()
    assert [x["id"] for x in replays["items"]] == [ann]


async def test_a_pending_listener_gets_nothing(client: Any, admin_headers: dict[str, str]) -> None:
    app = client.app
    resp = await client.patch(
        f"/api/v1/regions/{HOME}", json={"requires_listener_approval": True}, headers=admin_headers
    )
    assert resp.status == 200
    ann = await ready_announcement(app)
    await played(app, ann, HOME)
    async with app[SESSIONMAKER]() as session:
        pending, token = await store.create_listener(session, HOME, "새 주민", True)
        await session.commit()
    assert pending.status == "pending"
    for path in (
        f"/media/announcements/{ann}.mp3",
        "/api/v1/replays",
        f"/feeds/{HOME}.rss",
        f"/live/{HOME}.m3u",
    ):
        resp = await client.get(path, params={"token": token})
        assert resp.status == 403, path
        assert "승인" in (await resp.json())["title"]


async def test_an_approval_gated_village_has_no_public_feed(
    client: Any, admin_headers: dict[str, str]
) -> None:
    app = client.app
    ann = await ready_announcement(app, "성내리 안내")
    await played(app, ann, HOME)
    _, home = await add_listener(app, HOME, "박씨")
    _, other = await add_listener(app, OTHER, "김씨")
    assert (await client.get(f"/feeds/{HOME}.rss")).status == 200  # public while open
    await client.patch(
        f"/api/v1/regions/{HOME}", json={"requires_listener_approval": True}, headers=admin_headers
    )
    assert (await client.get(f"/feeds/{HOME}.rss")).status == 401
    assert (await client.get(f"/feeds/{HOME}.rss", params={"token": other})).status == 403
    resp = await client.get(f"/feeds/{HOME}.rss", params={"token": home})
    assert resp.status == 200
    assert "private" in resp.headers["Cache-Control"]
    assert f"/media/announcements/{ann}.mp3?token={home}" in await resp.text()
