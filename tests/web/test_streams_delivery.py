"""Delivery through real sockets: presence, one connection per box, slow listeners, device bytes."""

# ruff: noqa: F811  (the fixtures are imported from tests/streaming/fixtures.py)

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from devices.models import Device
from streaming.items import ItemReport, PlayItem
from tests.streaming.fixtures import (  # noqa: F401 (fixtures)
    VILLAGE_A,
    long_tone_mp3,
    make_device,
    make_listener,
    reports,
    speech_mp3,
    wait_for,
)
from web.keys import EVENTS, SESSIONMAKER
from web.settings import Settings
from web.streams import HUB


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A test server that drops listeners 1 s behind."""
    return Settings(data_dir=tmp_path / "data", log_format="text", listener_backlog_s=1.0)


class Reader:
    """A well-behaved client reading a stream as fast as it comes, counting bytes over time."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.url, self.token, self.session = url, token, session
        self.received: list[tuple[float, int]] = []
        self.status = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        headers = {"Authorization": f"Bearer {self.token}"}
        with contextlib.suppress(aiohttp.ClientError):
            async with self.session.get(self.url, headers=headers) as resp:
                self.status = resp.status
                async for chunk in resp.content.iter_any():
                    self.received.append((loop.time(), len(chunk)))

    def bytes_between(self, t0: float, t1: float) -> int:
        """Bytes received in a time window."""
        return sum(n for t, n in self.received if t0 <= t < t1)

    @property
    def ended(self) -> bool:
        """Whether the server closed the stream."""
        return self.task.done()

    async def stop(self) -> None:
        """Hang up."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _online(client: Any, device_id: int) -> bool:
    async with client.app[SESSIONMAKER]() as session:
        device = await session.get(Device, device_id)
        assert device is not None
        return device.online


async def test_a_box_is_online_while_connected_and_replaced_by_its_new_connection(
    client: Any, make_device: Callable[..., Any]
) -> None:
    hub = client.app[HUB]
    events = client.app[EVENTS].subscribe()
    device_id, token = await make_device(VILLAGE_A)
    url = str(client.make_url(f"/live/{VILLAGE_A}.mp3"))
    async with aiohttp.ClientSession() as session:
        first = Reader(session, url, token)
        await wait_for(lambda: len(first.received) > 0)
        await wait_for(lambda: not events.queue.empty())
        assert await _online(client, device_id)
        second = Reader(session, url, token)
        await wait_for(lambda: first.ended)
        assert hub.connected_devices(VILLAGE_A) == {device_id}
        assert hub.listener_count(VILLAGE_A) == 1
        assert await _online(client, device_id)
        await second.stop()
        await wait_for(lambda: hub.connected_devices(VILLAGE_A) == set())
    await asyncio.sleep(0.2)
    assert not await _online(client, device_id)
    got = []
    while not events.queue.empty():
        got.append(events.queue.get_nowait())
    types = [e["type"] for e in got if e["type"].startswith("device.")]
    assert types[0] == "device.online"
    assert types[-1] == "device.offline"
    assert all(e["device_id"] == device_id for e in got if e["type"].startswith("device."))


@pytest.mark.slow
async def test_slow_listener_is_dropped_while_others_keep_full_rate(
    client: Any, make_listener: Callable[..., Any], long_tone_mp3: Path
) -> None:
    hub = client.app[HUB]
    loop = asyncio.get_running_loop()
    tokens = [(await make_listener(VILLAGE_A))[1] for _ in range(3)]
    url = str(client.make_url(f"/live/{VILLAGE_A}.mp3"))
    hub.offer(PlayItem("tone", VILLAGE_A, "tone", (long_tone_mp3,)))
    # the slow one: a raw socket with a tiny receive buffer that never reads
    port = client.make_url("/").port
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    await loop.sock_connect(slow, ("127.0.0.1", port))
    request = f"GET /live/{VILLAGE_A}.mp3?token={tokens[0]} HTTP/1.0\r\nHost: x\r\n\r\n"
    await loop.sock_sendall(slow, request.encode())
    t_connect = loop.time()
    async with aiohttp.ClientSession() as session:
        readers = [Reader(session, url, t) for t in tokens[1:]]
        try:
            await wait_for(lambda: hub.listener_count(VILLAGE_A) == 3)
            await wait_for(lambda: hub.dropped_total == 1, timeout=15)
            dropped_after = loop.time() - t_connect
            t0 = loop.time()
            await asyncio.sleep(3.0)
            t1 = loop.time()
            assert hub.listener_count(VILLAGE_A) == 2
            for r in readers:
                # 64 kbps = 8000 bytes/s; at least 95 % over the 3 s window
                assert r.bytes_between(t0, t1) >= 0.95 * 8000 * (t1 - t0)
                assert not r.ended
        finally:
            for r in readers:
                await r.stop()
            slow.close()
    # bound: 1 s of backlog + the kernel's buffers (~2 s send, ~1 s receive) + one tick
    assert dropped_after < 6.0
    metrics = await (await client.get("/metrics")).text()
    assert "villagecast_stream_dropped_total 1" in metrics


@pytest.mark.slow
async def test_device_bytes_tell_which_boxes_received_the_whole_item(
    client: Any,
    make_device: Callable[..., Any],
    speech_mp3: Path,
    reports: list[ItemReport],
) -> None:
    hub = client.app[HUB]
    whole_id, whole_token = await make_device(VILLAGE_A, "whole")
    late_id, late_token = await make_device(VILLAGE_A, "late")
    url = str(client.make_url(f"/live/{VILLAGE_A}.mp3"))
    async with aiohttp.ClientSession() as session:
        whole = Reader(session, url, whole_token)
        await wait_for(lambda: hub.connected_devices(VILLAGE_A) == {whole_id})
        hub.offer(PlayItem("speech", VILLAGE_A, "안내", (speech_mp3,), broadcast_id=42))
        await asyncio.sleep(1.5)
        late = Reader(session, url, late_token)
        await wait_for(lambda: any(r.event == "finished" for r in reports), timeout=20)
        await whole.stop()
        await late.stop()
    started, finished = reports
    assert (started.event, started.broadcast_id) == ("started", 42)
    assert finished.reached() == {whole_id}
    assert finished.device_bytes[whole_id] == finished.total_bytes
    assert 0 < finished.device_bytes[late_id] < finished.total_bytes
    assert finished.total_bytes == _audio_bytes(speech_mp3)


def _audio_bytes(path: Path) -> int:
    from streaming.mp3 import split_frames

    return sum(len(f) for f in split_frames(path.read_bytes()))


async def test_boxes_left_online_by_a_crash_are_offline_after_restart(tmp_path: Path) -> None:
    from aiohttp import web

    from devices import store
    from devices.orm import utcnow
    from web.app import create_app

    settings = Settings(data_dir=tmp_path / "data", log_format="text")
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    async with runner.app[SESSIONMAKER]() as session:
        await store.import_regions_file(session, store.DEMO_REGIONS)
        issued = await store.create_device(session, VILLAGE_A, "box")
        await store.set_presence(session, issued.id, True, utcnow())
        await session.commit()
    await runner.cleanup()  # as if it crashed while the box was connected
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        async with runner.app[SESSIONMAKER]() as session:
            device = await session.get(Device, issued.id)
            assert device is not None
            assert not device.online
    finally:
        await runner.cleanup()
