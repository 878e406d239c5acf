"""The village podcast feed: RSS 2.0 with iTunes tags, only what was broadcast there, escaped."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import pytest

from tests.broadcast.support import add_listener, ready_announcement
from tests.web.replay_helpers import played

pytestmark = pytest.mark.ffmpeg

SEONGNAE = "goseong-eup-seongnae-ri"
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"


async def test_feed_lists_the_village_broadcasts_newest_first(client: Any) -> None:
    app = client.app
    old = await ready_announcement(app, "지난주 <방역> & 소독 안내", seconds=2.0)
    new = await ready_announcement(app, "경로잔치 안내")
    elsewhere = await ready_announcement(app, "옆 마을 안내")
    never = await ready_announcement(app, "방송 안 된 음원")
    await played(app, old, SEONGNAE, 60 * 24 * 7)
    await played(app, new, SEONGNAE, 30)
    await played(app, new, SEONGNAE, 10)  # played twice: listed once
    await played(app, elsewhere, "goseong-eup-seooe-ri", 5)
    resp = await client.get(f"/feeds/{SEONGNAE}.rss")
    assert resp.status == 200
    assert resp.content_type == "application/rss+xml"
    root = ElementTree.fromstring(await resp.read())
    assert root.tag == "rss"
    assert root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel is not None
    assert channel.findtext("title") == "성내리 마을방송"
    assert channel.findtext("language") == "ko"
    assert channel.find(f"{ITUNES}author") is not None
    items = channel.findall("item")
    assert [i.findtext("title") for i in items] == ["경로잔치 안내", "지난주 <방역> & 소독 안내"]
    enclosure = items[1].find("enclosure")
    assert enclosure is not None
    assert enclosure.get("url", "").endswith(f"/media/announcements/{old}.mp3")
    assert int(enclosure.get("length", "0")) > 0
    assert items[1].findtext(f"{ITUNES}duration") == "00:00:02"
    assert never not in {int(i.findtext("guid", "").rsplit("-", 1)[1]) for i in items}


async def test_feed_with_a_listener_token_counts_replays(client: Any) -> None:
    app = client.app
    ann = await ready_announcement(app)
    await played(app, ann, SEONGNAE, 5)
    _, token = await add_listener(app, SEONGNAE, "박씨")
    root = ElementTree.fromstring(
        await (await client.get(f"/feeds/{SEONGNAE}.rss?token={token}")).read()
    )
    url = root.find("./channel/item/enclosure").get("url")  # type: ignore[union-attr]
    assert url is not None
    assert url.endswith(f"?token={token}")


async def test_unknown_village_is_404(client: Any) -> None:
    resp = await client.get("/feeds/atlantis.rss")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
