"""Resident registration (one step, rate-limited), approval, revocation and ``/listeners/me``."""

from __future__ import annotations

from typing import Any

import pytest

from web.settings import Settings

from .foundation_helpers import NEIGHBOUR, VILLAGE, app_client, row_counts


async def register(
    client: Any, village: str = VILLAGE, nickname: str = "박씨 아들", **more: Any
) -> Any:
    body = {"village": village, "nickname": nickname, "consent": True, **more}
    return await client.post("/api/v1/listeners", json=body)


async def test_one_step_registration_returns_a_working_token(client: Any) -> None:
    resp = await register(client)
    assert resp.status == 201
    body = await resp.json()
    assert body["status"] == "active"
    assert body["village"] == VILLAGE
    assert body["consent"] is True
    assert body["token"].startswith("vcl_")
    me = await client.get(
        "/api/v1/listeners/me", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert me.status == 200
    mine = await me.json()
    assert (mine["id"], mine["village"], mine["nickname"], mine["status"]) == (
        body["id"],
        VILLAGE,
        "박씨 아들",
        "active",
    )
    assert "token" not in mine
    ws = await client.ws_connect(f"/api/v1/events?token={body['token']}")
    await ws.close()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"village": "nowhere-ri", "nickname": "a", "consent": True}, 404),
        ({"village": "goseong-eup", "nickname": "a", "consent": True}, 404),
        ({"village": VILLAGE, "nickname": "", "consent": True}, 422),
        ({"village": VILLAGE, "nickname": "   ", "consent": True}, 422),
        ({"village": VILLAGE, "nickname": "가" * 200, "consent": True}, 422),
        ({"village": VILLAGE, "nickname": "가" * 41, "consent": True}, 422),
        ({"village": VILLAGE, "nickname": "a\u0000b", "consent": True}, 422),
        ({"village": VILLAGE, "nickname": "a\nb", "consent": True}, 422),
        ({"village": VILLAGE, "nickname": 42, "consent": True}, 422),
        ({"village": VILLAGE, "nickname": "a"}, 422),
        ({"village": VILLAGE, "nickname": "a", "consent": False}, 422),
        ({"village": VILLAGE, "nickname": "a", "consent": "yes"}, 422),
        ({"village": VILLAGE, "nickname": "a", "consent": True, "phone": "010"}, 422),
        ({"nickname": "a", "consent": True}, 422),
    ],
)
async def test_bad_registrations_are_refused_and_write_nothing(
    client: Any, body: dict[str, Any], status: int
) -> None:
    before = await row_counts(client)
    resp = await client.post("/api/v1/listeners", json=body)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    assert await row_counts(client) == before


async def test_forty_character_nickname_is_fine(client: Any) -> None:
    assert (await register(client, nickname="가" * 40)).status == 201


async def test_repeated_registration_gets_a_new_token_and_both_work(client: Any) -> None:
    first = await (await register(client, nickname="엄마폰")).json()
    second = await (await register(client, nickname="엄마폰")).json()
    assert first["id"] != second["id"]
    assert first["token"] != second["token"]
    for token in (first["token"], second["token"]):
        resp = await client.get("/api/v1/listeners/me", params={"token": token})
        assert (await resp.json())["nickname"] == "엄마폰"


async def test_pending_approval_flow(client: Any, make_staff: Any) -> None:
    head = await make_staff("village", VILLAGE)
    other_head = await make_staff("village", NEIGHBOUR)
    resp = await client.patch(
        f"/api/v1/regions/{VILLAGE}", json={"requires_listener_approval": True}, headers=head
    )
    assert resp.status == 200
    body = await (await register(client)).json()
    assert body["status"] == "pending"
    token = body["token"]
    me = await (await client.get("/api/v1/listeners/me", params={"token": token})).json()
    assert me["status"] == "pending"
    refused = await client.get("/api/v1/events", params={"token": token})
    assert refused.status == 403  # a pending token cannot listen yet

    pending = await (await client.get("/api/v1/listeners?status=pending", headers=head)).json()
    assert [x["id"] for x in pending["items"]] == [body["id"]]
    assert (
        await client.post(f"/api/v1/listeners/{body['id']}/approve", headers=other_head)
    ).status == 404  # another village's listener answers like a missing one
    ok = await client.post(f"/api/v1/listeners/{body['id']}/approve", headers=head)
    assert ok.status == 200
    assert (await ok.json())["status"] == "active"
    ws = await client.ws_connect("/api/v1/events", params={"token": token})
    await ws.close()
    log = await (await client.get("/api/v1/audit?action=listener.", headers=head)).json()
    assert [e["action"] for e in log["items"]] == ["listener.approve", "listener.register"]


async def test_revoked_listener_token_stops_and_cannot_be_approved(
    client: Any, admin_headers: dict[str, str]
) -> None:
    body = await (await register(client)).json()
    resp = await client.delete(f"/api/v1/listeners/{body['id']}", headers=admin_headers)
    assert resp.status == 204
    assert (await client.get("/api/v1/listeners/me", params={"token": body["token"]})).status == 401
    assert (await client.get("/api/v1/events", params={"token": body["token"]})).status == 401
    again = await client.post(f"/api/v1/listeners/{body['id']}/approve", headers=admin_headers)
    assert again.status == 409
    assert (await client.delete("/api/v1/listeners/99999", headers=admin_headers)).status == 404


async def test_a_resident_can_withdraw(client: Any) -> None:
    body = await (await register(client)).json()
    auth = {"Authorization": f"Bearer {body['token']}"}
    assert (await client.delete("/api/v1/listeners/me", headers=auth)).status == 204
    assert (await client.get("/api/v1/listeners/me", headers=auth)).status == 401
    assert (await client.get("/api/v1/listeners/me")).status == 401


async def test_staff_list_listeners_of_their_villages_only(
    client: Any, admin_headers: dict[str, str], make_staff: Any
) -> None:
    await register(client, VILLAGE, "a")
    await register(client, NEIGHBOUR, "b")
    head = await make_staff("village", VILLAGE)
    officer = await make_staff("district", "goseong-eup")
    mine = await (await client.get("/api/v1/listeners", headers=head)).json()
    assert [x["nickname"] for x in mine["items"]] == ["a"]
    district = await (await client.get("/api/v1/listeners", headers=officer)).json()
    assert district["total"] == 2
    one = await (
        await client.get(f"/api/v1/listeners?village={NEIGHBOUR}", headers=admin_headers)
    ).json()
    assert [x["nickname"] for x in one["items"]] == ["b"]
    assert (await client.get(f"/api/v1/listeners?village={NEIGHBOUR}", headers=head)).status == 403
    assert (await client.get("/api/v1/listeners?status=sleeping", headers=head)).status == 422
    assert (await client.get("/api/v1/listeners")).status == 401


async def test_registration_is_rate_limited_per_address(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings.replace(registrations_per_hour=2))
    assert (await register(client, nickname="1")).status == 201
    assert (await register(client, nickname="2")).status == 201
    before = await row_counts(client)
    limited = await register(client, nickname="3")
    assert limited.status == 429
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert await row_counts(client) == before
