"""WebRTC with aiortc: a staff member's mic in (publish), a village channel out to phones (listen).

- ICE: never the library's default public STUN server; candidates follow the bind address
  (:func:`host_addresses_for`, :func:`pinned_host_addresses`), no trickle — answers carry every
  candidate, gathered under a timeout (:func:`answer_offer`).
- Publish: :class:`PublishPeer` hands every decoded audio frame of the browser's mic to a callback
  and notices the end of the session (hang-up, closed tab, lost connection, or silence on the wire).
- Listen: :class:`OpusFanout` encodes a channel's PCM to Opus **once** and gives the same packets to
  every listener's :class:`PacketTrack` (aiortc sends pre-encoded ``av.Packet`` values as they are).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ipaddress
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

import aioice.ice
import av
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.audio.frame import AudioFrame
from av.packet import Packet

from devices.errors import InvalidError, UnavailableError

from .live_encode import LiveError

__all__ = [
    "ChannelListen",
    "NoAudioTrack",
    "NotAnOffer",
    "OpusFanout",
    "PacketTrack",
    "PcmTrack",
    "PublishPeer",
    "TooManyWebRtcListeners",
    "WebRtcUnavailable",
    "add_public_candidates",
    "answer_offer",
    "check_offer",
    "host_addresses_for",
    "ice_configuration",
    "pinned_host_addresses",
]

log = logging.getLogger(__name__)

OPUS_RATE_HZ = 48000
OPUS_FRAME_SAMPLES = 960  # 20 ms
OPUS_TIME_BASE = fractions.Fraction(1, OPUS_RATE_HZ)
MAX_LATE_S = 0.1  # a packet this late re-anchors the pacing clock (a stall, a gap)
MAX_AHEAD_S = 0.02  # nor held back longer than this: pacing must not add delay


class NotAnOffer(LiveError, InvalidError):
    """Not a usable SDP offer."""

    title_ko = "SDP 제안(offer)이 올바르지 않습니다"


class NoAudioTrack(LiveError, InvalidError):
    """The offer has no audio track."""

    title_ko = "오디오 트랙이 없습니다"


class WebRtcUnavailable(LiveError, UnavailableError):
    """WebRTC is not available right now."""

    title_ko = "지금은 WebRTC 연결을 만들 수 없습니다"


class TooManyWebRtcListeners(LiveError, UnavailableError):
    """This village has as many WebRTC listeners as it can serve; use the HLS or MP3 stream."""

    title_ko = "WebRTC 청취자가 가득 찼습니다. HLS 또는 MP3 스트림으로 들어 주세요"


# --- ICE ------------------------------------------------------------------------------------------


def ice_configuration(urls: Sequence[str]) -> RTCConfiguration:
    """An RTCConfiguration with exactly these STUN/TURN URLs (an empty list: none at all)."""
    return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in urls if url.strip()])


def parse_ice_servers(raw: str) -> list[str]:
    """The comma-separated ``ice_servers`` setting as a list of URLs."""
    return [url.strip() for url in raw.split(",") if url.strip()]


def host_addresses_for(bind_host: str) -> list[str] | None:
    """Host candidate addresses for a server bound to ``bind_host`` (None: every interface)."""
    host = bind_host.strip().strip("[]")
    if host in ("", "0.0.0.0", "::"):
        return None
    if host == "localhost":
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return None  # a host name: let aioice find the interfaces


@contextlib.contextmanager
def pinned_host_addresses(addresses: list[str] | None) -> Iterator[None]:
    """Make aioice offer exactly these host addresses (it leaves out 127.0.0.1 by itself).

    aioice reads the module-level ``get_host_addresses`` on every gathering, so this is
    process-wide; the original is restored on exit.
    """
    original = aioice.ice.get_host_addresses
    if addresses is not None:
        pinned = list(addresses)

        def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            return [a for a in pinned if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

        aioice.ice.get_host_addresses = get_host_addresses
    try:
        yield
    finally:
        aioice.ice.get_host_addresses = original


def add_public_candidates(sdp: str, public_address: str) -> str:
    """Repeat every host candidate of an SDP with ``public_address`` (a 1:1 NAT in front of us)."""
    if not public_address:
        return sdp
    out: list[str] = []
    for line in sdp.splitlines():
        out.append(line)
        if line.startswith("a=candidate:") and " typ host" in line:
            parts = line.split(" ")
            if len(parts) > 5 and parts[4] != public_address:
                parts[0] = parts[0] + "p"  # a distinct foundation
                parts[4] = public_address
                out.append(" ".join(parts))
    return "\r\n".join(out) + "\r\n"


def check_offer(sdp: object, kind: object) -> None:
    """Refuse what cannot be an SDP offer (before any work is done for it)."""
    if kind != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise NotAnOffer("send an SDP offer: {sdp: 'v=0…', type: 'offer'}")
    if "m=audio" not in sdp:
        raise NoAudioTrack("the offer has no audio section")


async def answer_offer(
    pc: RTCPeerConnection, sdp: str, kind: str, gather_timeout_s: float = 2.5
) -> RTCSessionDescription:
    """Apply a remote offer and return the local answer with all its candidates (no trickle)."""
    check_offer(sdp, kind)
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except ValueError as exc:
        raise NotAnOffer(f"the SDP offer cannot be used: {exc}") from None
    answer = await pc.createAnswer()
    try:
        # aiortc gathers candidates inside setLocalDescription; bound it (STUN may not answer).
        await asyncio.wait_for(pc.setLocalDescription(answer), gather_timeout_s)
    except TimeoutError:
        raise WebRtcUnavailable("ICE candidate gathering timed out") from None
    return pc.localDescription


# --- publish --------------------------------------------------------------------------------------


class PublishPeer:
    """The server side of one publisher: frames of its first audio track go to ``on_frame``.

    The session ends when the track ends, the connection fails or closes, no frame arrives for
    ``idle_timeout_s`` (a closed tab, a cut cable), or no first frame in ``connect_timeout_s``.
    """

    def __init__(
        self,
        configuration: RTCConfiguration,
        on_frame: Callable[[AudioFrame], None],
        *,
        idle_timeout_s: float = 3.0,
        connect_timeout_s: float = 15.0,
    ) -> None:
        self.pc = RTCPeerConnection(configuration)
        self._on_frame = on_frame
        self._idle_timeout_s = idle_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._pump: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self.end_reason = ""
        self.frames = 0
        self.first_frame_at: float | None = None

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._pump is None:
                self._pump = asyncio.create_task(self._run(track))

        @self.pc.on("connectionstatechange")
        async def on_state() -> None:
            if self.pc.connectionState in ("failed", "closed"):
                self._end(f"connection {self.pc.connectionState}")

    async def answer(
        self, sdp: str, kind: str, gather_timeout_s: float = 2.5
    ) -> RTCSessionDescription:
        """Accept the publisher's offer; the answer carries every candidate."""
        try:
            answer = await answer_offer(self.pc, sdp, kind, gather_timeout_s)
        except BaseException:
            await self.close()
            raise
        if self._pump is None:
            await self.close()
            raise NoAudioTrack("the offer has no audio track to publish")
        return answer

    async def _run(self, track: MediaStreamTrack) -> None:
        timeout = self._connect_timeout_s
        try:
            while True:
                frame = await asyncio.wait_for(track.recv(), timeout)
                timeout = self._idle_timeout_s
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                self.frames += 1
                if isinstance(frame, AudioFrame):
                    self._on_frame(frame)
        except TimeoutError:
            self._end("no audio" if self.frames else "never connected")
        except MediaStreamError:
            self._end("hung up")
        except Exception:
            log.exception("publish pump failed")
            self._end("error")

    def _end(self, reason: str) -> None:
        if not self._ended.is_set():
            self.end_reason = reason
            self._ended.set()

    async def wait_ended(self) -> str:
        """Wait until the session ends; returns why."""
        await self._ended.wait()
        return self.end_reason

    async def close(self) -> None:
        """Hang up (idempotent)."""
        self._end(self.end_reason or "closed")
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        await self.pc.close()


# --- listen ---------------------------------------------------------------------------------------


class PacketTrack(MediaStreamTrack):
    """An audio track that yields pre-encoded Opus packets, shared with every other listener.

    Its queue is short (``max_packets``): a listener that falls behind loses the oldest packets
    instead of hearing an ever older channel.
    """

    kind = "audio"

    def __init__(self, on_stop: Callable[[PacketTrack], None], max_packets: int = 10) -> None:
        super().__init__()
        self._queue: deque[Packet] = deque(maxlen=max_packets)
        self._waiter: asyncio.Future[None] | None = None
        self._on_stop = on_stop
        self.dropped = 0

    def put(self, packet: Packet) -> None:
        """Queue one packet (called by the fan-out; never blocks)."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(packet)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def recv(self) -> Packet:
        """The next packet for this listener's RTP sender."""
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def stop(self) -> None:
        """End this track and leave the fan-out."""
        if self.readyState == "live":
            self._on_stop(self)
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_result(None)
        super().stop()


class OpusFanout:
    """One channel's Opus encoder: PCM in once, the same packets out to every listener's track.

    The channel hands over audio in ticks (a quarter of a second of frames at once); packets are
    released to the listeners at their real-time pace, so no listener's jitter buffer has to
    swallow bursts (and no short queue overflows).
    """

    def __init__(self, bitrate_bps: int = 48000) -> None:
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.sample_rate = OPUS_RATE_HZ
        self._codec.layout = "mono"
        self._codec.format = "s16"
        self._codec.bit_rate = bitrate_bps
        self._codec.time_base = OPUS_TIME_BASE
        self._codec.options = {"application": "audio", "frame_duration": "20"}
        self._resampler = av.AudioResampler(
            format="s16", layout="mono", rate=OPUS_RATE_HZ, frame_size=OPUS_FRAME_SAMPLES
        )
        self.tracks: set[PacketTrack] = set()
        self._samples = 0  # pts of the next frame, in samples
        self._clock_origin: float | None = None
        self._pending: deque[Packet] = deque()
        self._anchor: float | None = None  # monotonic time at which pts 0 is due
        self._timer: asyncio.TimerHandle | None = None
        self.packets = 0

    def add_listener(self, max_packets: int = 10) -> PacketTrack:
        """A new track for one more listener."""
        track = PacketTrack(self.tracks.discard, max_packets=max_packets)
        self.tracks.add(track)
        return track

    def push_pcm(self, frame: AudioFrame) -> None:
        """Encode a PCM frame of the channel (once) and hand the packets to every listener."""
        now = time.monotonic()
        if self._clock_origin is None:
            self._clock_origin = now
        # After a gap in the channel's audio, move the timestamps on with the wall clock so the
        # listeners' jitter buffers see the pause instead of squeezing it out.
        wall_samples = int((now - self._clock_origin) * OPUS_RATE_HZ)
        if wall_samples - self._samples > OPUS_RATE_HZ // 5:
            self._samples = wall_samples
        for chunk in self._resampler.resample(frame):
            chunk.pts = self._samples
            chunk.time_base = OPUS_TIME_BASE
            self._samples += chunk.samples
            for packet in self._codec.encode(chunk):
                packet.time_base = OPUS_TIME_BASE
                self.packets += 1
                self._pending.append(packet)
        self._release()

    def _release(self) -> None:
        """Send every packet that is due; come back when the next one is."""
        self._timer = None
        now = time.monotonic()
        while self._pending:
            packet = self._pending[0]
            pts_s = (packet.pts or 0) / OPUS_RATE_HZ
            if self._anchor is None or self._anchor + pts_s < now - MAX_LATE_S:
                self._anchor = now - pts_s  # first packet, or after a stall: due now
            elif self._anchor + pts_s > now + MAX_AHEAD_S:
                self._anchor = now + MAX_AHEAD_S - pts_s  # never hold audio back for long
            due = self._anchor + pts_s
            if due > now + 0.005:
                self._timer = asyncio.get_running_loop().call_later(due - now, self._release)
                return
            self._pending.popleft()
            for track in list(self.tracks):
                track.put(packet)

    def close(self) -> None:
        """End every listener's track."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._pending.clear()
        for track in list(self.tracks):
            track.stop()


class PcmTrack(MediaStreamTrack):
    """A listener's track of decoded PCM, which aiortc encodes for this listener alone.

    The baseline the shared encoder is measured against (``bench/live_latency.py --per-sender``);
    the server itself uses :class:`PacketTrack`.
    """

    kind = "audio"

    def __init__(self, on_stop: Callable[[PcmTrack], None], max_frames: int = 20) -> None:
        super().__init__()
        self._queue: asyncio.Queue[AudioFrame] = asyncio.Queue(max_frames)
        self._on_stop = on_stop
        self._samples = 0

    def put(self, frame: AudioFrame) -> None:
        """Queue a frame, dropping the oldest when full."""
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(frame)

    async def recv(self) -> AudioFrame:
        """The next frame for this listener's own encoder."""
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, frame.sample_rate)
        self._samples += frame.samples
        return frame

    def stop(self) -> None:
        """End this track."""
        if self.readyState == "live":
            self._on_stop(self)
        super().stop()


class ChannelListen:
    """A village channel for WebRTC listeners: its MP3 decoded once, encoded to Opus once.

    Feed it the channel's MP3 chunks (``feed_mp3``, e.g. as a hub tap); add a track per listener.
    """

    def __init__(self, village: str, bitrate_bps: int = 48000) -> None:
        self.village = village
        self._decoder = av.CodecContext.create("mp3", "r")
        self.fanout = OpusFanout(bitrate_bps)
        self.pcm_tracks: set[PcmTrack] = set()
        # aiortc's own encoder takes s16 only (the MP3 decoder gives float planes)
        self._s16 = av.AudioResampler(format="s16", layout="mono", rate=OPUS_RATE_HZ)

    @property
    def listeners(self) -> int:
        """WebRTC listeners of this channel now."""
        return len(self.fanout.tracks) + len(self.pcm_tracks)

    def add_pcm_listener(self) -> PcmTrack:
        """A listener with its own encoder (the per-sender baseline, for benchmarks)."""
        track = PcmTrack(self.pcm_tracks.discard)
        self.pcm_tracks.add(track)
        return track

    def feed_mp3(self, chunk: bytes) -> None:
        """Decode a chunk of the channel's MP3 and pass its PCM to the Opus fan-out."""
        try:
            for packet in self._decoder.parse(chunk):
                for frame in self._decoder.decode(packet):
                    if self.fanout.tracks:
                        self.fanout.push_pcm(frame)
                    if self.pcm_tracks:
                        for s16 in self._s16.resample(frame):
                            for track in list(self.pcm_tracks):
                                track.put(s16)
        except av.error.FFmpegError:
            log.warning("undecodable MP3 on channel %s; skipped", self.village)

    def close(self) -> None:
        """End every listener's track."""
        self.fanout.close()
        for track in list(self.pcm_tracks):
            track.stop()
