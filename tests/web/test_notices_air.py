""" "Air it to my village": a notice's text (TTS) or audio goes through the one on-air door, plan
first, to the village head's own village only; the receipts show who aired it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from sqlalchemy import select

from broadcast.models import Broadcast
from devices.models import AuditEntry
from tests.audio import speech_wav
from tests.broadcast.support import quiet_around_now, set_quiet_hours
from tests.web.test_notices import SEONGNAE, SEOOE, People, send
from web.keys import SESSIONMAKER
from web.settings import Settings

pytestmark = pytest.mark.ffmpeg


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite, no quiet hours (the PostgreSQL leg of the rules is in test_notices.py)."""
    return Settings(data_dir=tmp_path / "data", log_format="text", quiet_hours="off")


@pytest.fixture
async def people(client: Any) -> People:
    p = People(client)
    await p.add("officer", "district", "goseong-eup")
    await p.add("seongnae", "village", SEONGNAE)
    await p.add("seooe", "village", SEOOE)
    await p.add("other", "village", "goseong-eup-sunam-ri")
    return p


async def air(client: Any, headers: dict[str, str], nid: int, **body: Any) -> Any:
    return await client.post(f"/api/v1/notices/{nid}/air", json=body, headers=headers)


async def test_a_head_airs_the_broadcast_text_to_her_village_after_seeing_the_plan(
    client: Any, people: People
) -> None:
    resp = await send(
        client, people["officer"], title="태풍 대비 마을 점검 요청",
        targets={"villages": [SEONGNAE, SEOOE]},
        broadcast_text="태풍에 대비해 배수로를 점검합시다.",
    )  # fmt: skip
    nid = (await resp.json())["id"]
    view = await (await client.get(f"/api/v1/notices/{nid}", headers=people["seongnae"])).json()
    assert view["can_air"] is True
    plan = await air(client, people["seongnae"], nid, dry_run=True)
    assert plan.status == 200, await plan.text()
    body = await plan.json()
    assert body["status"] == "dry_run"
    assert [p["village"] for p in body["plan"]] == [SEONGNAE]
    async with client.app[SESSIONMAKER]() as session:
        assert (await session.scalars(select(Broadcast))).all() == []
    sent = await air(client, people["seongnae"], nid)
    assert sent.status == 201, await sent.text()
    broadcast_id = (await sent.json())["id"]
    async with client.app[SESSIONMAKER]() as session:
        b = await session.get(Broadcast, broadcast_id)
        assert b is not None
        assert b.villages == [SEONGNAE]
        assert b.title == "태풍 대비 마을 점검 요청"
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "notice.air" in actions
    assert "broadcast.create" in actions  # the one door audits it like any broadcast
    receipts = await (
        await client.get(f"/api/v1/notices/{nid}/receipts", headers=people["officer"])
    ).json()
    aired = {r["village"]: r["broadcast_id"] for r in receipts["recipients"] if r["aired_at"]}
    assert aired == {SEONGNAE: broadcast_id}
    assert receipts["totals"]["aired"] == 1


async def test_only_a_recipient_may_air_it_and_only_what_it_carries(
    client: Any, people: People
) -> None:
    with_text = await send(
        client, people["officer"], title="방송 문구 있음", targets={"villages": [SEONGNAE]},
        broadcast_text="안내 말씀 드립니다.",
    )  # fmt: skip
    nid = (await with_text.json())["id"]
    assert (await air(client, people["other"], nid, dry_run=True)).status == 404
    assert (await air(client, people["officer"], nid, dry_run=True)).status == 403
    plain = await send(
        client, people["officer"], title="문구 없음", targets={"villages": [SEONGNAE]}
    )
    pid = (await plain.json())["id"]
    resp = await air(client, people["seongnae"], pid, dry_run=True)
    assert resp.status == 409
    assert (await resp.json())["type"] == "/problems/nothing-to-air"
    view = await (await client.get(f"/api/v1/notices/{pid}", headers=people["seongnae"])).json()
    assert view["can_air"] is False


async def test_an_attached_audio_file_is_ingested_and_can_be_aired(
    client: Any, people: People, tmp_path: Path
) -> None:
    wav = speech_wav(tmp_path / "notice.wav", "마을 방송 안내입니다.")
    form = FormData()
    form.add_field("title", "음성 공지")
    form.add_field("targets", json.dumps({"villages": [SEONGNAE]}))
    form.add_field(
        "attachments", wav.read_bytes(), filename="안내.pdf", content_type="application/pdf"
    )
    resp = await client.post("/api/v1/notices", data=form, headers=people["officer"])
    assert resp.status == 201, await resp.text()
    nid = (await resp.json())["id"]
    view = await (await client.get(f"/api/v1/notices/{nid}", headers=people["seongnae"])).json()
    [audio] = view["attachments"]
    assert audio["kind"] == "audio"  # by its content, whatever its name claims
    assert view["can_air"] is True
    sent = await air(client, people["seongnae"], nid)
    assert sent.status == 201, await sent.text()
    got = await client.get(audio["url"], headers=people["seongnae"])
    assert got.status == 200
    assert got.headers["Content-Type"] == "audio/mpeg"
    assert len(await got.read()) > 1000


async def test_in_quiet_hours_the_plan_says_so_and_it_can_wait_for_their_end(
    client: Any, people: People
) -> None:
    await set_quiet_hours(client.app, SEONGNAE, quiet_around_now(datetime.now(UTC)))
    resp = await send(
        client, people["officer"], title="야간 안내", targets={"villages": [SEONGNAE]},
        broadcast_text="내일 아침 단수 안내입니다.",
    )  # fmt: skip
    nid = (await resp.json())["id"]
    refused = await air(client, people["seongnae"], nid, dry_run=True)
    assert refused.status == 422
    problem = await refused.json()
    assert problem["type"] == "/problems/in-quiet-hours"
    assert problem["next_allowed"]
    deferred = await air(client, people["seongnae"], nid, dry_run=True, defer_quiet=True)
    assert deferred.status == 200
    assert [p["outcome"] for p in (await deferred.json())["plan"]] == ["deferred"]
    sent = await air(client, people["seongnae"], nid, defer_quiet=True)
    assert sent.status == 201
    assert (await sent.json())["status"] == "scheduled"
