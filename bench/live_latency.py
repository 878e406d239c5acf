"""Mouth-to-ear delay of a live session, measured with timed tone bursts.

    .venv/bin/python bench/live_latency.py [--bursts 20] [--interval 1.0]
    .venv/bin/python bench/live_latency.py --listeners 1,10,30  # server CPU per WebRTC listener,
                                                                 # shared encoder vs one per sender

A real server (in process, on a loopback port, its own temporary data directory) and three peers:

- a WebRTC **publisher** (aiortc) whose microphone is a generator: silence with a 1 kHz burst of
  200 ms every ``--interval`` seconds; the "mouth" time of a burst is when its first frame is handed
  to the publisher's encoder;
- a WebRTC **listener** (aiortc, listener token) on the targeted village: the "ear" time is when
  the decoded frame holding the burst's onset comes out of its receiver;
- an HTTP **speaker box** reading ``/live/{village}.mp3`` with a speaker token, decoding as bytes
  arrive. Two figures: *arrival* (when the decoded onset arrives) and *playout* — a plain player
  that starts playing at the first byte and plays at real-time rate (re-anchoring after an
  underrun), i.e. arrival plus the stream's start-up burst that such a player keeps as its buffer.

Targets (DESIGN.md): publisher → WebRTC listener < 400 ms; publisher → HTTP speaker < 1.5 s.
Prints a table and a JSON line. Everything runs over 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import itertools
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from av.audio.frame import AudioFrame

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices import store
from streaming.webrtc import ice_configuration
from web.app import create_app
from web.keys import ONAIR, SESSIONMAKER
from web.settings import Settings

VILLAGE = "goseong-eup-seongnae-ri"
RATE = 48000
FRAME = 960  # 20 ms
BURST_S = 0.2
THRESHOLD_DBFS = -35.0
READERS: set[asyncio.Future[None]] = set()  # receiving tasks, kept referenced until the end


class BurstTrack(MediaStreamTrack):
    """A mic that says "beep" (1 kHz, -12 dBFS, 200 ms) every ``interval_s``, in real time."""

    kind = "audio"

    def __init__(self, interval_s: float, bursts: int, lead_s: float = 2.0) -> None:
        super().__init__()
        self.interval = int(interval_s * RATE) // FRAME * FRAME
        self.lead = int(lead_s * RATE) // FRAME * FRAME
        self.total = self.lead + bursts * self.interval
        self.samples = 0
        self.start: float | None = None
        self.onsets: list[float] = []  # monotonic time each burst went to the encoder

    async def recv(self) -> AudioFrame:
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.samples / RATE
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        n = self.samples
        pos = (n - self.lead) % self.interval if n >= self.lead else -1
        beep = n >= self.lead and n < self.total and pos < BURST_S * RATE
        if beep:
            t = (np.arange(FRAME) + pos) / RATE
            data = (0.25 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
            if pos == 0:
                self.onsets.append(time.monotonic())
        else:
            data = np.zeros(FRAME, dtype="<i2")
        frame = AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = n
        frame.time_base = fractions.Fraction(1, RATE)
        self.samples += FRAME
        return frame


class OnsetDetector:
    """Finds burst onsets in a stream of PCM blocks, each stamped with a time."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.window = rate // 100  # 10 ms
        self.pending = np.zeros(0, dtype=np.float32)
        self.pending_t0 = 0.0
        self.quiet_windows = 0
        self.onsets: list[float] = []

    def feed(self, samples: np.ndarray, t_first: float) -> None:
        """``samples`` (mono float) whose first sample is heard at ``t_first``."""
        if self.pending.size == 0:
            self.pending_t0 = t_first
        self.pending = np.concatenate([self.pending, samples])
        while self.pending.size >= self.window:
            block, self.pending = self.pending[: self.window], self.pending[self.window :]
            level = 10 * np.log10(np.mean(np.square(block, dtype=np.float64)) + 1e-20)
            t = self.pending_t0
            self.pending_t0 += self.window / self.rate
            if level > THRESHOLD_DBFS:
                if self.quiet_windows >= 30:
                    self.onsets.append(t)
                self.quiet_windows = 0
            else:
                self.quiet_windows += 1


def mono(frame: AudioFrame) -> np.ndarray:
    """A decoded frame as mono float samples."""
    a = frame.to_ndarray()
    if a.dtype != np.float32:
        a = a.astype(np.float32) / 32768
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        return a.mean(axis=0) if a.shape[0] > 1 else a[0]
    return a.reshape(-1, channels).mean(axis=1)


async def webrtc_listener(
    http: aiohttp.ClientSession, base: str, token: str, detector: OnsetDetector
) -> RTCPeerConnection:
    """Listen over WebRTC; feed decoded frames (stamped on arrival) to the detector."""
    pc = RTCPeerConnection(ice_configuration([]))
    pc.addTransceiver("audio", direction="recvonly")

    @pc.on("track")
    def on_track(track: Any) -> None:
        async def read() -> None:
            with contextlib.suppress(Exception):
                while True:
                    frame = await track.recv()
                    now = time.monotonic()
                    samples = mono(frame)
                    detector.feed(samples, now - samples.size / detector.rate)

        READERS.add(asyncio.ensure_future(read()))

    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(
        f"{base}/api/v1/live/listen/{VILLAGE}",
        json={"sdp": pc.localDescription.sdp, "type": "offer"},
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        body = await resp.json()
        if resp.status != 200:
            raise RuntimeError(body)
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
    return pc


async def http_speaker(
    http: aiohttp.ClientSession,
    url: str,
    arrival: OnsetDetector,
    playout: OnsetDetector,
    stop: asyncio.Event,
) -> None:
    """A plain speaker box: read the MP3 stream, decode as it arrives, model a simple player."""
    decoder = av.CodecContext.create("mp3", "r")
    played = 0  # samples handed to the modelled player
    anchor: float | None = None  # when sample 0 plays
    async with http.get(url) as resp:
        while not stop.is_set():
            chunk = await resp.content.readany()
            if not chunk:
                break
            now = time.monotonic()
            for packet in decoder.parse(chunk):
                for frame in decoder.decode(packet):
                    samples = mono(frame)
                    arrival.feed(samples, now)
                    if anchor is None or anchor + played / RATE < now:
                        anchor = now - played / RATE  # (re)start playing at arrival
                    playout.feed(samples, anchor + played / RATE)
                    played += samples.size


def delays_ms(sent: list[float], heard: list[float]) -> list[float]:
    """Match each sent onset with the first heard onset after it (within one interval)."""
    out = []
    for s in sent:
        later = [h - s for h in heard if 0 <= h - s < 3.0]
        if later:
            out.append(min(later) * 1000)
    return out


def summary(values: list[float]) -> dict[str, float]:
    """p50/p95/max of a list of delays in ms."""
    if not values:
        return {"n": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "max_ms": float("nan")}
    arr = np.array(values)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p95_ms": round(float(np.percentile(arr, 95)), 1),
        "max_ms": round(float(arr.max()), 1),
    }


async def run(bursts: int, interval_s: float) -> dict[str, Any]:
    """Start a server, publish bursts, listen on both paths; the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", log_format="text", quiet_hours="off")
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        try:
            async with app[SESSIONMAKER]() as session:
                await store.import_regions_file(session, store.DEMO_REGIONS)
                admin = await store.create_account(
                    session, "bench", "bench pw 123", "admin", "48820"
                )
                api = await store.create_api_token(session, admin, "bench")
                box = await store.create_device(session, VILLAGE, "bench box")
                _, listener_token = await store.create_listener(session, VILLAGE, "bench", True)
                await session.commit()
            stop = asyncio.Event()
            rtc, arrival, playout = OnsetDetector(RATE), OnsetDetector(RATE), OnsetDetector(RATE)
            async with aiohttp.ClientSession() as http:
                speaker = asyncio.create_task(
                    http_speaker(
                        http, f"{base}/live/{VILLAGE}.mp3?token={box.token}", arrival, playout, stop
                    )
                )
                listener = await webrtc_listener(http, base, listener_token, rtc)
                await asyncio.sleep(1.5)
                track = BurstTrack(interval_s, bursts)
                publisher = RTCPeerConnection(ice_configuration([]))
                publisher.addTrack(track)
                await publisher.setLocalDescription(await publisher.createOffer())
                async with http.post(
                    f"{base}/api/v1/live/publish",
                    json={
                        "sdp": publisher.localDescription.sdp,
                        "type": "offer",
                        "targets": {"villages": [VILLAGE]},
                        "title": "latency bench",
                    },
                    headers={"Authorization": f"Bearer {api.token}"},
                ) as resp:
                    body = await resp.json()
                    if resp.status != 201:
                        raise RuntimeError(body)
                await publisher.setRemoteDescription(
                    RTCSessionDescription(body["sdp"], body["type"])
                )
                await asyncio.sleep(2.0 + bursts * interval_s + 2.0)
                await publisher.close()
                stop.set()
                await listener.close()
                speaker.cancel()
                with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                    await speaker
        finally:
            await runner.cleanup()
    return {
        "bursts_sent": len(track.onsets),
        "webrtc_listener": summary(delays_ms(track.onsets, rtc.onsets)),
        "http_speaker_arrival": summary(delays_ms(track.onsets, arrival.onsets)),
        "http_speaker_playout": summary(delays_ms(track.onsets, playout.onsets)),
    }


# --- WebRTC listeners per core (shared Opus encoder) ----------------------------------------------


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_child(conn: Any, listeners: int, shared: bool) -> None:
    asyncio.run(_child_main(conn, listeners, shared))


async def _child_main(conn: Any, listeners: int, shared: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data", log_format="text", log_level="WARNING",
            quiet_hours="off", webrtc_listeners_per_channel=10_000,
        )  # fmt: skip
        app = create_app(settings)
        app[ONAIR].live.shared_encoder = shared
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        async with app[SESSIONMAKER]() as session:
            await store.import_regions_file(session, store.DEMO_REGIONS)
            admin = await store.create_account(session, "bench", "bench pw 123", "admin", "48820")
            api = await store.create_api_token(session, admin, "bench")
            tokens = [
                (await store.create_listener(session, VILLAGE, f"l{i}", True))[1]
                for i in range(listeners)
            ]
            await session.commit()
        conn.send({"base": f"http://127.0.0.1:{port}", "api": api.token, "listeners": tokens})
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await runner.cleanup()


async def scale(counts: list[int], window_s: float, shared: bool = True) -> dict[str, Any]:
    """Server CPU with a publisher and N WebRTC listeners of one channel, for each N."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve_child, args=(child, max(counts), shared))
    proc.start()
    info = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    assert proc.pid is not None
    base, tokens = info["base"], info["listeners"]
    peers: list[RTCPeerConnection] = []
    rows = []
    publisher = RTCPeerConnection(ice_configuration([]))
    try:
        async with aiohttp.ClientSession() as http:
            publisher.addTrack(BurstTrack(0.5, 100_000, lead_s=0.0))
            await publisher.setLocalDescription(await publisher.createOffer())
            async with http.post(
                f"{base}/api/v1/live/publish",
                json={"sdp": publisher.localDescription.sdp, "type": "offer",
                      "targets": {"villages": [VILLAGE]}, "title": "scale bench"},
                headers={"Authorization": f"Bearer {info['api']}"},
            ) as resp:  # fmt: skip
                body = await resp.json()
            await publisher.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
            for n in sorted(set([0, *counts])):
                while len(peers) < n:
                    detector = OnsetDetector(RATE)
                    peers.append(await webrtc_listener(http, base, tokens[len(peers)], detector))
                await asyncio.sleep(3.0)  # settle
                before, t0 = _cpu_s(proc.pid), time.monotonic()
                await asyncio.sleep(window_s)
                used = (_cpu_s(proc.pid) - before) / (time.monotonic() - t0)
                rows.append({"listeners": n, "server_cpu_cores": round(used, 3)})
    finally:
        for pc in peers:
            await pc.close()
        await publisher.close()
        parent.send("stop")
        proc.join(30)
    # Marginal cost between consecutive counts: the channel's one decode + Opus encode is paid
    # once, by the first listener; every further listener costs only RTP packetizing and SRTP.
    for prev, row in itertools.pairwise(rows):
        per = (row["server_cpu_cores"] - prev["server_cpu_cores"]) / (
            row["listeners"] - prev["listeners"]
        )
        row["cpu_per_listener"] = round(per, 5)
        row["listeners_per_core"] = round(1 / per) if per > 0 else None
    result: dict[str, Any] = {"encoder": "shared" if shared else "per-sender", "rows": rows}
    first = next((r for r in rows if r["listeners"] >= 1), None)
    last = rows[-1]
    if first is not None and last["listeners"] > first["listeners"]:
        # the steadiest figure: from the first listener (channel encoder running) to the most
        per = (last["server_cpu_cores"] - first["server_cpu_cores"]) / (
            last["listeners"] - first["listeners"]
        )
        result["cpu_per_listener_after_first"] = round(per, 5)
        result["listeners_per_core_after_first"] = round(1 / per) if per > 0 else None
    return result


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument(
        "--listeners", default="", help="e.g. 10,30: measure server CPU per WebRTC listener instead"
    )
    parser.add_argument("--window", type=float, default=10.0, help="CPU sampling window (s)")
    args = parser.parse_args()
    if args.listeners:
        counts = [int(n) for n in args.listeners.split(",")]
        for shared in (True, False):  # side by side: one encoder per channel vs one per sender
            scaled = asyncio.run(scale(counts, args.window, shared))
            print(f"encoder: {scaled['encoder']}")
            print(f"{'listeners':>10}{'server cores':>14}{'cpu/listener':>14}{'per core':>10}")
            for row in scaled["rows"]:
                print(
                    f"{row['listeners']:>10}{row['server_cpu_cores']:>14}"
                    f"{row.get('cpu_per_listener', ''):>14}"
                    f"{row.get('listeners_per_core') or '':>10}"
                )
            print(
                f"after the first listener: {scaled.get('cpu_per_listener_after_first')} cores"
                f" per listener, {scaled.get('listeners_per_core_after_first')} per core"
            )
            print(json.dumps(scaled))
        return
    result = asyncio.run(run(args.bursts, args.interval))
    print(f"bursts sent: {result['bursts_sent']}")
    print(f"{'path':<24}{'n':>4}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for key in ("webrtc_listener", "http_speaker_arrival", "http_speaker_playout"):
        r = result[key]
        print(f"{key:<24}{r['n']:>4}{r['p50_ms']:>10}{r['p95_ms']:>10}{r['max_ms']:>10}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
