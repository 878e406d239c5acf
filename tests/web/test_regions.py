"""The region tree and per-village settings over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from .foundation_helpers import NEIGHBOUR, VILLAGE, row_counts


async def test_regions_are_public_and_hold_goseongs_districts(client: Any) -> None:
    resp = await client.get("/api/v1/regions")
    assert resp.status == 200
    county = (await resp.json())["county"]
    assert county["code"] == "48820"
    assert county["name_ko"] == "고성군"
    districts = county["districts"]
    assert len(districts) == 14
    assert districts[0]["name_ko"] == "고성읍"
    assert all(d["villages"] for d in districts)
    village = districts[0]["villages"][0]
    assert village["code"] == VILLAGE
    assert village["requires_listener_approval"] is False
    assert village["quiet_hours"] is None


async def test_one_region_lists_its_children(client: Any) -> None:
    body = await (await client.get("/api/v1/regions/goseong-eup")).json()
    assert body["kind"] == "district"
    assert VILLAGE in body["children"]
    assert (await client.get("/api/v1/regions/nowhere")).status == 404


async def test_village_head_changes_own_village_settings(client: Any, make_staff: Any) -> None:
    head = await make_staff("village", VILLAGE)
    change = {
        "requires_listener_approval": True,
        "quiet_hours": "22:00-06:30",
        "tags": ["해안", "coastal", "coastal"],
    }
    resp = await client.patch(f"/api/v1/regions/{VILLAGE}", json=change, headers=head)
    assert resp.status == 200
    body = await resp.json()
    assert body["requires_listener_approval"] is True
    assert body["quiet_hours"] == "22:00-06:30"
    assert body["tags"] == ["coastal", "해안"]
    again = await (await client.get(f"/api/v1/regions/{VILLAGE}")).json()
    assert again["quiet_hours"] == "22:00-06:30"
    # null goes back to the server's default quiet hours
    resp = await client.patch(
        f"/api/v1/regions/{VILLAGE}", json={"quiet_hours": None}, headers=head
    )
    assert (await resp.json())["quiet_hours"] is None
    assert (await resp.json())["tags"] == ["coastal", "해안"]


async def test_settings_of_a_neighbouring_village_are_out_of_reach(
    client: Any, make_staff: Any
) -> None:
    head = await make_staff("village", VILLAGE)
    officer = await make_staff("district", "goseong-eup")
    body = {"requires_listener_approval": True}
    before = await row_counts(client)
    assert (
        await client.patch(f"/api/v1/regions/{NEIGHBOUR}", json=body, headers=head)
    ).status == 403
    assert await row_counts(client) == before
    ok = await client.patch(f"/api/v1/regions/{NEIGHBOUR}", json=body, headers=officer)
    assert ok.status == 200
    assert (await client.patch(f"/api/v1/regions/{NEIGHBOUR}", json=body)).status == 401


@pytest.mark.parametrize(
    "change",
    [
        {"quiet_hours": "9pm-6am"},
        {"quiet_hours": "24:00-06:00"},
        {"quiet_hours": "21:00"},
        {"quiet_hours": 2100},
        {"requires_listener_approval": "yes"},
        {"tags": "coastal"},
        {"tags": [""]},
        {"tags": ["x" * 33]},
        {"tags": [f"t{i}" for i in range(21)]},
        {"tags": ["ok", "bad\nline"]},
        {"name_ko": "새이름"},
    ],
)
async def test_bad_settings_are_refused_and_nothing_changes(
    client: Any, admin_headers: dict[str, str], change: dict[str, Any]
) -> None:
    before = await row_counts(client)
    resp = await client.patch(f"/api/v1/regions/{VILLAGE}", json=change, headers=admin_headers)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert await row_counts(client) == before


async def test_only_villages_have_settings(client: Any, admin_headers: dict[str, str]) -> None:
    resp = await client.patch(
        "/api/v1/regions/goseong-eup", json={"tags": ["x"]}, headers=admin_headers
    )
    assert resp.status == 404


async def test_settings_changes_are_audited(client: Any, admin_headers: dict[str, str]) -> None:
    await client.patch(f"/api/v1/regions/{VILLAGE}", json={"tags": ["a"]}, headers=admin_headers)
    log = await (await client.get("/api/v1/audit", headers=admin_headers)).json()
    entry = log["items"][0]
    assert entry["action"] == "region.update"
    assert entry["region"] == VILLAGE
    assert entry["detail"] == {"tags": ["a"]}
