#!/usr/bin/env python3
"""Start latency: from a county-wide broadcast's start to the first audio byte at each of 263 boxes.

A villagecast server (``bench/fanout.py --serve``) registers 263 speaker boxes round-robin
over the villages; 263 raw HTTP clients on 127.0.0.1 pull ``/live/{village}.mp3?token=…``.
Between items a channel sends 32 kbps silent frames (header ``FF FB 14``); an item's frames
are 64 kbps (``FF FB 54``), so the first ``FF FB 54`` a box receives is the first byte of
the item. Each round offers one item to every village (as the broadcast dispatcher does) and
measures, per box, CLOCK_MONOTONIC from just before the first ``offer()`` to that byte.
Reports p50/p95/max over all rounds.

    .venv/bin/python bench/start_latency.py [--boxes 263] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fanout import Villagecast, make_mp3, raise_nofile

ITEM_SYNC = b"\xff\xfb\x54"  # MPEG-1 Layer III, 64 kbps, 48 kHz


class Box(asyncio.Protocol):
    """A plain speaker box: reads the stream and notes when the item's first frame arrives."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.header_done = False
        self.buf = b""
        self.armed = False
        self.first_item_at: float | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.header_done:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.header_done = True
            data, self.buf = self.buf[end + 4 :], b""
        if self.armed and self.first_item_at is None and ITEM_SYNC in data:
            self.first_item_at = now

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (linear interpolation)."""
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


async def run(boxes: int, rounds: int, item_s: int) -> int:
    """Connect the boxes, run the rounds, print the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="start-latency-"))
    item = make_mp3(tmp / "item.mp3", item_s)
    server = await asyncio.to_thread(Villagecast, None, boxes)
    loop = asyncio.get_running_loop()
    clients: list[Box] = []
    try:
        for village, token in server.devices:
            req = f"GET /live/{village}.mp3?token={token} HTTP/1.0\r\nHost: x\r\n\r\n".encode()
            box = Box(req)
            await loop.create_connection(lambda box=box: box, "127.0.0.1", server.port)
            clients.append(box)
        await asyncio.sleep(3.0)
        assert all(b.header_done for b in clients), "some boxes got no response"
        latencies: list[float] = []
        for r in range(rounds):
            for b in clients:
                b.armed, b.first_item_at = True, None
            answer = await asyncio.to_thread(server.command, f"offer-all {item}")
            t0, t1 = float(answer[1]), float(answer[2])
            for _ in range(100):  # up to 5 s
                if all(b.first_item_at is not None for b in clients):
                    break
                await asyncio.sleep(0.05)
            got = [b.first_item_at - t0 for b in clients if b.first_item_at is not None]
            missing = sum(1 for b in clients if b.first_item_at is None)
            latencies += got
            print(
                f"round {r + 1}: {len(got)} boxes, offer() of all villages took "
                f"{(t1 - t0) * 1000:.1f} ms; p50 {pct(got, 50) * 1000:.1f} ms "
                f"p95 {pct(got, 95) * 1000:.1f} ms max {max(got) * 1000:.1f} ms"
                + (f"; {missing} boxes heard nothing" if missing else ""),
                flush=True,
            )
            for b in clients:
                b.armed = False
            await asyncio.sleep(item_s + 2.0)  # the item ends; channels idle again
        lost = sum(b.lost for b in clients)
        print(
            f"\n{boxes} boxes x {rounds} rounds: start latency p50 "
            f"{pct(latencies, 50) * 1000:.1f} ms, p95 {pct(latencies, 95) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms; connections lost: {lost}"
        )
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boxes", type=int, default=263)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--item-s", type=int, default=3)
    args = parser.parse_args()
    raise_nofile()
    return asyncio.run(run(args.boxes, args.rounds, args.item_s))


if __name__ == "__main__":
    sys.exit(main())
