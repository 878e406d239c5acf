"""A broadcast played through the real channel hub to real stream connections, then its report:
boxes reached and missed by name, residents heard live, replayed, or not yet; CSV; the feed."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.broadcast.support import add_listener, add_speaker, ready_announcement, streaming
from web.keys import EVENTS
from web.settings import Settings
from web.streams import HUB

pytestmark = pytest.mark.ffmpeg

SEONGNAE = "goseong-eup-seongnae-ri"
SEOOE = "goseong-eup-seooe-ri"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", log_format="text", quiet_hours="off")


async def wait_for(predicate: Any, limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def wait_status(
    client: Any, headers: Any, bid: int, statuses: set[str], limit_s: float = 20.0
) -> Any:
    deadline = time.monotonic() + limit_s
    while True:
        body = await (await client.get(f"/api/v1/broadcasts/{bid}", headers=headers)).json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body['status']}"
        await asyncio.sleep(0.1)


async def test_report_of_two_villages_three_boxes_one_disconnected(
    client: Any, admin_headers: Any
) -> None:
    app = client.app
    hub = app[HUB]
    sub = app[EVENTS].subscribe()
    d1, t1 = await add_speaker(app, SEONGNAE, "마을회관 스피커")
    d2, t2 = await add_speaker(app, SEOOE, "정자나무 스피커")
    d3, _ = await add_speaker(app, SEOOE, "항구 스피커")  # lost power: never connects
    live_id, live_token = await add_listener(app, SEONGNAE, "김할머니")
    late_id, late_token = await add_listener(app, SEONGNAE, "박할아버지")
    ann = await ready_announcement(app, "경로잔치 안내", seconds=1.0)
    async with (
        streaming(client, SEONGNAE, t1) as got1,
        streaming(client, SEOOE, t2) as got2,
        streaming(client, SEONGNAE, live_token),
    ):
        await wait_for(
            lambda: d1 in hub.connected_devices(SEONGNAE) and d2 in hub.connected_devices(SEOOE)
        )
        resp = await client.post(
            "/api/v1/broadcasts",
            json={
                "announcement_id": ann,
                "targets": {"villages": [SEONGNAE, SEOOE]},
                "chime": False,
            },
            headers=admin_headers,
        )
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        assert {p["outcome"] for p in created["plan"]} == {"plays_now"}
        body = await wait_status(
            client, admin_headers, created["id"], {"done", "partial", "missed"}
        )
        assert len(got1) > 4000
        assert len(got2) > 4000
    assert body["status"] == "partial"
    assert body["report"]["totals"]["targeted"] == 3
    assert body["report"]["totals"]["reached"] == 2
    assert body["report"]["totals"]["missed"] == 1
    villages = {v["village"]: v for v in body["report"]["villages"]}
    assert villages[SEONGNAE]["status"] == "done"
    assert villages[SEONGNAE]["speakers"]["reached_devices"] == [
        {"id": d1, "name": "마을회관 스피커"}
    ]
    seooe = villages[SEOOE]["speakers"]
    assert seooe["reached_devices"] == [{"id": d2, "name": "정자나무 스피커"}]
    assert seooe["missed_devices"] == [
        {"id": d3, "name": "항구 스피커", "online_at_start": False, "last_seen": None}
    ]
    residents = villages[SEONGNAE]["listeners"]
    assert residents["live"] == [{"id": live_id, "nickname": "김할머니"}]
    assert residents["not_heard"] == [{"id": late_id, "nickname": "박할아버지"}]

    # The resident who missed it replays it: from "not heard" to "heard".
    replay = await client.get(f"/media/announcements/{ann}.mp3", params={"token": late_token})
    assert replay.status == 200
    await replay.read()
    body = await (
        await client.get(f"/api/v1/broadcasts/{created['id']}", headers=admin_headers)
    ).json()
    residents = {v["village"]: v for v in body["report"]["villages"]}[SEONGNAE]["listeners"]
    assert residents["not_heard"] == []
    assert [x["id"] for x in residents["replayed"]] == [late_id]
    assert residents["heard"] == 2

    # CSV for the district office: BOM for Excel, Korean names, the missed box by name.
    resp = await client.get(f"/api/v1/broadcasts/{created['id']}/report.csv", headers=admin_headers)
    assert resp.status == 200
    raw = await resp.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [SEOOE, "서외리", "speaker", str(d3), "항구 스피커", "missed", ""] in rows
    assert any(r[4] == "박할아버지" and r[5] == "replayed" for r in rows[2:])

    events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    started = [e for e in events if e["type"] == "broadcast.started"]
    ended = [e for e in events if e["type"] == "broadcast.ended"]
    assert {e["village"] for e in started} == {SEONGNAE, SEOOE}
    assert {e["village"] for e in ended} == {SEONGNAE, SEOOE}
    assert started[0]["title"] == "경로잔치 안내"
    assert started[0]["priority"] == "normal"
    sub.close()

    # The village's podcast feed lists it, with the listener's token on the enclosure.
    resp = await client.get(f"/feeds/{SEONGNAE}.rss", params={"token": late_token})
    assert resp.status == 200
    assert resp.content_type == "application/rss+xml"
    root = ElementTree.fromstring(await resp.read())
    items = root.findall("./channel/item")
    assert len(items) == 1
    enclosure = items[0].find("enclosure")
    assert enclosure is not None
    assert enclosure.get("url", "").endswith(f"/media/announcements/{ann}.mp3?token={late_token}")
    assert enclosure.get("type") == "audio/mpeg"
    plain = ElementTree.fromstring(await (await client.get(f"/feeds/{SEONGNAE}.rss")).read())
    assert "?token=" not in plain.find("./channel/item/enclosure").get("url", "")  # type: ignore[union-attr]
    assert (await client.get(f"/feeds/{SEONGNAE}.rss", params={"token": "nope"})).status == 401
    empty = ElementTree.fromstring(
        await (await client.get("/feeds/hai-myeon-deokho-ri.rss")).read()
    )
    assert empty.findall("./channel/item") == []
    assert (await client.get("/feeds/no-such-ri.rss")).status == 404


async def test_cancel_stops_a_playing_broadcast_where_it_plays(
    client: Any, admin_headers: Any
) -> None:
    app = client.app
    hub = app[HUB]
    d1, t1 = await add_speaker(app, SEONGNAE, "마을회관 스피커")
    ann = await ready_announcement(app, "긴 안내", seconds=8.0)
    async with streaming(client, SEONGNAE, t1):
        await wait_for(lambda: d1 in hub.connected_devices(SEONGNAE))
        resp = await client.post(
            "/api/v1/broadcasts",
            json={"announcement_id": ann, "targets": {"villages": [SEONGNAE]}, "chime": False},
            headers=admin_headers,
        )
        bid = (await resp.json())["id"]
        await wait_status(client, admin_headers, bid, {"playing"})
        await wait_for(lambda: hub.now_playing(SEONGNAE) is not None)
        resp = await client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=admin_headers)
        assert resp.status == 200
        assert hub.now_playing(SEONGNAE) is None
        await wait_status(client, admin_headers, bid, {"cancelled"})
    # The channel's "cancelled" report is written by the dispatcher's report task.
    deadline = time.monotonic() + 10
    while True:
        body = await (await client.get(f"/api/v1/broadcasts/{bid}", headers=admin_headers)).json()
        if body["occurrences"][0]["status"] != "playing" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert body["occurrences"][0]["status"] == "cancelled"
    assert body["occurrences"][0]["ended_at"] is not None


async def test_emergency_cuts_a_routine_broadcast_on_the_real_channel(
    client: Any, admin_headers: Any
) -> None:
    app = client.app
    hub = app[HUB]
    d1, t1 = await add_speaker(app, SEONGNAE, "마을회관 스피커")
    routine = await ready_announcement(app, "마을 안내", seconds=8.0)
    typhoon = await ready_announcement(app, "태풍 대피", seconds=1.0)
    async with streaming(client, SEONGNAE, t1):
        await wait_for(lambda: d1 in hub.connected_devices(SEONGNAE))
        resp = await client.post(
            "/api/v1/broadcasts",
            json={"announcement_id": routine, "targets": {"villages": [SEONGNAE]}, "chime": False},
            headers=admin_headers,
        )
        first = (await resp.json())["id"]
        await wait_for(lambda: hub.now_playing(SEONGNAE) is not None)
        body = {
            "announcement_id": typhoon,
            "targets": {"villages": [SEONGNAE]},
            "priority": "emergency",
            "chime": False,
        }
        plan = await (
            await client.post(
                "/api/v1/broadcasts", json={**body, "dry_run": True}, headers=admin_headers
            )
        ).json()
        assert plan["plan"][0]["outcome"] == "preempts"
        assert plan["plan"][0]["preempts"] == "마을 안내"
        resp = await client.post("/api/v1/broadcasts", json=body, headers=admin_headers)
        assert resp.status == 201
        second = (await resp.json())["id"]
        cut = await wait_status(client, admin_headers, first, {"partial", "done"})
        done = await wait_status(client, admin_headers, second, {"done", "partial"})
    assert cut["status"] == "partial"
    assert done["status"] == "done"
    assert done["report"]["totals"]["reached"] == 1
    assert datetime.fromisoformat(cut["occurrences"][0]["ended_at"]) <= datetime.fromisoformat(
        done["occurrences"][0]["started_at"]
    )
