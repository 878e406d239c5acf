"""Going live over WebRTC, end to end through the real app.

An aiortc client publishes a WAV file; ffmpeg plays the targeted and a non-targeted village's MP3
stream with speaker tokens; another aiortc peer listens over WebRTC; the session then becomes a
``ready`` announcement in the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from av.audio.frame import AudioFrame

from broadcast.models import Broadcast, Occurrence
from devices import store
from streaming.webrtc import ice_configuration, pinned_host_addresses
from tests.audio import decode_pcm, loud_seconds, speech_wav, tone_wav
from web.api_announcements import INGEST
from web.keys import SESSIONMAKER
from web.settings import Settings

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow]

TARGET = "goseong-eup-seongnae-ri"
OTHER = "goseong-eup-seooe-ri"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A test server without quiet hours (tests run at any hour of the day in Korea)."""
    return Settings(data_dir=tmp_path / "data", log_format="text", quiet_hours="")


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """Pin ICE host candidates of the test's own peers to 127.0.0.1; restored afterwards."""
    with pinned_host_addresses(["127.0.0.1"]):
        yield


async def make_device(client: Any, village: str) -> str:
    """A speaker box in a village; its token."""
    async with client.app[SESSIONMAKER]() as session:
        issued = await store.create_device(session, village, f"box {village}")
        await session.commit()
    return issued.token


async def make_listener(client: Any, village: str) -> str:
    """An active resident of a village; its token."""
    async with client.app[SESSIONMAKER]() as session:
        _, token = await store.create_listener(session, village, "주민", True)
        await session.commit()
    return token


@contextlib.asynccontextmanager
async def http_player(url: str, out: Path, seconds: float) -> AsyncIterator[None]:
    """ffmpeg as a plain speaker box: records the stream at ``url`` to ``out`` (WAV)."""
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", url, "-t", str(seconds),
        "-ac", "1", "-ar", "16000", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()  # ffmpeg finishes the WAV header on SIGTERM
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def frames_pcm(frames: list[AudioFrame]) -> np.ndarray:
    """Decoded WebRTC frames as mono float32 at 48 kHz."""
    if not frames:
        return np.zeros(0, dtype=np.float32)
    chunks = []
    for f in frames:
        a = f.to_ndarray().astype(np.float32) / 32768
        channels = len(f.layout.channels)
        chunks.append(a.reshape(-1, channels).mean(axis=1) if channels > 1 else a.ravel())
    return np.concatenate(chunks)


class WebRtcListener:
    """An aiortc peer listening to a village over ``POST /api/v1/live/listen/{village}``."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(ice_configuration([]))
        self.frames: list[AudioFrame] = []
        self._task: asyncio.Task[None] | None = None

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            self._task = asyncio.create_task(self._read(track))

    async def _read(self, track: Any) -> None:
        with contextlib.suppress(Exception):
            while True:
                self.frames.append(await track.recv())

    async def connect(self, client: Any, village: str, token: str) -> None:
        """Offer, and apply the server's answer."""
        self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await client.post(
            f"/api/v1/live/listen/{village}",
            json={"sdp": self.pc.localDescription.sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))

    async def close(self) -> None:
        """Hang up."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pc.close()


class WebRtcPublisher:
    """An aiortc peer publishing a WAV file over ``POST /api/v1/live/publish``."""

    def __init__(self, wav: Path) -> None:
        self.pc = RTCPeerConnection(ice_configuration([]))
        self.player = MediaPlayer(str(wav))
        audio = self.player.audio
        assert audio is not None
        self.audio = audio
        self.pc.addTrack(audio)

    async def publish(self, client: Any, headers: dict[str, str], **body: Any) -> Any:
        """Offer, and apply the answer; returns the response and its JSON."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await client.post(
            "/api/v1/live/publish",
            json={"sdp": self.pc.localDescription.sdp, "type": "offer", **body},
            headers=headers,
        )
        data = await resp.json()
        if resp.status == 201:
            await self.pc.setRemoteDescription(RTCSessionDescription(data["sdp"], data["type"]))
        return resp, data

    async def close(self) -> None:
        """Hang up."""
        self.audio.stop()
        await self.pc.close()


async def wait_no_sessions(client: Any, headers: dict[str, str], within_s: float) -> None:
    """Poll until no live session is on air."""
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        resp = await client.get("/api/v1/live/sessions", headers=headers)
        if not (await resp.json())["items"]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the live session did not end")


async def test_publish_reaches_targeted_speakers_and_webrtc_listeners_then_the_archive(
    client: Any,
    admin_headers: dict[str, str],
    loopback_ice: None,
    tmp_path: Path,
) -> None:
    speech = speech_wav(tmp_path / "speech.wav")
    spoken_s = loud_seconds(decode_pcm(speech))
    assert spoken_s > 1.5
    target_token = await make_device(client, TARGET)
    other_token = await make_device(client, OTHER)
    listener_token = await make_listener(client, TARGET)
    base = str(client.make_url("/live"))
    heard, not_heard = tmp_path / "target.wav", tmp_path / "other.wav"
    listener = WebRtcListener()
    publisher = WebRtcPublisher(speech)
    try:
        async with (
            http_player(f"{base}/{TARGET}.mp3?token={target_token}", heard, 20),
            http_player(f"{base}/{OTHER}.mp3?token={other_token}", not_heard, 20),
        ):
            await listener.connect(client, TARGET, listener_token)
            await asyncio.sleep(1.5)  # players and listener connected, channels idle
            resp, data = await publisher.publish(
                client, admin_headers, targets={"villages": [TARGET]}, title="수도관 파열 안내"
            )
            assert resp.status == 201, data
            assert data["villages"] == [TARGET]
            assert data["placements"] == {TARGET: "plays_now"}
            assert "127.0.0.1" in data["sdp"]
            await asyncio.sleep(spoken_s + 3.0)
            await publisher.close()  # hang up
            await wait_no_sessions(client, admin_headers, 8)
            await asyncio.sleep(1.0)
    finally:
        await publisher.close()
        await listener.close()

    target_pcm = decode_pcm(heard)
    assert loud_seconds(target_pcm) >= 0.6 * spoken_s, "the targeted village heard too little"
    assert loud_seconds(decode_pcm(not_heard)) == 0.0, "a village that was not targeted heard it"
    webrtc_pcm = frames_pcm(listener.frames)
    assert loud_seconds(webrtc_pcm, rate=48000) >= 0.6 * spoken_s, (
        "the WebRTC listener heard too little"
    )

    async with client.app[SESSIONMAKER]() as session:
        broadcast = await session.get(Broadcast, data["broadcast_id"])
        assert broadcast is not None
        announcement_id = broadcast.announcement_id
    status = await client.app[INGEST].wait_ready(announcement_id, 60)
    assert status == "ready"
    resp = await client.get(f"/api/v1/announcements/{announcement_id}", headers=admin_headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ready"
    assert body["duration_s"] >= spoken_s
    resp = await client.get(f"/api/v1/broadcasts/{data['broadcast_id']}", headers=admin_headers)
    assert resp.status == 200
    report = await resp.json()
    assert report["status"] == "done"
    assert report["report"]["totals"]["reached"] == 1  # the speaker box heard all of it
    for _ in range(30):  # the WebRTC listeners are written shortly after the item's end report
        resp = await client.get(f"/api/v1/broadcasts/{data['broadcast_id']}", headers=admin_headers)
        village = (await resp.json())["report"]["villages"][0]
        if village["listeners"]["live"]:
            break
        await asyncio.sleep(0.2)
    assert [r["nickname"] for r in village["listeners"]["live"]] == ["주민"]


async def test_publish_is_refused_outside_the_accounts_region(
    client: Any, make_staff: Callable[..., Any], loopback_ice: None, tmp_path: Path
) -> None:
    head = await make_staff("village", OTHER)
    publisher = WebRtcPublisher(speech_wav(tmp_path / "s.wav", "안녕하세요"))
    try:
        resp, data = await publisher.publish(client, head, targets={"villages": [TARGET]})
        assert resp.status == 403, data
        resp, data = await publisher.publish(
            client, head, targets={"villages": [OTHER]}, priority="emergency"
        )
        assert resp.status == 403, data
    finally:
        await publisher.close()
    resp = await client.get("/api/v1/live/sessions", headers=head)
    assert (await resp.json())["items"] == []


async def test_publish_needs_staff_and_a_valid_offer(
    client: Any, admin_headers: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/live/publish",
        json={"sdp": "v=0", "type": "offer", "targets": {"villages": [TARGET]}},
    )
    assert resp.status == 401
    resp = await client.post(
        "/api/v1/live/publish",
        json={"sdp": "nonsense", "type": "offer", "targets": {"villages": [TARGET]}},
        headers=admin_headers,
    )
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    async with client.app[SESSIONMAKER]() as session:
        from sqlalchemy import select

        occurrences = (await session.scalars(select(Occurrence))).all()
        assert all(o.status != "dispatched" for o in occurrences)


async def test_listen_needs_a_token_of_that_village(client: Any) -> None:
    token = await make_listener(client, OTHER)
    resp = await client.post(
        f"/api/v1/live/listen/{TARGET}",
        json={"sdp": "v=0", "type": "offer"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 403
    resp = await client.post(f"/api/v1/live/listen/{TARGET}", json={"sdp": "v=0", "type": "offer"})
    assert resp.status == 401


async def test_webrtc_listeners_over_the_cap_are_sent_to_hls(client: Any) -> None:
    from dataclasses import replace

    from web.keys import ONAIR

    service = client.app[ONAIR].live
    service.config = replace(service.config, webrtc_listeners_per_channel=0)
    token = await make_listener(client, TARGET)
    listener = WebRtcListener()
    try:
        listener.pc.addTransceiver("audio", direction="recvonly")
        await listener.pc.setLocalDescription(await listener.pc.createOffer())
        resp = await client.post(
            "/api/v1/live/listen/me",
            json={"sdp": listener.pc.localDescription.sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert resp.status == 503
        body = await resp.json()
        assert body["hls"] == f"/hls/{TARGET}/live.m3u8"
    finally:
        await listener.close()
    assert service.channels == {}  # the channel's decoder was not left running


async def test_a_publisher_that_goes_mute_is_ended_within_seconds(
    client: Any, admin_headers: dict[str, str], loopback_ice: None, tmp_path: Path
) -> None:
    """A cut cable or a frozen tab: no more audio, connection still up → ended, channel freed."""
    from web.streams import HUB

    publisher = WebRtcPublisher(tone_wav(tmp_path / "long.wav", 30.0))
    try:
        resp, data = await publisher.publish(client, admin_headers, targets={"villages": [TARGET]})
        assert resp.status == 201, data
        await asyncio.sleep(1.5)
        assert client.app[HUB].now_playing(TARGET) is not None
        publisher.pc.getSenders()[0].replaceTrack(None)  # stops sending, stays connected
        cut = asyncio.get_running_loop().time()
        await wait_no_sessions(client, admin_headers, 10)
        assert asyncio.get_running_loop().time() - cut < 8  # PUBLISH_IDLE_S is 3 s; shared CPUs
        for _ in range(20):
            if client.app[HUB].now_playing(TARGET) is None:
                break
            await asyncio.sleep(0.1)
        assert client.app[HUB].now_playing(TARGET) is None  # the channel is back to its queue
    finally:
        await publisher.close()


async def test_chimes_open_and_close_a_live_session_but_stay_out_of_the_recording(
    client: Any, admin_headers: dict[str, str], loopback_ice: None, tmp_path: Path
) -> None:
    box = await make_device(client, TARGET)
    heard = tmp_path / "heard.wav"
    publisher = WebRtcPublisher(tone_wav(tmp_path / "tone.wav", 8.0, level_dbfs=-12))
    try:
        async with http_player(f"{client.make_url('/live')}/{TARGET}.mp3?token={box}", heard, 30):
            await asyncio.sleep(1.0)
            resp, data = await publisher.publish(
                client, admin_headers, targets={"villages": [TARGET]}, chime=True
            )
            assert resp.status == 201, data
            chime_s = data["chime_s"]
            assert 0.5 < chime_s < 6
            await asyncio.sleep(8.5)
            await publisher.close()
            await wait_no_sessions(client, admin_headers, 8)
            await asyncio.sleep(chime_s + 1.5)  # the closing chime plays out
    finally:
        await publisher.close()
    assert loud_seconds(decode_pcm(heard)) >= (8.0 - chime_s) * 0.8 + 1.0
    async with client.app[SESSIONMAKER]() as session:
        broadcast = await session.get(Broadcast, data["broadcast_id"])
        assert broadcast is not None
    assert await client.app[INGEST].wait_ready(broadcast.announcement_id, 60) == "ready"
    resp = await client.get(
        f"/api/v1/announcements/{broadcast.announcement_id}", headers=admin_headers
    )
    recorded_s = (await resp.json())["duration_s"]
    assert recorded_s < 8.0 - chime_s + 1.0  # the speaker's audio only, after the opening chime


async def test_cancelling_the_live_broadcast_hangs_up_the_publisher(
    client: Any, admin_headers: dict[str, str], loopback_ice: None, tmp_path: Path
) -> None:
    publisher = WebRtcPublisher(tone_wav(tmp_path / "long.wav", 30.0))
    try:
        resp, data = await publisher.publish(client, admin_headers, targets={"villages": [TARGET]})
        assert resp.status == 201, data
        await asyncio.sleep(1.5)
        resp = await client.post(
            f"/api/v1/broadcasts/{data['broadcast_id']}/cancel", headers=admin_headers
        )
        assert resp.status == 200, await resp.text()
        await wait_no_sessions(client, admin_headers, 10)  # generous: the machine is shared
        resp = await client.get(f"/api/v1/broadcasts/{data['broadcast_id']}", headers=admin_headers)
        assert (await resp.json())["status"] == "cancelled"
    finally:
        await publisher.close()


async def test_a_recording_cut_off_by_a_restart_is_archived_at_the_next_start(
    client: Any, tmp_path: Path
) -> None:
    """The server died mid-session: the recording on disk becomes the broadcast's announcement."""
    from broadcast.planner import AirRequest, Staff
    from devices.targets import Targets
    from tests.audio import channel_mp3
    from web.keys import ONAIR, SETTINGS

    onair = client.app[ONAIR]
    service = onair.live
    async with client.app[SESSIONMAKER]() as session:
        account = await store.create_account(session, "officer", "pw pw pw pw", "admin", "48820")
        await session.commit()
    live = await onair.open_live(
        Staff(account), AirRequest(None, Targets(villages=(TARGET,)), chime=False), "끊긴 생방송"
    )
    folder = client.app[SETTINGS].data_dir / "live"
    folder.mkdir(parents=True, exist_ok=True)
    channel_mp3(
        tone_wav(tmp_path / "t.wav", 3.0), folder / f"20261125T000000-{live.broadcast_id}.mp3"
    )
    (folder / "20261125T000000-999.mp3").write_bytes(b"")  # nothing to save
    assert await service.recover() == 1
    assert list(folder.iterdir()) == []
    async with client.app[SESSIONMAKER]() as session:
        broadcast = await session.get(Broadcast, live.broadcast_id)
        assert broadcast is not None
        assert broadcast.announcement_id != live.placeholder_id
    assert await client.app[INGEST].wait_ready(broadcast.announcement_id, 60) == "ready"
