"""Disaster alerts end to end: a CAP 1.2 typhoon warning posted at night airs at once to the
named districts' speakers (chime + speech), once; bad documents are refused and nothing airs;
Cancel stops what it references; drills reach nobody; feeds are polled; the as-run log verifies."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from broadcast.alerts.asrun import verify_lines
from broadcast.models import Broadcast
from devices.models import AuditEntry
from tests.audio import decode_pcm, loud_seconds
from tests.broadcast.support import add_speaker, streaming
from tests.web.foundation_helpers import venv_bin
from web.api_alerts import ALERTS, ASRUN
from web.keys import SESSIONMAKER
from web.settings import Settings

pytestmark = pytest.mark.ffmpeg

CAP = Path(__file__).resolve().parents[1] / "broadcast" / "alerts" / "cap"
TYPHOON = (CAP / "kma-typhoon-goseong.xml").read_bytes()
JANGGI = "donghae-myeon-janggi-ri"  # a village of 동해면
SEONGNAE = "goseong-eup-seongnae-ri"  # not named by the warning
XML = {"Content-Type": "application/cap+xml"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A server whose quiet hours cover every hour: only an emergency may play."""
    return Settings(data_dir=tmp_path / "data", log_format="text", quiet_hours="00:00-23:59")


def fresh(doc: bytes, n: int) -> bytes:
    """The same alert with its own identifier and an expiry in the future."""
    out = doc.replace(b"KMA-20260912-0310-TY-0042", f"KMA-TEST-{n}".encode())
    return re.sub(
        rb"<expires>[^<]*</expires>", b"<expires>2099-01-01T00:00:00+09:00</expires>", out
    )


async def post(client: Any, headers: dict[str, str], doc: bytes) -> Any:
    return await client.post("/api/v1/alerts", data=doc, headers=headers | XML)


async def wait_status(
    client: Any, headers: dict[str, str], bid: int, want: set[str]
) -> dict[str, Any]:
    for _ in range(600):
        body = await (await client.get(f"/api/v1/broadcasts/{bid}", headers=headers)).json()
        if body["status"] in want:
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"broadcast {bid} stayed {body['status']}")


async def count(client: Any, model: Any) -> int:
    async with client.app[SESSIONMAKER]() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_night_typhoon_warning_airs_at_once_and_the_named_villages_hear_it(
    client: Any, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    _, near = await add_speaker(client.app, JANGGI, "장기리 회관")
    _, far = await add_speaker(client.app, SEONGNAE, "성내리 회관")
    async with streaming(client, JANGGI, near) as heard, streaming(client, SEONGNAE, far) as quiet:
        resp = await post(client, admin_headers, fresh(TYPHOON, 1))
        assert resp.status == 201, await resp.text()
        alert = await resp.json()
        assert alert["state"] == "aired", alert["reason"]
        assert alert["priority"] == "emergency"
        assert JANGGI in alert["villages"]
        assert SEONGNAE not in alert["villages"]
        assert {m["region"] for m in alert["areas"]["matched"]} == {"donghae-myeon", "samsan-myeon"}
        report = await wait_status(
            client, admin_headers, alert["broadcast_id"], {"done", "partial"}
        )
        await asyncio.sleep(0.5)
    assert report["status"] == "done", report
    path = tmp_path / "heard.mp3"
    path.write_bytes(bytes(heard))
    assert loud_seconds(decode_pcm(path)) >= 4.0  # the emergency chime and the spoken warning
    (tmp_path / "quiet.mp3").write_bytes(bytes(quiet))
    assert loud_seconds(decode_pcm(tmp_path / "quiet.mp3")) == 0.0  # 성내리 was not named
    async with client.app[SESSIONMAKER]() as session:
        b = await session.get(Broadcast, alert["broadcast_id"])
        assert b is not None
        actors = (
            await session.scalars(
                select(AuditEntry.actor).where(AuditEntry.target == f"broadcast:{b.id}")
            )
        ).all()
    assert "system:alert:KMA-TEST-1" in actors  # no person sent it: the alert did


async def test_the_same_alert_twice_airs_once(client: Any, admin_headers: dict[str, str]) -> None:
    doc = fresh(TYPHOON, 2)
    first = await post(client, admin_headers, doc)
    assert first.status == 201
    again = await post(client, admin_headers, doc)
    assert again.status == 200
    body = await again.json()
    assert body["duplicate"] is True
    assert body["id"] == (await first.json())["id"]
    assert await count(client, Broadcast) == 1


@pytest.mark.parametrize(
    ("doc", "status", "says"),
    [
        (
            TYPHOON.replace(b"<status>Actual</status>", b"<status>Real</status>"),
            422,
            "alert/status",
        ),
        (TYPHOON.replace(b"emergency:cap:1.2", b"emergency:cap:1.1"), 422, "cap:1.1"),
        (TYPHOON.replace(b"</alert>", b"<!--" + b"x" * 300_000 + b"--></alert>"), 413, "KB"),
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa">'
            + b"".join(b'<!ENTITY a%d "&a;&a;&a;&a;&a;&a;&a;&a;">' % i for i in range(8))
            + b']><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&a7;</alert>',
            422,
            "DTD",
        ),
        (b"<html><body>hi</body></html>", 415, "not a CAP"),
    ],
    ids=["schema", "namespace", "oversized", "xml-bomb", "not-cap"],
)
async def test_bad_documents_are_refused_and_nothing_airs(
    client: Any, admin_headers: dict[str, str], doc: bytes, status: int, says: str
) -> None:
    resp = await post(client, admin_headers, doc)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert says in (await resp.json())["detail"]
    assert await count(client, Broadcast) == 0
    listing = await (await client.get("/api/v1/alerts", headers=admin_headers)).json()
    assert listing["total"] == 0


async def test_a_document_sent_in_small_chunks_is_read_whole(
    client: Any, admin_headers: dict[str, str]
) -> None:
    doc = fresh(TYPHOON, 12)

    async def trickle() -> Any:
        for i in range(0, len(doc), 97):
            yield doc[i : i + 97]
            await asyncio.sleep(0)

    resp = await client.post("/api/v1/alerts", data=trickle(), headers=admin_headers | XML)
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["identifier"] == "KMA-TEST-12"


async def test_only_the_county_office_posts_alerts(
    client: Any, make_staff: Any, admin_headers: dict[str, str]
) -> None:
    head = await make_staff("village", JANGGI)
    assert (await post(client, head, fresh(TYPHOON, 3))).status == 403
    assert (await client.post("/api/v1/alerts", data=TYPHOON, headers=XML)).status == 401
    wrong_type = await client.post(
        "/api/v1/alerts", data=TYPHOON, headers=admin_headers | {"Content-Type": "text/plain"}
    )
    assert wrong_type.status == 415
    assert await count(client, Broadcast) == 0


async def test_another_countys_alert_is_stored_and_ignored(
    client: Any, admin_headers: dict[str, str]
) -> None:
    doc = fresh(TYPHOON, 4).replace(
        "경상남도 고성군 동해면, 삼산면".encode(), "강원특별자치도 고성군 토성면".encode()
    )
    doc = doc.replace(b"Gyeongsangnam-do Goseong-gun Donghae-myeon, Samsan-myeon", b"Gangwon-do")
    resp = await post(client, admin_headers, doc)
    body = await resp.json()
    assert resp.status == 201
    assert body["state"] == "ignored"
    assert body["reason"] == "no area of this county matched"
    assert await count(client, Broadcast) == 0


@pytest.mark.parametrize("status", ["Exercise", "Test"])
async def test_a_drill_reaches_no_resident(
    client: Any, admin_headers: dict[str, str], status: str
) -> None:
    doc = fresh(TYPHOON, 5).replace(
        b"<status>Actual</status>", f"<status>{status}</status>".encode()
    )
    body = await (await post(client, admin_headers, doc)).json()
    assert body["state"] == "ignored"
    assert body["exercise"] is True
    assert body["villages"]  # matched and stored, for the record
    assert await count(client, Broadcast) == 0


async def test_a_moderate_warning_waits_for_approval_then_airs(
    client: Any, admin_headers: dict[str, str]
) -> None:
    doc = re.sub(
        rb"<severity>Extreme</severity>", b"<severity>Moderate</severity>", fresh(TYPHOON, 6)
    )
    body = await (await post(client, admin_headers, doc)).json()
    assert body["state"] == "pending"
    assert await count(client, Broadcast) == 0
    one = await (await client.get(f"/api/v1/alerts/{body['id']}", headers=admin_headers)).json()
    assert "<identifier>KMA-TEST-6</identifier>" in one["cap"]
    approved = await client.post(
        f"/api/v1/alerts/{body['id']}/approve", json={"villages": [JANGGI]}, headers=admin_headers
    )
    # normal priority inside quiet hours: the door refuses it and says when it may play
    assert approved.status == 422, await approved.text()
    assert (await approved.json())["type"] == "/problems/in-quiet-hours"
    assert (await (await client.get(f"/api/v1/alerts/{body['id']}", headers=admin_headers)).json())[
        "state"
    ] == "pending"
    rejected = await client.post(
        f"/api/v1/alerts/{body['id']}/reject",
        json={"reason": "훈련 아님, 중복"},
        headers=admin_headers,
    )
    assert (await rejected.json())["state"] == "rejected"
    again = await client.post(f"/api/v1/alerts/{body['id']}/approve", headers=admin_headers)
    assert again.status == 409


async def test_cancel_stops_what_it_references(client: Any, admin_headers: dict[str, str]) -> None:
    first = await (await post(client, admin_headers, fresh(TYPHOON, 7))).json()
    assert first["state"] == "aired"
    ref = f"cap@kma.go.kr,KMA-TEST-7,{first['sent']}"
    cancel = (
        fresh(TYPHOON, 8)
        .replace(b"<msgType>Alert</msgType>", b"<msgType>Cancel</msgType>")
        .replace(
            b"<scope>Public</scope>",
            f"<scope>Public</scope><references>{ref}</references>".encode(),
        )
    )
    resp = await post(client, admin_headers, cancel)
    assert resp.status == 201, await resp.text()
    b = await wait_status(
        client, admin_headers, first["broadcast_id"], {"cancelled", "done", "partial"}
    )
    assert b["status"] == "cancelled"
    earlier = await (
        await client.get(f"/api/v1/alerts/{first['id']}", headers=admin_headers)
    ).json()
    assert earlier["state"] == "cancelled"


async def test_feed_polling_picks_up_a_new_entry(
    client: Any, admin_headers: dict[str, str], aiohttp_server: Any
) -> None:
    docs = {"a": fresh(TYPHOON, 9)}

    async def feed(request: web.Request) -> web.Response:
        entries = "".join(
            f'<entry><id>{k}</id><link type="application/cap+xml" href="/cap/{k}.xml"/></entry>'
            for k in docs
        )
        xml = f'<feed xmlns="http://www.w3.org/2005/Atom"><id>x</id>{entries}</feed>'
        return web.Response(text=xml, content_type="application/atom+xml")

    async def doc(request: web.Request) -> web.Response:
        return web.Response(body=docs[request.match_info["k"]], content_type="application/cap+xml")

    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/cap/{k}.xml", doc)
    server = await aiohttp_server(app, host="127.0.0.1")
    from broadcast.alerts.poller import FeedPoller

    poller = FeedPoller([str(server.make_url("/feed"))], client.app[ALERTS].receive, 10)
    assert await poller.poll_once() == 1
    docs["b"] = fresh(TYPHOON, 10)
    assert await poller.poll_once() == 1
    listing = await (await client.get("/api/v1/alerts", headers=admin_headers)).json()
    assert sorted(a["identifier"] for a in listing["items"]) == ["KMA-TEST-10", "KMA-TEST-9"]
    assert all(a["source"].startswith("feed:http://127.0.0.1") for a in listing["items"])


async def test_the_as_run_log_verifies_and_names_an_altered_entry(
    client: Any, admin_headers: dict[str, str], tmp_path: Path
) -> None:
    alert = await (await post(client, admin_headers, fresh(TYPHOON, 11))).json()
    await wait_status(client, admin_headers, alert["broadcast_id"], {"done", "partial", "missed"})
    await client.app[ASRUN].sweep()
    resp = await client.get("/api/v1/asrun", headers=admin_headers)
    assert resp.status == 200
    lines = (await resp.text()).splitlines()
    assert len(lines) == 2  # the header and the one broadcast
    entry = json.loads(lines[1])["body"]
    assert entry["by"] == "system:alert:KMA-TEST-11"
    assert entry["alert"]["identifier"] == "KMA-TEST-11"
    assert verify_lines(lines).ok
    export = tmp_path / "asrun.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ok = await asyncio.to_thread(verify_cli, export)
    assert ok.returncode == 0, ok.stderr
    assert "1 entries" in ok.stdout or "1 entry" in ok.stdout
    raw = json.loads(lines[1])
    raw["body"]["reached"]["speakers_reached"] = 99
    export.write_text("\n".join([lines[0], json.dumps(raw)]) + "\n", encoding="utf-8")
    bad = await asyncio.to_thread(verify_cli, export)
    assert bad.returncode == 1
    assert "entry 1 was altered" in bad.stdout + bad.stderr
    head = await make_village_head(client)
    assert (await client.get("/api/v1/asrun", headers=head)).status == 403


def verify_cli(path: Path) -> subprocess.CompletedProcess[str]:
    """``villagecast asrun verify FILE`` as an auditor runs it."""
    cmd = [venv_bin("villagecast"), "asrun", "verify", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


async def make_village_head(client: Any) -> dict[str, str]:
    from devices import store

    async with client.app[SESSIONMAKER]() as session:
        account = await store.create_account(
            session, "ijang", "correct horse battery", "village", JANGGI
        )
        issued = await store.create_api_token(session, account, "t")
        await session.commit()
    return {"Authorization": f"Bearer {issued.token}"}
