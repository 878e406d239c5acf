"""Encode once per live session; source clients through whitelisted ffmpeg; the source parser."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import numpy as np
import pytest
from av.audio.frame import AudioFrame

from recordings.channel_format import FrameSplitter
from streaming.live_encode import LIVE_AHEAD_MAX_S, Mp3Encoder, SessionOutput, SourceTranscoder
from streaming.source_client import (
    SourceAuthFailed,
    StreamTap,
    input_format_of,
    parse_basic_auth,
    parse_source_request,
)
from tests.audio import channel_mp3, decode_pcm, ffprobe, loud_seconds, tone_wav
from tests.recordings import hostile

CHANNEL_FRAME = bytes((0xFF, 0xFB, 0x54, 0xC4)) + bytes(188)  # 64 kbps, 48 kHz, mono: 192 bytes


class FakeFeed:
    """A LiveFeed that keeps what it is given."""

    def __init__(self, fail: bool = False) -> None:
        self.data = bytearray()
        self.pushes = 0
        self.closed = False
        self.fail = fail

    def push(self, data: bytes) -> None:
        if self.fail:
            raise RuntimeError("broken channel")
        self.pushes += 1
        self.data += data

    def close(self) -> None:
        self.closed = True

    def end(self) -> None:
        """The channel ended the item (preempted, cancelled)."""
        self.closed = True


def pcm_frames(seconds: float, rate: int = 48000, layout: str = "stereo") -> list[AudioFrame]:
    """20 ms frames of a 440 Hz tone, like a WebRTC decoder hands them out."""
    n = rate // 50
    channels = 2 if layout == "stereo" else 1
    frames = []
    for i in range(int(seconds * 50)):
        t = (np.arange(n) + i * n) / rate
        mono = (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
        packed = np.repeat(mono, channels).reshape(1, -1)
        frame = AudioFrame.from_ndarray(packed, format="s16", layout=layout)
        frame.sample_rate = rate
        frames.append(frame)
    return frames


def test_splitter_returns_whole_frames_across_any_cut() -> None:
    stream = b"ID3garbage" + CHANNEL_FRAME * 5  # not a real tag: no waiting for 200 MB of it
    splitter = FrameSplitter()
    frames: list[bytes] = []
    for i in range(0, len(stream), 37):
        frames += splitter.feed(stream[i : i + 37])
    assert frames == [CHANNEL_FRAME] * 5


def test_encoder_makes_channel_format_mp3_once_for_every_feed(tmp_path: Path) -> None:
    feeds = [FakeFeed(), FakeFeed()]
    output = SessionOutput(feeds, tmp_path / "rec" / "session.mp3")
    for frame in pcm_frames(2.0):
        output.push_frame(frame)
    recording = output.close()
    assert all(f.closed for f in feeds)
    assert feeds[0].data == feeds[1].data == recording.path.read_bytes()
    assert len(feeds[0].data) % 192 == 0  # whole 64 kbps frames only
    assert 1900 <= recording.duration_ms <= 2200
    stream = ffprobe(recording.path)["streams"][0]
    assert (stream["codec_name"], stream["sample_rate"], stream["channels"]) == ("mp3", "48000", 1)
    assert stream["bit_rate"] == "64000"
    assert loud_seconds(decode_pcm(recording.path)) >= 1.8


def test_live_audio_faster_than_real_time_is_dropped(tmp_path: Path) -> None:
    # A source that pushes a file at full speed (or one that decodes to far more than it is):
    # the feeds and the recording get real time plus LIVE_AHEAD_MAX_S, never the flood.
    now = [100.0]
    feed = FakeFeed()
    output = SessionOutput([feed], tmp_path / "s.mp3", clock=lambda: now[0])
    minute = CHANNEL_FRAME * 2500  # 60 s of frames
    output.push_mp3(minute)
    assert len(feed.data) // 192 == int(LIVE_AHEAD_MAX_S / 0.024)
    now[0] += 10.0
    output.push_mp3(minute)
    assert len(feed.data) // 192 == int((10.0 + LIVE_AHEAD_MAX_S) / 0.024)
    recording = output.close()
    assert recording.bytes == len(feed.data)
    assert output.dropped_frames == 5000 - len(feed.data) // 192


def test_a_broken_feed_is_dropped_without_stopping_the_others(tmp_path: Path) -> None:
    good, bad = FakeFeed(), FakeFeed(fail=True)
    output = SessionOutput([bad, good], tmp_path / "s.mp3")
    for frame in pcm_frames(0.5, rate=16000, layout="mono"):
        output.push_frame(frame)
    output.close()
    assert bad.closed
    assert len(good.data) > 0


def test_output_knows_when_every_channel_has_ended_the_item(tmp_path: Path) -> None:
    a, b = FakeFeed(), FakeFeed()
    output = SessionOutput([a, b], tmp_path / "s.mp3")
    a.end()
    assert not output.feeds_ended
    b.end()
    assert output.feeds_ended
    output.close()


def test_encoder_flush_returns_the_tail() -> None:
    encoder = Mp3Encoder()
    body = b"".join(encoder.encode(f) for f in pcm_frames(0.2))
    tail = encoder.flush()
    assert len(body + tail) >= 192 * 8


@pytest.mark.ffmpeg
async def test_source_transcoder_turns_any_mp3_into_the_channel_format(tmp_path: Path) -> None:
    src = tmp_path / "in.mp3"
    wav = tone_wav(tmp_path / "tone.wav", 2.0, rate=44100)
    proc = await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(wav), "-ac", "2", "-b:a", "128k",
        str(src),
    )  # fmt: skip
    assert await proc.wait() == 0
    feed = FakeFeed()
    output = SessionOutput([feed], tmp_path / "out.mp3")
    transcoder = SourceTranscoder(output.push_mp3, input_format_of("audio/mpeg"))
    await transcoder.start()
    data = src.read_bytes()
    for i in range(0, len(data), 4096):
        assert await transcoder.write(data[i : i + 4096])
    await transcoder.close()
    recording = output.close()
    stream = ffprobe(recording.path)["streams"][0]
    assert (stream["sample_rate"], stream["channels"], stream["bit_rate"]) == ("48000", 1, "64000")
    assert loud_seconds(decode_pcm(recording.path)) >= 1.8


@pytest.mark.ffmpeg
@pytest.mark.parametrize("kind", ["dash", "hls", "concat"])
async def test_a_source_sending_a_manifest_reads_nothing_and_airs_nothing(
    tmp_path: Path, kind: str
) -> None:
    make = {"dash": hostile.dash_manifest, "hls": hostile.hls_playlist,
            "concat": hostile.concat_script}[kind]  # fmt: skip
    private = await asyncio.to_thread(hostile.local_media, tmp_path / "private.m4a")
    manifest = make(tmp_path / "manifest", private).read_bytes()
    feed = FakeFeed()
    output = SessionOutput([feed], tmp_path / "out.mp3")
    # No declared format (application/octet-stream): ffmpeg probes, among audio demuxers only.
    transcoder = SourceTranscoder(output.push_mp3, input_format_of("application/octet-stream"))
    await transcoder.start()
    await transcoder.write(manifest)
    ended = await transcoder.close()
    recording = output.close()
    assert recording.bytes == 0
    assert feed.data == b""
    assert ended is not None
    assert ended.code != 0
    assert "Format not on whitelist" in ended.error  # refused by name, before reading anything


@pytest.mark.ffmpeg
def test_channel_mp3_passes_through_unchanged(tmp_path: Path) -> None:
    mp3 = channel_mp3(tone_wav(tmp_path / "t.wav", 1.0), tmp_path / "t.mp3")
    feed = FakeFeed()
    output = SessionOutput([feed], tmp_path / "rec.mp3")
    data = mp3.read_bytes()
    output.push_mp3(data)
    output.close()
    assert len(feed.data) > 0
    assert feed.data in data  # the frames, without tags or the Xing frame


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("kim", "api_abc:def"), ("kim", "api_abc:def")),
        (basic("김", "tok"), ("김", "tok")),
        ("Basic !!!", None),
        ("Bearer abc", None),
        ("", None),
        ("Basic " + base64.b64encode(b"nopassword").decode(), None),
        ("Basic " + base64.b64encode(b":x").decode(), None),
    ],
)
def test_basic_auth(header: str, expected: tuple[str, str] | None) -> None:
    assert parse_basic_auth(header) == expected


def test_source_request_head() -> None:
    head = parse_source_request(
        {
            "Authorization": basic("kim", "tok"),
            "Content-Type": "audio/ogg",
            "Expect": "100-continue",
            "ice-name": "군청 미디어팀",
        }
    )
    assert (head.username, head.password, head.name, head.expects_continue) == (
        "kim",
        "tok",
        "군청 미디어팀",
        True,
    )
    assert input_format_of(head.content_type) == "ogg"
    assert input_format_of("application/octet-stream") is None
    with pytest.raises(SourceAuthFailed):
        parse_source_request({"Content-Type": "audio/mpeg"})


class FakeTransport:
    """Just enough of an asyncio transport for StreamTap."""

    def __init__(self) -> None:
        self.protocol: object = None
        self.paused = False

    def set_protocol(self, protocol: object) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class FakeHttpProtocol:
    def __init__(self) -> None:
        self.lost = False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


async def test_stream_tap_reads_raw_bytes_with_back_pressure() -> None:
    transport, original = FakeTransport(), FakeHttpProtocol()
    tap = StreamTap.take_over(transport, original)
    assert transport.protocol is tap
    tap._high_water = 10
    tap.data_received(b"0123456789ab")
    assert transport.paused
    assert await tap.read() == b"0123456789ab"
    assert not transport.paused
    with pytest.raises(TimeoutError):
        await tap.read(0.05)
    tap.data_received(b"x")
    tap.connection_lost(None)
    assert original.lost
    assert await tap.read() == b"x"
    assert await tap.read() == b""
