"""Revocation cuts what is open (issue 11.7): a revoked token's streams end within 5 s.

Real sockets through the real app: an MP3 and an Ogg stream held open by a listener, a speaker
box's MP3 stream, HLS through the token cache, and a WebRTC listen, each cut by the API call that
revokes its token (revoking the listener, withdrawing it, deleting the device).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from devices import store
from streaming.webrtc import pinned_host_addresses
from tests.broadcast.support import add_listener, add_speaker
from tests.streaming.fixtures import wait_for
from web.keys import SESSIONMAKER
from web.stream_clients import OPEN_STREAMS
from web.streams import HUB

VILLAGE = "goseong-eup-seongnae-ri"
CUT_WITHIN_S = 5.0


async def _open(client: Any, path: str, token: str) -> Any:
    resp = await client.get(path, params={"token": token}, timeout=None)
    assert resp.status == 200, await resp.text()
    return resp


async def _seconds_to_eof(resp: Any) -> float:
    """How long until the server ends the stream (reading whatever it still sends)."""
    start = time.monotonic()
    async with asyncio.timeout(CUT_WITHIN_S + 5):
        while await resp.content.read(65536):
            pass
    return time.monotonic() - start


async def _wait_open(client: Any, kind: str, client_id: int, n: int) -> None:
    await wait_for(lambda: client.app[OPEN_STREAMS].count(kind, client_id) >= n)


async def test_revoking_a_listener_ends_its_mp3_streams(
    client: Any, admin_headers: dict[str, str]
) -> None:
    listener_id, token = await add_listener(client.app, VILLAGE, "박씨")
    phones = [await _open(client, f"/live/{VILLAGE}.mp3", token) for _ in range(2)]
    await _wait_open(client, "listener", listener_id, 2)
    resp = await client.delete(f"/api/v1/listeners/{listener_id}", headers=admin_headers)
    assert resp.status == 204
    waited = await asyncio.gather(*(_seconds_to_eof(p) for p in phones))
    assert max(waited) < CUT_WITHIN_S
    assert client.app[HUB].listener_count(VILLAGE) == 0
    again = await client.get(f"/live/{VILLAGE}.mp3", params={"token": token})
    assert again.status == 401


async def test_withdrawing_ends_the_residents_own_stream(client: Any) -> None:
    listener_id, token = await add_listener(client.app, VILLAGE, "박씨")
    phone = await _open(client, f"/live/{VILLAGE}.mp3", token)
    await _wait_open(client, "listener", listener_id, 1)
    resp = await client.delete("/api/v1/listeners/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 204
    assert await _seconds_to_eof(phone) < CUT_WITHIN_S


async def test_deleting_a_device_ends_its_stream_and_its_cached_token(
    client: Any, admin_headers: dict[str, str]
) -> None:
    device_id, token = await add_speaker(client.app, VILLAGE, "회관")
    box = await _open(client, f"/live/{VILLAGE}.mp3", token)
    await _wait_open(client, "device", device_id, 1)
    playlist = await client.get(f"/live/{VILLAGE}.m3u", params={"token": token})
    assert playlist.status == 200  # the token is now in the stream-token cache
    resp = await client.delete(f"/api/v1/devices/{device_id}", headers=admin_headers)
    assert resp.status == 204
    assert await _seconds_to_eof(box) < CUT_WITHIN_S
    for path in (f"/live/{VILLAGE}.m3u", f"/hls/{VILLAGE}/live.m3u8", f"/hls/{VILLAGE}/s1.ts"):
        assert (await client.get(path, params={"token": token})).status == 401, path


async def test_a_revocation_made_elsewhere_is_found_within_seconds(client: Any) -> None:
    """The CLI, another node or an operator revoking in the database: the re-check finds it."""
    listener_id, token = await add_listener(client.app, VILLAGE, "박씨")
    device_id, box_token = await add_speaker(client.app, VILLAGE, "회관")
    phone = await _open(client, f"/live/{VILLAGE}.mp3", token)
    box = await _open(client, f"/live/{VILLAGE}.mp3", box_token)
    await _wait_open(client, "listener", listener_id, 1)
    await _wait_open(client, "device", device_id, 1)
    async with client.app[SESSIONMAKER]() as session:  # not through this process's API
        store.revoke_listener(await store.get_listener(session, listener_id))
        store.revoke_device(await store.get_device(session, device_id))
        await session.commit()
    waited = await asyncio.gather(_seconds_to_eof(phone), _seconds_to_eof(box))
    assert max(waited) < CUT_WITHIN_S


@pytest.mark.ffmpeg
async def test_revoking_a_listener_ends_its_ogg_stream(
    client: Any, admin_headers: dict[str, str]
) -> None:
    listener_id, token = await add_listener(client.app, VILLAGE, "박씨")
    phone = await _open(client, f"/live/{VILLAGE}.ogg", token)
    assert (await phone.content.readexactly(4)) == b"OggS"
    await _wait_open(client, "listener", listener_id, 1)
    await client.delete(f"/api/v1/listeners/{listener_id}", headers=admin_headers)
    assert await _seconds_to_eof(phone) < CUT_WITHIN_S


@pytest.mark.slow
async def test_revoking_a_listener_ends_its_webrtc_listen(
    client: Any, admin_headers: dict[str, str]
) -> None:
    from tests.web.test_live import WebRtcListener
    from web.keys import ONAIR

    listener_id, token = await add_listener(client.app, VILLAGE, "박씨")
    live = client.app[ONAIR].live
    with pinned_host_addresses(["127.0.0.1"]):
        phone = WebRtcListener()
        try:
            await phone.connect(client, VILLAGE, token)
            assert listener_id in live.listener_ids
            start = time.monotonic()
            await client.delete(f"/api/v1/listeners/{listener_id}", headers=admin_headers)
            await wait_for(lambda: listener_id not in live.listener_ids, CUT_WITHIN_S)
            assert time.monotonic() - start < CUT_WITHIN_S
            assert not live.listen_peers
        finally:
            await phone.close()
