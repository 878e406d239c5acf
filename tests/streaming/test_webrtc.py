"""Two in-process aiortc peers over loopback: publish a WAV, listen through the Opus fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from av.audio.frame import AudioFrame

from streaming.webrtc import (
    NoAudioTrack,
    NotAnOffer,
    OpusFanout,
    PublishPeer,
    add_public_candidates,
    answer_offer,
    host_addresses_for,
    ice_configuration,
    pinned_host_addresses,
)
from tests.audio import tone_wav

pytestmark = pytest.mark.ffmpeg


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """Pin ICE host candidates to 127.0.0.1 (aioice leaves loopback out); restored afterwards."""
    with pinned_host_addresses(["127.0.0.1"]):
        yield


async def offer_from(pc: RTCPeerConnection) -> RTCSessionDescription:
    """Create and apply a local offer (aiortc gathers every candidate before returning)."""
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription


def level_dbfs(frames: list[AudioFrame]) -> float:
    """RMS level of decoded frames."""
    if not frames:
        return float("-inf")
    samples = np.concatenate([f.to_ndarray().astype(np.float64).ravel() for f in frames]) / 32768
    return float(10 * np.log10(np.mean(samples**2) + 1e-20))


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("localhost", ["127.0.0.1"]),
        ("0.0.0.0", None),
        ("::", None),
        ("", None),
        ("10.1.2.3", ["10.1.2.3"]),
        ("[::1]", ["::1"]),
    ],
)
def test_candidates_follow_the_bind_address(bind: str, expected: list[str] | None) -> None:
    assert host_addresses_for(bind) == expected


def test_public_address_repeats_host_candidates() -> None:
    sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 5000 typ host\r\na=end-of-candidates\r\n"
    out = add_public_candidates(sdp, "203.0.113.7")
    assert "10.0.0.5 5000 typ host" in out
    assert "a=candidate:1p 1 udp 2130706431 203.0.113.7 5000 typ host" in out
    assert add_public_candidates(sdp, "") == sdp


def test_no_default_stun_server() -> None:
    assert ice_configuration([]).iceServers == []
    assert [s.urls for s in ice_configuration(["stun:stun.example:3478"]).iceServers or []] == [
        "stun:stun.example:3478"
    ]


async def test_a_non_offer_is_refused() -> None:
    pc = RTCPeerConnection(ice_configuration([]))
    try:
        with pytest.raises(NotAnOffer):
            await answer_offer(pc, "hello", "offer")
        with pytest.raises(NotAnOffer):
            await answer_offer(pc, "v=0\r\n", "answer")
    finally:
        await pc.close()


async def test_an_offer_without_audio_is_refused(loopback_ice: None) -> None:
    client = RTCPeerConnection(ice_configuration([]))
    client.createDataChannel("x")
    peer = PublishPeer(ice_configuration([]), lambda frame: None)
    try:
        offer = await offer_from(client)
        with pytest.raises(NoAudioTrack):
            await peer.answer(offer.sdp, offer.type)
    finally:
        await client.close()
        await peer.close()


async def test_published_audio_arrives_and_hang_up_ends_the_session(
    loopback_ice: None, tmp_path: Path
) -> None:
    wav = tone_wav(tmp_path / "tone.wav", 2.0, level_dbfs=-12)
    frames: list[AudioFrame] = []
    peer = PublishPeer(ice_configuration([]), frames.append, idle_timeout_s=2.0)
    client = RTCPeerConnection(ice_configuration([]))
    player = MediaPlayer(str(wav))
    audio = player.audio
    assert audio is not None
    client.addTrack(audio)
    try:
        offer = await offer_from(client)
        answer = await peer.answer(offer.sdp, offer.type)
        assert "127.0.0.1" in answer.sdp
        await client.setRemoteDescription(answer)
        await asyncio.sleep(2.5)
        assert len(frames) > 50  # 20 ms frames
        assert level_dbfs(frames) > -30
        await client.close()
        reason = await asyncio.wait_for(peer.wait_ended(), 6)
        assert reason
    finally:
        audio.stop()
        await client.close()
        await peer.close()


async def test_silent_publisher_is_noticed_within_seconds(
    loopback_ice: None, tmp_path: Path
) -> None:
    """A publisher whose audio stops (cut cable, frozen tab) ends by the idle timeout."""
    wav = tone_wav(tmp_path / "short.wav", 0.5)
    peer = PublishPeer(ice_configuration([]), lambda f: None, idle_timeout_s=1.0)
    client = RTCPeerConnection(ice_configuration([]))
    player = MediaPlayer(str(wav))
    audio = player.audio
    assert audio is not None
    client.addTrack(audio)
    try:
        offer = await offer_from(client)
        await client.setRemoteDescription(await peer.answer(offer.sdp, offer.type))
        reason = await asyncio.wait_for(peer.wait_ended(), 8)
        assert reason in ("no audio", "hung up")
    finally:
        audio.stop()
        await client.close()
        await peer.close()


async def test_listeners_share_one_opus_encoder(loopback_ice: None) -> None:
    """Two listeners receive the same packets from one encoder and decode the tone."""
    fanout = OpusFanout()
    received: list[list[AudioFrame]] = [[], []]
    clients: list[RTCPeerConnection] = []
    servers: list[RTCPeerConnection] = []
    readers: list[asyncio.Task[None]] = []

    async def read(track, sink: list[AudioFrame]) -> None:  # type: ignore[no-untyped-def]
        while True:
            sink.append(await track.recv())

    try:
        for sink in received:
            client = RTCPeerConnection(ice_configuration([]))
            client.addTransceiver("audio", direction="recvonly")

            @client.on("track")
            def on_track(track, sink=sink) -> None:  # type: ignore[no-untyped-def]
                readers.append(asyncio.create_task(read(track, sink)))

            server = RTCPeerConnection(ice_configuration([]))
            server.addTrack(fanout.add_listener())
            offer = await offer_from(client)
            answer = await answer_offer(server, offer.sdp, offer.type)
            await client.setRemoteDescription(answer)
            clients.append(client)
            servers.append(server)
        assert len(fanout.tracks) == 2
        await asyncio.sleep(1.0)  # connect
        t = np.arange(960) / 48000
        for i in range(100):  # 2 s of 440 Hz in real time
            samples = (0.25 * 32767 * np.sin(2 * np.pi * 440 * (t + i * 0.02))).astype("<i2")
            frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 48000
            fanout.push_pcm(frame)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        for sink in received:
            assert len(sink) > 40
            assert level_dbfs(sink[-40:]) > -25
        assert fanout.packets <= 101  # encoded once, not once per listener
    finally:
        fanout.close()
        for task in readers:
            task.cancel()
        for pc in clients + servers:
            await pc.close()


async def test_a_burst_of_channel_audio_is_released_at_real_time_pace() -> None:
    """The channel hands over 240 ms at once; listeners get it spread over 240 ms."""
    fanout = OpusFanout()
    track = fanout.add_listener(max_packets=100)
    got: list[float] = []
    loop = asyncio.get_running_loop()

    async def read() -> None:
        while True:
            await track.recv()
            got.append(loop.time())

    reader = asyncio.create_task(read())
    try:
        t = np.arange(960 * 12) / 48000
        samples = (0.25 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        start = loop.time()
        fanout.push_pcm(frame)
        await asyncio.sleep(0.5)
        assert len(got) >= 10
        assert got[0] - start < 0.05
        assert got[-1] - start > 0.15  # spread out, not all at once
        assert track.dropped == 0
    finally:
        reader.cancel()
        fanout.close()
