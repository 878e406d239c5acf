"""The broadcasts API through the real app: plans, validation, policy, quiet hours, cancel, list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from devices.models import AuditEntry
from tests.broadcast.support import (
    quiet_around_now,
    quiet_away_from_now,
    ready_announcement,
    set_quiet_hours,
)
from web.keys import SESSIONMAKER
from web.settings import Settings

pytestmark = pytest.mark.ffmpeg

SEONGNAE = "goseong-eup-seongnae-ri"
SEOOE = "goseong-eup-seooe-ri"
EN = {"Accept-Language": "en"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No server-wide quiet hours: tests give villages their own where they need them."""
    return Settings(data_dir=tmp_path / "data", log_format="text", quiet_hours="off")


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


async def post(client: Any, headers: dict[str, str], **body: Any) -> Any:
    return await client.post("/api/v1/broadcasts", json=body, headers={**headers, **EN})


async def test_scheduled_broadcast_is_created_with_its_plan(
    client: Any, admin_headers: Any
) -> None:
    ann = await ready_announcement(client.app)
    start = datetime.now(UTC) + timedelta(hours=1)
    resp = await post(
        client, admin_headers, announcement_id=ann, targets={"villages": [SEONGNAE]},
        start_at=start.isoformat(), repeat=2,
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["status"] == "scheduled"
    assert body["start_at"].endswith("+09:00")
    assert [p["outcome"] for p in body["plan"]] == ["scheduled"]
    assert body["plan"][0]["name_ko"] == "성내리"
    got = await (await client.get(f"/api/v1/broadcasts/{body['id']}", headers=admin_headers)).json()
    assert got["status"] == "scheduled"
    assert got["repeat"] == 2
    assert got["report"]["villages"][0]["village"] == SEONGNAE


async def test_dry_run_plans_without_creating(client: Any, admin_headers: Any) -> None:
    ann = await ready_announcement(client.app)
    resp = await post(
        client, admin_headers, announcement_id=ann, targets={"districts": ["samsan-myeon"]},
        dry_run=True,
    )  # fmt: skip
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] is None
    assert len(body["plan"]) == 5
    assert {p["outcome"] for p in body["plan"]} == {"plays_now"}
    listing = await (await client.get("/api/v1/broadcasts", headers=admin_headers)).json()
    assert listing["total"] == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"targets": {"villages": [SEONGNAE]}, "start_at": "2020-01-01T00:00:00+09:00"}, 422),
        ({"targets": {"villages": [SEONGNAE]}, "start_at": "soon"}, 422),
        ({"targets": {}}, 422),
        ({"targets": {"villages": []}}, 422),
        ({"targets": {"villages": ["no-such-ri"]}}, 404),
        ({"targets": {"districts": ["no-such-myeon"]}}, 404),
        ({"targets": {"villages": [SEONGNAE]}, "repeat": 4}, 422),
        ({"targets": {"villages": [SEONGNAE]}, "priority": "loud"}, 422),
        ({"targets": {"villages": [SEONGNAE]}, "recurrence": {"freq": "hourly"}}, 422),
        ({"targets": {"villages": [SEONGNAE]}, "volume": 11}, 422),
    ],
)
async def test_bad_requests_are_clear_problems_and_write_nothing(
    client: Any, admin_headers: Any, body: dict[str, Any], status: int
) -> None:
    ann = await ready_announcement(client.app)
    resp = await post(client, admin_headers, announcement_id=ann, **body)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["detail"]
    listing = await (await client.get("/api/v1/broadcasts", headers=admin_headers)).json()
    assert listing["total"] == 0


async def test_unknown_and_unready_announcements(client: Any, admin_headers: Any) -> None:
    resp = await post(client, admin_headers, announcement_id=999, targets={"villages": [SEONGNAE]})
    assert resp.status == 404
    from recordings.models import Announcement

    async with client.app[SESSIONMAKER]() as session:
        row = Announcement(title="처리 중", source="upload", status="processing")
        session.add(row)
        await session.commit()
    resp = await post(
        client, admin_headers, announcement_id=row.id, targets={"villages": [SEONGNAE]}
    )
    assert resp.status == 409


@pytest.mark.parametrize(
    ("role", "region", "targets", "priority", "status"),
    [
        ("village", SEONGNAE, {"villages": [SEONGNAE]}, "normal", 201),
        ("village", SEONGNAE, {"villages": [SEOOE]}, "normal", 403),  # the neighbour
        ("village", SEONGNAE, {"county": True}, "normal", 403),
        ("village", SEONGNAE, {"districts": ["goseong-eup"]}, "normal", 403),
        ("village", SEONGNAE, {"villages": [SEONGNAE]}, "emergency", 403),
        ("district", "goseong-eup", {"districts": ["goseong-eup"]}, "urgent", 201),
        ("district", "goseong-eup", {"villages": ["hai-myeon-deokho-ri"]}, "normal", 403),
        ("district", "goseong-eup", {"county": True}, "normal", 403),
        ("district", "goseong-eup", {"villages": [SEONGNAE]}, "emergency", 403),
        ("admin", "48820", {"county": True}, "emergency", 201),
    ],
)
async def test_who_may_send_where(
    client: Any, make_staff: Any, role: str, region: str, targets: Any, priority: str, status: int
) -> None:
    headers = await make_staff(role, region)
    ann = await ready_announcement(client.app, region=region)  # made in their own region
    resp = await post(
        client, headers, announcement_id=ann, targets=targets, priority=priority,
        start_at=later(3600),
    )  # fmt: skip
    assert resp.status == status, await resp.text()


async def test_normal_broadcast_in_quiet_hours_is_refused_with_next_allowed(
    client: Any, make_staff: Any
) -> None:
    headers = await make_staff("district", "hai-myeon")
    village = "hai-myeon-deokho-ri"
    await set_quiet_hours(client.app, village, quiet_around_now(datetime.now(UTC)))
    ann = await ready_announcement(client.app, region="hai-myeon")
    resp = await post(client, headers, announcement_id=ann, targets={"villages": [village]})
    assert resp.status == 422
    body = await resp.json()
    assert body["type"] == "/problems/in-quiet-hours"
    next_allowed = datetime.fromisoformat(body["next_allowed"])
    assert next_allowed.utcoffset() == timedelta(hours=9)
    assert timedelta(minutes=55) < next_allowed - datetime.now(UTC) <= timedelta(hours=1, minutes=1)
    assert body["plan"][0]["outcome"] == "refused"
    resp = await post(
        client, headers, announcement_id=ann, targets={"villages": [village]}, defer_quiet=True
    )
    assert resp.status == 201
    body = await resp.json()
    assert body["plan"][0]["outcome"] == "deferred"
    assert datetime.fromisoformat(body["plan"][0]["at"]) == next_allowed


async def test_urgent_obeys_quiet_hours_and_emergency_ignores_them_with_an_audit_entry(
    client: Any, admin_headers: Any
) -> None:
    village = "hail-myeon-hangnim-ri"
    await set_quiet_hours(client.app, village, quiet_around_now(datetime.now(UTC)))
    ann = await ready_announcement(client.app, "태풍 대피 안내")
    targets = {"villages": [village]}
    resp = await post(
        client, admin_headers, announcement_id=ann, targets=targets, priority="urgent"
    )
    assert resp.status == 422
    resp = await post(
        client, admin_headers, announcement_id=ann, targets=targets, priority="emergency"
    )
    assert resp.status == 201
    body = await resp.json()
    assert body["plan"][0]["quiet_hours"] == "ignored"
    async with client.app[SESSIONMAKER]() as session:
        entries = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action.like("broadcast.%")))
        )
    actions = {e.action: e for e in entries}
    assert "broadcast.create" in actions
    emergency = actions["broadcast.emergency"]
    assert "ignored quiet hours" in emergency.note
    assert emergency.actor.startswith("account:")
    assert emergency.detail["quiet_hours_ignored"] == [village]


async def test_quiet_hours_elsewhere_in_the_day_do_not_matter(
    client: Any, admin_headers: Any
) -> None:
    await set_quiet_hours(client.app, SEONGNAE, quiet_away_from_now(datetime.now(UTC)))
    ann = await ready_announcement(client.app)
    resp = await post(
        client,
        admin_headers,
        announcement_id=ann,
        targets={"villages": [SEONGNAE]},
        start_at=later(60),
    )
    assert resp.status == 201


async def test_cancel_a_scheduled_broadcast(
    client: Any, admin_headers: Any, make_staff: Any
) -> None:
    ann = await ready_announcement(client.app)
    resp = await post(
        client,
        admin_headers,
        announcement_id=ann,
        targets={"villages": [SEONGNAE]},
        start_at=later(3600),
    )
    bid = (await resp.json())["id"]
    head = await make_staff("village", SEOOE)  # another village's broadcast: as if missing
    assert (await client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=head)).status == 404
    resp = await client.post(
        f"/api/v1/broadcasts/{bid}/cancel", headers=admin_headers, json={"reason": "날짜 변경"}
    )
    assert resp.status == 200
    assert (await resp.json())["status"] == "cancelled"
    again = await client.post(f"/api/v1/broadcasts/{bid}/cancel", headers=admin_headers)
    assert again.status == 409
    async with client.app[SESSIONMAKER]() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "broadcast.cancel")
        )
    assert entry is not None
    assert entry.note == "날짜 변경"


async def test_list_orders_and_filters(client: Any, admin_headers: Any, make_staff: Any) -> None:
    ann = await ready_announcement(client.app)
    ids = []
    for minutes, village in ((30, SEONGNAE), (10, SEOOE), (20, SEONGNAE)):
        resp = await post(
            client, admin_headers, announcement_id=ann, targets={"villages": [village]},
            start_at=later(minutes * 60),
        )  # fmt: skip
        ids.append((await resp.json())["id"])
    got = await (
        await client.get("/api/v1/broadcasts?status=scheduled", headers=admin_headers)
    ).json()
    assert [b["id"] for b in got["items"]] == [ids[1], ids[2], ids[0]]  # soonest first
    got = await (
        await client.get(f"/api/v1/broadcasts?village={SEONGNAE}", headers=admin_headers)
    ).json()
    assert {b["id"] for b in got["items"]} == {ids[0], ids[2]}
    got = await (
        await client.get("/api/v1/broadcasts?limit=1&offset=1", headers=admin_headers)
    ).json()
    assert got["total"] == 3
    assert len(got["items"]) == 1
    frm = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    got = await (
        await client.get("/api/v1/broadcasts", params={"from": frm}, headers=admin_headers)
    ).json()
    assert {b["id"] for b in got["items"]} == {ids[0], ids[2]}
    head = await make_staff("village", SEOOE)
    got = await (await client.get("/api/v1/broadcasts", headers=head)).json()
    assert [b["id"] for b in got["items"]] == [ids[1]]
    unseen = await client.get(f"/api/v1/broadcasts/{ids[0]}", headers=head)
    missing = await client.get("/api/v1/broadcasts/999999", headers=head)
    assert unseen.status == missing.status == 404  # another village's broadcast: as if missing
    assert (await unseen.json())["type"] == (await missing.json())["type"]
    bad = await client.get("/api/v1/broadcasts?status=bogus", headers=admin_headers)
    assert bad.status == 422


async def test_recurrence_is_stored_and_shown(client: Any, admin_headers: Any) -> None:
    ann = await ready_announcement(client.app)
    start = datetime.now(UTC) + timedelta(hours=2)
    until = (start + timedelta(days=14)).date().isoformat()
    resp = await post(
        client, admin_headers, announcement_id=ann, targets={"villages": [SEONGNAE]},
        start_at=start.isoformat(),
        recurrence={"freq": "weekly", "weekdays": [0, 1, 2, 3, 4, 5, 6], "until": until},
    )  # fmt: skip
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["recurrence"]["until"] == until


async def test_anonymous_is_401(client: Any) -> None:
    assert (await client.get("/api/v1/broadcasts")).status == 401
    assert (await client.post("/api/v1/broadcasts", json={})).status == 401


async def test_metrics_count_dispatched_items(client: Any) -> None:
    text = await (await client.get("/metrics")).text()
    assert 'villagecast_broadcast_items_total{outcome="dispatched"} 0' in text


@pytest.mark.parametrize("dry_run", [True, False])
async def test_another_districts_draft_answers_like_a_missing_announcement(
    client: Any, make_staff: Any, dry_run: bool
) -> None:
    """Issue 11 item 1: a village head cannot broadcast (and so publish) a draft it may not see."""
    head = await make_staff("village", SEONGNAE)
    draft = await ready_announcement(client.app, "하일면 초안", region="hai-myeon")
    answers = []
    for ann in (draft, draft + 1000):
        resp = await post(
            client, head, announcement_id=ann, targets={"villages": [SEONGNAE]}, dry_run=dry_run
        )
        body = await resp.json()
        answers.append((resp.status, body["type"], body["detail"].replace(str(ann), "N")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 404
    resp = await client.get("/api/v1/broadcasts", headers=head)
    assert (await resp.json())["total"] == 0
    resp = await client.get(f"/api/v1/announcements/{draft}", headers=head)
    assert resp.status == 404  # still unpublished
