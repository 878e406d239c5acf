"""Speaker boxes and device groups over HTTP, within what each account may manage."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from devices import store
from devices.errors import BadToken
from devices.models import Device
from devices.targets import Targets
from web.keys import SESSIONMAKER

from .foundation_helpers import NEIGHBOUR, VILLAGE, other_district_village, row_counts


async def add(client: Any, headers: dict[str, str], village: str, name: str = "box") -> Any:
    return await client.post(
        "/api/v1/devices", json={"village": village, "name": name}, headers=headers
    )


async def test_token_is_shown_once_and_stored_hashed(
    client: Any, admin_headers: dict[str, str]
) -> None:
    resp = await add(client, admin_headers, VILLAGE, "회관 앞")
    assert resp.status == 201
    body = await resp.json()
    token = body["token"]
    assert token.startswith("vcs_")
    assert len(token) >= 4 + 22  # ≥ 128 bits of randomness
    assert body["stream_url"].endswith(f"/live/{VILLAGE}.mp3?token={token}")
    assert body["online"] is False
    assert body["last_seen"] is None
    async with client.app[SESSIONMAKER]() as session:
        row = await session.get(Device, body["id"])
        assert row is not None
        assert token not in row.token_hash
        assert (await store.client_by_token(session, token)).client.id == body["id"]
    listed = await (await client.get("/api/v1/devices", headers=admin_headers)).json()
    assert [d["name"] for d in listed["items"]] == ["회관 앞"]
    assert "token" not in listed["items"][0]
    one = await (await client.get(f"/api/v1/devices/{body['id']}", headers=admin_headers)).json()
    assert one["village"] == VILLAGE
    assert "token" not in one


async def test_presence_shows_in_the_list(client: Any, admin_headers: dict[str, str]) -> None:
    body = await (await add(client, admin_headers, VILLAGE)).json()
    async with client.app[SESSIONMAKER]() as session:
        await store.set_presence(session, body["id"], True, store.utcnow(), "10.0.0.7")
        await session.commit()
    listed = await (await client.get("/api/v1/devices", headers=admin_headers)).json()
    assert listed["items"][0]["online"] is True
    assert listed["items"][0]["last_seen"].endswith("+09:00")


async def test_revoked_device_token_stops_working(
    client: Any, admin_headers: dict[str, str]
) -> None:
    body = await (await add(client, admin_headers, VILLAGE)).json()
    assert (
        await client.delete(f"/api/v1/devices/{body['id']}", headers=admin_headers)
    ).status == 204
    async with client.app[SESSIONMAKER]() as session:
        with pytest.raises(BadToken):
            await store.client_by_token(session, body["token"])
    assert (await client.get(f"/api/v1/devices/{body['id']}", headers=admin_headers)).status == 404
    assert (
        await client.delete(f"/api/v1/devices/{body['id']}", headers=admin_headers)
    ).status == 404
    listed = await (await client.get("/api/v1/devices", headers=admin_headers)).json()
    assert listed["items"] == []
    resp = await client.get("/api/v1/events", params={"token": body["token"]})
    assert resp.status == 401


async def test_each_role_manages_only_its_own_region(
    client: Any, admin_headers: dict[str, str], make_staff: Any
) -> None:
    far = await other_district_village(client)
    officer = await make_staff("district", "goseong-eup")
    head = await make_staff("village", VILLAGE)
    assert (await add(client, head, VILLAGE)).status == 201
    before = await row_counts(client)
    assert (await add(client, head, NEIGHBOUR)).status == 403
    assert (await add(client, officer, far)).status == 403
    assert await row_counts(client) == before
    assert (await add(client, officer, NEIGHBOUR)).status == 201
    far_box = await (await add(client, admin_headers, far)).json()

    def villages(listing: dict[str, Any]) -> set[str]:
        return {d["village"] for d in listing["items"]}

    assert villages(await (await client.get("/api/v1/devices", headers=head)).json()) == {VILLAGE}
    assert villages(await (await client.get("/api/v1/devices", headers=officer)).json()) == {
        VILLAGE,
        NEIGHBOUR,
    }
    everything = await (await client.get("/api/v1/devices", headers=admin_headers)).json()
    assert len(everything["items"]) == 3
    only = await client.get(f"/api/v1/devices?village={NEIGHBOUR}", headers=admin_headers)
    assert villages(await only.json()) == {NEIGHBOUR}
    assert (await client.get(f"/api/v1/devices?village={far}", headers=officer)).status == 403
    assert (await client.get("/api/v1/devices?village=nowhere", headers=officer)).status == 404
    # a box outside the account's region answers exactly like a missing one
    assert (await client.get(f"/api/v1/devices/{far_box['id']}", headers=officer)).status == 404
    assert (await client.delete(f"/api/v1/devices/{far_box['id']}", headers=head)).status == 404
    assert (await client.get("/api/v1/devices")).status == 401


async def test_unknown_village_or_kind_is_refused(
    client: Any, admin_headers: dict[str, str]
) -> None:
    before = await row_counts(client)
    assert (await add(client, admin_headers, "nowhere-ri")).status == 404
    assert (await add(client, admin_headers, "goseong-eup")).status == 404  # a district
    resp = await client.post(
        "/api/v1/devices",
        json={"village": VILLAGE, "name": "x", "kind": "toaster"},
        headers=admin_headers,
    )
    assert resp.status == 422
    assert await row_counts(client) == before


async def test_groups_hold_speakers_of_their_region_and_resolve_to_villages(
    client: Any, admin_headers: dict[str, str], make_staff: Any
) -> None:
    officer = await make_staff("district", "goseong-eup")
    far = await other_district_village(client)
    a = (await (await add(client, officer, VILLAGE, "a")).json())["id"]
    b = (await (await add(client, officer, NEIGHBOUR, "b")).json())["id"]
    c = (await (await add(client, admin_headers, far, "c")).json())["id"]

    bad = await client.post(
        "/api/v1/groups",
        json={"name": "mixed", "region": "goseong-eup", "devices": [a, c]},
        headers=officer,
    )
    assert bad.status == 404  # c lies outside the officer's district: as if it did not exist
    inside = await client.post(
        "/api/v1/groups",
        json={"name": "mixed", "region": VILLAGE, "devices": [a, b]},
        headers=officer,
    )
    assert inside.status == 422  # b is visible, but outside the group's village
    assert (
        await client.post(
            "/api/v1/groups", json={"name": "all", "region": "48820"}, headers=officer
        )
    ).status == 403
    resp = await client.post(
        "/api/v1/groups",
        json={"name": "회관", "region": "goseong-eup", "devices": [a]},
        headers=officer,
    )
    assert resp.status == 201
    group = await resp.json()
    assert group["devices"] == [a]
    dup = await client.post(
        "/api/v1/groups", json={"name": "회관", "region": "goseong-eup"}, headers=officer
    )
    assert dup.status == 409

    resp = await client.post(
        f"/api/v1/groups/{group['id']}/members", json={"devices": [b, a]}, headers=officer
    )
    assert (await resp.json())["devices"] == [a, b]
    async with client.app[SESSIONMAKER]() as session:
        r = await store.resolve(session, Targets(groups=(group["id"],)))
    assert r.villages == {VILLAGE, NEIGHBOUR}

    resp = await client.delete(f"/api/v1/groups/{group['id']}/members/{a}", headers=officer)
    assert resp.status == 204
    one = await (await client.get(f"/api/v1/groups/{group['id']}", headers=officer)).json()
    assert one["devices"] == [b]
    assert (
        await client.delete(f"/api/v1/groups/{group['id']}/members/{a}", headers=officer)
    ).status == 404

    listed = await (await client.get("/api/v1/groups", headers=officer)).json()
    assert [g["name"] for g in listed["items"]] == ["회관"]
    head_far = await make_staff("village", far)
    assert (await (await client.get("/api/v1/groups", headers=head_far)).json())["items"] == []
    assert (await client.delete(f"/api/v1/groups/{group['id']}", headers=head_far)).status == 404
    assert (await client.delete(f"/api/v1/groups/{group['id']}", headers=officer)).status == 204
    assert (await client.get(f"/api/v1/groups/{group['id']}", headers=officer)).status == 404
    async with client.app[SESSIONMAKER]() as session:
        assert len((await session.scalars(select(Device))).all()) == 3  # speakers stay


async def test_http_matrix_of_roles_and_places_for_adding_speakers(
    client: Any, admin_headers: dict[str, str], make_staff: Any
) -> None:
    far = await other_district_village(client)
    staff = {
        "admin": admin_headers,
        "district": await make_staff("district", "goseong-eup"),
        "village": await make_staff("village", VILLAGE),
    }
    # village → allowed for (admin, district officer of goseong-eup, village head of VILLAGE)
    matrix = {
        VILLAGE: (True, True, True),
        NEIGHBOUR: (True, True, False),
        far: (True, False, False),
    }
    for village, row in matrix.items():
        for (role, headers), allowed in zip(staff.items(), row, strict=True):
            resp = await add(client, headers, village, f"{role}@{village}")
            assert resp.status == (201 if allowed else 403), (role, village, resp.status)
