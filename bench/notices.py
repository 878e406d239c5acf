#!/usr/bin/env python3
"""Notices to 263 village heads: event delivery to 263 open sockets, and the receipts page.

Prepares a data directory with a county of 14 districts and 263 villages (the administrative
villages of Goseong), one village-head account per village (each with an API token) and a county
admin, then runs the real ``villagecast serve`` on 127.0.0.1 as a subprocess. 263 WebSocket
clients (one per village head) hold ``/api/v1/events`` open. Each round, the admin sends one
notice to the whole county (``POST /api/v1/notices``); per socket, the time from just before the
POST to the socket's ``notice.created`` event. Then half the heads open the notice and a third
confirm it, and ``GET /api/v1/notices/{id}/receipts`` (263 recipients) is timed many times.

    .venv/bin/python bench/notices.py [--heads 263] [--rounds 5] [--receipts 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from start_latency import pct  # noqa: E402

from devices import store  # noqa: E402
from devices.models import Account  # noqa: E402
from devices.tokens import hash_password  # noqa: E402
from web.db import make_engine, make_sessionmaker, migrate  # noqa: E402


def county(villages: int, districts: int = 14) -> dict[str, Any]:
    """A county tree with this many villages spread over the districts."""
    out: dict[str, Any] = {
        "county": {"code": "48820", "name_ko": "고성군", "name_en": "Goseong-gun"},
        "districts": [],
    }
    for d in range(districts):
        out["districts"].append(
            {"code": f"d{d:02d}", "name_ko": f"읍면{d}", "name_en": f"District {d}", "villages": []}
        )
    for v in range(villages):
        out["districts"][v % districts]["villages"].append(
            {"code": f"d{v % districts:02d}-v{v:03d}", "name_ko": f"마을{v}", "name_en": f"V{v}"}
        )
    return out


async def prepare(data_dir: Path, heads: int) -> tuple[str, list[str]]:
    """The database: the tree, the admin and the heads; their API tokens."""
    await asyncio.to_thread(data_dir.mkdir, parents=True)
    engine = make_engine(f"sqlite+aiosqlite:///{data_dir / 'villagecast.db'}")
    await migrate(engine)
    password_hash = hash_password("bench password only")
    tokens: list[str] = []
    async with make_sessionmaker(engine)() as session:
        tree = county(heads)
        await store.import_regions(session, tree)
        admin = await store.create_account(session, "admin", "bench password", "admin", "48820")
        admin_token = (await store.create_api_token(session, admin, "bench")).token
        for d in tree["districts"]:
            for v in d["villages"]:
                account = Account(
                    username=f"head-{v['code']}", password_hash=password_hash, role="village",
                    region_code=v["code"],
                )  # fmt: skip
                session.add(account)
                await session.flush()
                tokens.append((await store.create_api_token(session, account, "bench")).token)
        await session.commit()
    await engine.dispose()
    return admin_token, tokens


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """``villagecast serve`` on 127.0.0.1:port."""
    exe = Path(sys.executable).with_name("villagecast")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "web.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VILLAGECAST_")}
    env.update(VILLAGECAST_LOG_LEVEL="WARNING", VILLAGECAST_LOG_FORMAT="text")
    log = (data_dir / "server.log").open("wb")
    return subprocess.Popen(
        [*cmd, "serve", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
    )  # fmt: skip


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError("the server exited")
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the server did not start")


async def first_notice(ws: aiohttp.ClientWebSocketResponse, started: float) -> float:
    """Seconds from ``started`` until this socket receives a ``notice.created`` event."""
    while True:
        event = await ws.receive_json(timeout=60)
        if event.get("type") == "notice.created":
            return time.perf_counter() - started


async def run(heads: int, rounds: int, receipts: int, port: int) -> int:
    """Prepare, serve, measure, print the figures."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-notices-"))
    data_dir = tmp / "data"
    t0 = time.perf_counter()
    admin_token, tokens = await prepare(data_dir, heads)
    print(f"prepared {heads} village heads in {time.perf_counter() - t0:.1f} s", flush=True)
    proc = start_server(data_dir, port)
    url = f"http://127.0.0.1:{port}"
    admin = {"Authorization": f"Bearer {admin_token}"}
    try:
        await wait_healthy(url, proc)
        conn = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=conn) as http:
            sockets = await asyncio.gather(
                *(
                    http.ws_connect(
                        f"{url}/api/v1/events", headers={"Authorization": f"Bearer {t}"}
                    )
                    for t in tokens
                )
            )
            for ws in sockets:
                assert (await ws.receive_json(timeout=30))["type"] == "hello"
            print(f"{len(sockets)} event sockets open", flush=True)
            latencies: list[float] = []
            send_ms: list[float] = []
            spread: list[float] = []  # from the POST's answer to the last socket's event
            notice_id = 0
            for r in range(rounds):
                started = time.perf_counter()

                waiters = [asyncio.create_task(first_notice(ws, started)) for ws in sockets]
                async with http.post(
                    f"{url}/api/v1/notices", headers=admin,
                    json={"title": f"태풍 대비 마을 점검 요청 {r}", "body": "배수로를 점검해요.",
                          "targets": {"county": True}, "requires_ack": True,
                          "broadcast_text": "배수로를 점검합시다."},
                ) as resp:  # fmt: skip
                    body = await resp.json()
                    assert resp.status == 201, body
                    assert body["recipients"] == heads, body
                    notice_id = body["id"]
                send_ms.append((time.perf_counter() - started) * 1000)
                got = await asyncio.gather(*waiters)
                latencies.extend(x * 1000 for x in got)
                spread.append(max(got) * 1000 - send_ms[-1])
                print(f"round {r + 1}: POST {send_ms[-1]:.0f} ms, all {len(got)} sockets by "
                      f"{max(got) * 1000:.0f} ms", flush=True)  # fmt: skip
            for ws in sockets:
                await ws.close()
            # Half the heads open the last notice, a third confirm it, a few reply.
            for i, token in enumerate(tokens):
                h = {"Authorization": f"Bearer {token}"}
                if i % 2 == 0:
                    async with http.get(f"{url}/api/v1/notices/{notice_id}", headers=h) as resp:
                        assert resp.status == 200
                if i % 3 == 0:
                    async with http.post(
                        f"{url}/api/v1/notices/{notice_id}/ack", headers=h
                    ) as resp:
                        assert resp.status == 200
                if i % 10 == 0:
                    async with http.post(f"{url}/api/v1/notices/{notice_id}/replies", headers=h,
                                         json={"body": "배수로 정비 완료"}) as resp:  # fmt: skip
                        assert resp.status == 201
            times: list[float] = []
            size = 0
            for _ in range(receipts):
                t = time.perf_counter()
                async with http.get(
                    f"{url}/api/v1/notices/{notice_id}/receipts", headers=admin
                ) as resp:
                    data = await resp.read()
                    assert resp.status == 200
                times.append((time.perf_counter() - t) * 1000)
                size = len(data)
            rec = json.loads(data)
            assert rec["totals"]["recipients"] == heads
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"notice to {heads} village heads, {rounds} rounds, {len(latencies)} deliveries:")
    p50, p95, top = pct(latencies, 50), pct(latencies, 95), max(latencies)
    print(f"  event at every socket: p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {top:.0f} ms")
    print(
        f"  POST /api/v1/notices answered: p50 {pct(send_ms, 50):.0f} ms, max {max(send_ms):.0f} ms"
    )
    print(f"  answer to the last socket: p50 {pct(spread, 50):.0f} ms, max {max(spread):.0f} ms")
    print(f"receipts page ({heads} recipients, {size} bytes), {receipts} requests:")
    print(f"  p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms, max {max(times):.1f} ms"
          f" (target < 200 ms)")  # fmt: skip
    print(f"load average during the run: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
    return 0 if pct(times, 95) < 200 else 1


def main() -> int:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", type=int, default=263)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--receipts", type=int, default=50)
    parser.add_argument("--port", type=int, default=18931)
    args = parser.parse_args()
    return asyncio.run(run(args.heads, args.rounds, args.receipts, args.port))


if __name__ == "__main__":
    raise SystemExit(main())
