"""Health, metrics, the OpenAPI description and the events WebSocket through the real app."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import aiohttp
import pytest

from devices import store
from web import openapi
from web.app import create_app
from web.keys import EVENTS, SESSIONMAKER
from web.logs import JsonFormatter
from web.settings import Settings

VILLAGE = "goseong-eup-seongnae-ri"
OTHER = "goseong-eup-seooe-ri"


async def test_every_route_of_the_app_is_described_with_a_summary(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    doc = openapi.describe(app)
    routes = list(app.router.routes())
    assert len(routes) > 10
    missing = []
    for route in routes:
        key = openapi.operation_key(route)
        assert key is not None
        path, method = key
        if method == "head" and "get" in doc["paths"].get(path, {}):
            continue
        op = doc["paths"].get(path, {}).get(method)
        if op is None or not op["summary"]:
            missing.append(f"{route.method} {path} ({getattr(route.handler, '__name__', '?')})")
    assert not missing, "routes without a described summary: " + ", ".join(missing)


async def test_openapi_json_is_served_and_names_path_parameters(client: Any) -> None:
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/events" in doc["paths"]
    assert doc["paths"]["/healthz"]["get"]["summary"] == "Liveness: the process answers."
    with_params = [op for path, item in doc["paths"].items() if "{" in path for op in item.values()]
    assert with_params
    assert all(op["parameters"][0]["in"] == "path" for op in with_params)


async def test_metrics_count_requests_by_route_template(client: Any) -> None:
    await client.get("/healthz")
    await client.get("/api/v1/no-such-thing")
    text = await (await client.get("/metrics")).text()
    assert 'villagecast_http_requests_total{method="GET",route="/healthz",status="200"} 1' in text
    assert 'route="unmatched",status="404"' in text
    bucket = 'villagecast_http_request_seconds_bucket{method="GET",route="/healthz",le="+Inf"} 1'
    assert bucket in text
    assert "villagecast_event_subscribers 0" in text


async def test_request_id_is_echoed(client: Any) -> None:
    resp = await client.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert resp.headers["X-Request-Id"] == "abc123"
    resp = await client.get("/api/v1/nothing")
    assert (await resp.json())["request_id"] == resp.headers["X-Request-Id"]


async def _listener(client: Any, village: str, *, pending: bool = False) -> str:
    async with client.app[SESSIONMAKER]() as session:
        if pending:
            (await store.get_village(session, village)).requires_listener_approval = True
        _, token = await store.create_listener(session, village, "주민", True)
        await session.commit()
    return token


async def _next_event(ws: Any, wait_s: float = 5.0) -> dict[str, Any]:
    msg = await ws.receive(timeout=wait_s)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def test_staff_receive_every_event(client: Any, admin_headers: dict[str, str]) -> None:
    async with client.ws_connect("/api/v1/events", headers=admin_headers) as ws:
        assert (await _next_event(ws))["scope"] == "staff"
        bus = client.app[EVENTS]
        bus.publish("device.online", device_id=3, village=VILLAGE)
        bus.publish("broadcast.started", broadcast_id=1, village=OTHER)
        assert (await _next_event(ws))["type"] == "device.online"
        event = await _next_event(ws)
        assert event == {"type": "broadcast.started", "broadcast_id": 1, "village": OTHER}


async def test_listener_receives_only_its_villages_broadcast_events(client: Any) -> None:
    token = await _listener(client, VILLAGE)
    async with client.ws_connect(f"/api/v1/events?token={token}") as ws:
        hello = await _next_event(ws)
        assert hello == {"type": "hello", "scope": "village", "village": VILLAGE}
        bus = client.app[EVENTS]
        bus.publish("device.online", device_id=3, village=VILLAGE)
        bus.publish("broadcast.started", broadcast_id=1, village=OTHER)
        bus.publish("broadcast.started", broadcast_id=2, villages=[OTHER, VILLAGE])
        bus.publish("broadcast.ended", broadcast_id=3, village=VILLAGE)
        assert (await _next_event(ws))["broadcast_id"] == 2
        assert (await _next_event(ws))["broadcast_id"] == 3


async def test_speaker_token_gets_its_village_and_its_own_device_events(client: Any) -> None:
    async with client.app[SESSIONMAKER]() as session:
        issued = await store.create_device(session, VILLAGE, "box")
        await session.commit()
    headers = {"Authorization": f"Bearer {issued.token}"}
    async with client.ws_connect("/api/v1/events", headers=headers) as ws:
        await _next_event(ws)
        bus = client.app[EVENTS]
        bus.publish("device.online", device_id=issued.id + 1, village=VILLAGE)
        bus.publish("device.replaced", device_id=issued.id, village=VILLAGE)
        assert (await _next_event(ws))["type"] == "device.replaced"


@pytest.mark.parametrize(
    ("query", "status"), [("", 401), ("?token=vcl_nonsense", 401), ("?token=PENDING", 403)]
)
async def test_events_refuse_anonymous_unknown_and_pending_tokens(
    client: Any, query: str, status: int
) -> None:
    if "PENDING" in query:
        query = "?token=" + await _listener(client, VILLAGE, pending=True)
    resp = await client.get("/api/v1/events" + query)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"


async def test_a_client_that_stops_reading_never_delays_publishing_or_others(
    client: Any, admin_headers: dict[str, str]
) -> None:
    bus = client.app[EVENTS]
    slow = await client.ws_connect("/api/v1/events", headers=admin_headers)
    fast = await client.ws_connect("/api/v1/events", headers=admin_headers)
    await _next_event(slow)
    await _next_event(fast)
    payload = "x" * 32_000
    n = 600  # ~19 MB for a client that never reads: far beyond every buffer on the way
    got = 0
    worst_publish = 0.0
    for i in range(n):
        started = time.perf_counter()
        bus.publish("test.blob", seq=i, payload=payload)
        worst_publish = max(worst_publish, time.perf_counter() - started)
        while got <= i:
            event = await _next_event(fast, wait_s=10)
            assert event["seq"] == got
            got += 1
    assert got == n
    assert worst_publish < 0.5  # microseconds normally; generous for a loaded machine
    # The slow socket's queue overflowed: it is told so once it reads again.
    seen_lost = False
    for _ in range(n):
        event = await _next_event(slow)
        if event["type"] == "events.lost":
            seen_lost = True
            break
    assert seen_lost
    await slow.close()
    await fast.close()
    await asyncio.sleep(0)
    assert bus.subscriber_count == 0


class ListHandler(logging.Handler):
    """Formats each record at once (as a stream handler would) and keeps the line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_each_request_is_logged_as_json_with_its_request_id(client: Any) -> None:
    handler = ListHandler()
    logger = logging.getLogger("villagecast.access")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await client.get("/api/v1/regions/nowhere", headers={"X-Request-Id": "req-42"})
        await client.get("/healthz", headers={"X-Request-Id": "bad id <script>"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    first, second = (json.loads(line) for line in handler.lines[-2:])
    assert first["request_id"] == "req-42"
    assert first["method"] == "GET"
    assert first["path"] == "/api/v1/regions/nowhere"
    assert first["status"] == 404
    assert first["duration_ms"] >= 0
    assert second["request_id"] != "bad id <script>"  # unsafe ids are replaced, never logged
    assert len(second["request_id"]) == 16
