"""#11.9: event sockets scoped to the staff member's region, Origin checked, closed on revocation;
a Content-Security-Policy on pages; /metrics only to loopback, a configured range or a token.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from devices import store
from web.keys import EVENTS, SESSIONMAKER
from web.settings import Settings

from .foundation_helpers import NEIGHBOUR, VILLAGE, add_account, app_client, login


async def _next(ws: Any, wait_s: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=wait_s)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def test_a_village_head_gets_only_the_events_of_their_village(
    client: Any, make_staff: Any
) -> None:
    head = await make_staff("village", VILLAGE)
    async with client.ws_connect("/api/v1/events", headers=head) as ws:
        hello = await _next(ws)
        assert (hello["scope"], hello["region"]) == ("staff", VILLAGE)
        bus = client.app[EVENTS]
        bus.publish("device.online", device_id=9, village=NEIGHBOUR)
        bus.publish("broadcast.started", broadcast_id=1, villages=[NEIGHBOUR, "48820-x"])
        bus.publish("broadcast.started", broadcast_id=2, villages=[NEIGHBOUR, VILLAGE])
        bus.publish("device.online", device_id=3, village=VILLAGE)
        assert (await _next(ws))["broadcast_id"] == 2
        assert (await _next(ws))["device_id"] == 3


async def test_a_village_head_may_not_narrow_to_another_village(
    client: Any, make_staff: Any
) -> None:
    head = await make_staff("village", VILLAGE)
    resp = await client.get(f"/api/v1/events?village={NEIGHBOUR}", headers=head)
    assert resp.status == 403
    assert resp.content_type == "application/problem+json"


async def test_the_events_socket_checks_origin(aiohttp_client: Any, settings: Settings) -> None:
    client = await app_client(
        aiohttp_client, settings.replace(allowed_origins="https://console.example.org")
    )
    await add_account(client, "admin1", "admin", "48820")
    await login(client, "admin1")
    evil = await client.get("/api/v1/events", headers={"Origin": "https://evil.example"})
    assert evil.status == 403
    assert "origin" in (await evil.json())["detail"]
    own = f"http://{client.host}:{client.port}"
    for origin in (own, "https://console.example.org"):
        async with client.ws_connect("/api/v1/events", headers={"Origin": origin}) as ws:
            assert (await _next(ws))["scope"] == "staff"


async def _closed_within(ws: Any, seconds: float) -> float:
    started = time.monotonic()
    while True:  # events sent before the close (e.g. listener.revoked) are fine
        msg = await ws.receive(timeout=seconds - (time.monotonic() - started))
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
    return time.monotonic() - started


async def test_disabling_an_account_closes_its_sockets_within_5_s(
    client: Any, admin_headers: dict[str, str]
) -> None:
    account_id = await add_account(client, "head1", "village", VILLAGE)
    await login(client, "head1")  # cookie login
    async with client.app[SESSIONMAKER]() as session:
        account = await store.get_account(session, account_id)
        issued = await store.create_api_token(session, account, "script")
        await session.commit()
    bearer = {"Authorization": f"Bearer {issued.token}"}
    async with (
        client.ws_connect("/api/v1/events") as by_cookie,
        client.ws_connect("/api/v1/events", headers=bearer) as by_token,
    ):
        await _next(by_cookie)
        await _next(by_token)
        resp = await client.delete(f"/api/v1/users/{account_id}", headers=admin_headers)
        assert resp.status == 204
        waits = await asyncio.gather(_closed_within(by_cookie, 5), _closed_within(by_token, 5))
        assert max(waits) < 5
        assert by_token.close_code == 4401


async def test_revoking_a_token_or_a_listener_closes_its_socket(
    client: Any, make_staff: Any
) -> None:
    headers = await make_staff("admin", "48820")
    made = await client.post("/api/v1/tokens", json={"name": "x"}, headers=headers)
    token = await made.json()
    async with client.app[SESSIONMAKER]() as session:
        listener, listener_token = await store.create_listener(session, VILLAGE, "주민", True)
        await session.commit()
    async with (
        client.ws_connect(
            "/api/v1/events", headers={"Authorization": f"Bearer {token['token']}"}
        ) as api_ws,
        client.ws_connect(f"/api/v1/events?token={listener_token}") as listener_ws,
    ):
        await _next(api_ws)
        await _next(listener_ws)
        assert (await client.delete(f"/api/v1/tokens/{token['id']}", headers=headers)).status == 204
        resp = await client.delete(f"/api/v1/listeners/{listener.id}", headers=headers)
        assert resp.status == 204
        waits = await asyncio.gather(_closed_within(api_ws, 5), _closed_within(listener_ws, 5))
        assert max(waits) < 5


@pytest.mark.parametrize("path", ["/", "/login", "/listen"])
async def test_pages_carry_a_content_security_policy(client: Any, path: str) -> None:
    resp = await client.get(path)  # "/" sends anonymous visitors to /login
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


async def test_metrics_are_served_to_loopback_a_range_or_a_token(
    aiohttp_client: Any, settings: Settings
) -> None:
    loopback = await app_client(aiohttp_client, settings)
    assert (await loopback.get("/metrics")).status == 200
    behind_proxy = await app_client(
        aiohttp_client, settings.replace(trusted_proxies="127.0.0.1", metrics_token="s3cret-scrape")
    )
    outside = {"X-Forwarded-For": "203.0.113.5"}
    refused = await behind_proxy.get("/metrics", headers=outside)
    assert refused.status == 403
    assert refused.content_type == "application/problem+json"
    wrong = await behind_proxy.get("/metrics", headers={**outside, "Authorization": "Bearer x"})
    assert wrong.status == 403
    scraper = {**outside, "Authorization": "Bearer s3cret-scrape"}
    assert (await behind_proxy.get("/metrics", headers=scraper)).status == 200
    ranged = await app_client(
        aiohttp_client, settings.replace(trusted_proxies="127.0.0.1", metrics_allow="10.0.0.0/8")
    )
    assert (await ranged.get("/metrics", headers={"X-Forwarded-For": "10.2.3.4"})).status == 200
    assert (await ranged.get("/metrics")).status == 403  # loopback is not in the range
