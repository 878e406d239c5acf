#!/usr/bin/env python3
"""Alert latency: from ``POST /api/v1/alerts`` to the first audio byte at a speaker (TTS included),
next to the same text sent as a normal TTS broadcast (``POST /api/v1/announcements`` + ``POST
/api/v1/broadcasts`` as soon as it is ready), side by side in one run on one ``villagecast serve``.

A speaker box of 동해면 장기리 pulls its stream; between items a channel sends 32 kbps silent frames
(``FF FB 14``), an item's frames are 64 kbps (``FF FB 54``), so the first ``FF FB 54`` is the first
byte of the chime. Rounds alternate the two paths; each waits for the channel to be idle again.

    .venv/bin/python bench/alerts.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CAP = ROOT / "tests" / "broadcast" / "alerts" / "cap" / "kma-typhoon-goseong.xml"
VILLAGE = "donghae-myeon-janggi-ri"
ITEM_SYNC = b"\xff\xfb\x54"
BIN = Path(sys.executable).with_name("villagecast")
SPEECH = (  # what the alert service speaks for the warning: headline, description, instruction
    "고성군 동해면·삼산면 태풍경보 발효\n"
    "03시 10분 경상남도 고성군 동해면과 삼산면에 태풍경보가 발효되었습니다. "
    "강한 바람과 높은 물결이 예상됩니다.\n"
    "해안가 저지대 주민은 마을회관으로 대피하시기 바랍니다."
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(data: Path, *args: str, stdin: str = "") -> str:
    env = os.environ | {"VILLAGECAST_DATA_DIR": str(data), "VILLAGECAST_LOG_FORMAT": "text"}
    out = subprocess.run([str(BIN), *args], input=stdin, capture_output=True, text=True,
                         env=env, check=True, timeout=120)  # fmt: skip
    return out.stdout


async def first_item_byte(url: str, armed: asyncio.Event, got: asyncio.Future[float]) -> None:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        async for chunk in resp.content.iter_any():
            if armed.is_set() and ITEM_SYNC in chunk and not got.done():
                got.set_result(time.monotonic())
                return


async def round_trip(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], url: str, kind: str, n: int
) -> float:
    armed, got = asyncio.Event(), asyncio.get_running_loop().create_future()
    listener = asyncio.create_task(first_item_byte(url, armed, got))
    await asyncio.sleep(1.0)  # connected, hearing silence
    text = CAP.read_bytes().replace(b"KMA-20260912-0310-TY-0042", f"KMA-BENCH-{n}".encode())
    text = re.sub(
        rb"<expires>[^<]*</expires>", b"<expires>2099-01-01T00:00:00+09:00</expires>", text
    )
    armed.set()
    t0 = time.monotonic()
    if kind == "alert":
        cap = headers | {"Content-Type": "application/cap+xml"}
        async with http.post(f"{base}/api/v1/alerts", data=text, headers=cap) as r:
            body = await r.json()
            assert body["state"] == "aired", body
            bid = body["broadcast_id"]
    else:
        speech = SPEECH
        async with http.post(f"{base}/api/v1/announcements", headers=headers,
                             json={"title": f"bench {n}", "text": speech}) as r:  # fmt: skip
            aid = (await r.json())["id"]
        while True:
            async with http.get(f"{base}/api/v1/announcements/{aid}", headers=headers) as r:
                if (await r.json())["status"] == "ready":
                    break
            await asyncio.sleep(0.02)
        async with http.post(f"{base}/api/v1/broadcasts", headers=headers, json={
            "announcement_id": aid, "targets": {"villages": [VILLAGE]}, "priority": "emergency"
        }) as r:  # fmt: skip
            bid = (await r.json())["id"]
    t1 = await asyncio.wait_for(got, 60)
    listener.cancel()
    while True:  # idle again before the next round
        async with http.get(f"{base}/api/v1/broadcasts/{bid}", headers=headers) as r:
            if (await r.json())["status"] not in ("scheduled", "playing"):
                break
        await asyncio.sleep(0.2)
    return (t1 - t0) * 1000


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def main(rounds: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="vc-alerts-"))
    port = free_port()
    try:
        cli(data, "regions", "import", str(ROOT / "devices" / "data" / "goseong-gun.json"))
        cli(data, "user", "add", "--username", "duty", "--role", "admin", "--region", "48820",
            "--password-stdin", stdin="bench password 1234\n")  # fmt: skip
        token = re.search(r"token\s*[:=]?\s*(\S+)", cli(data, "device", "add", "--kind", "speaker",
                          "--village", VILLAGE, "--name", "bench"))  # fmt: skip
        assert token, "device add printed no token"
        env = os.environ | {"VILLAGECAST_DATA_DIR": str(data), "VILLAGECAST_LOG_LEVEL": "WARNING",
                            "VILLAGECAST_QUIET_HOURS": "off"}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(str(BIN), "serve", "--port", str(port), env=env)
        try:
            await bench(port, token.group(1), rounds)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def bench(port: int, speaker_token: str, rounds: int) -> None:
    """Log in, make an API token, then run the rounds and print the table."""
    base = f"http://127.0.0.1:{port}"
    login = {"username": "duty", "password": "bench password 1234"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as r:
                    if r.status == 200:
                        break
            await asyncio.sleep(0.1)
        async with http.post(f"{base}/api/v1/session", json=login) as r:
            assert r.status == 200, await r.text()
        async with http.get(f"{base}/api/v1/session") as r:
            csrf = (await r.json())["csrf_token"]
        tokens = f"{base}/api/v1/tokens"
        async with http.post(tokens, json={"name": "bench"}, headers={"X-CSRF-Token": csrf}) as r:
            api = (await r.json())["token"]
    headers = {"Authorization": f"Bearer {api}"}
    url = f"{base}/live/{VILLAGE}.mp3?token={speaker_token}"
    results: dict[str, list[float]] = {"alert": [], "tts broadcast": []}
    async with aiohttp.ClientSession() as http:
        for n in range(rounds):
            for kind in ("alert", "tts broadcast"):
                results[kind].append(await round_trip(http, base, headers, url, kind, n))
    print(f"{'path':<16} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  (rounds: {rounds})")
    for kind, values in results.items():
        p50, p95 = statistics.median(values), pct(values, 95)
        print(f"{kind:<16} {p50:8.0f} {p95:8.0f} {max(values):8.0f}")
    print(json.dumps({k: [round(v) for v in vs] for k, vs in results.items()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    asyncio.run(main(parser.parse_args().rounds))
