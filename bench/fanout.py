#!/usr/bin/env python3
"""Fan-out benchmark: a villagecast channel and Icecast 2.4 side by side, same MP3, same machine.

For each listener count (default 100, 1,000, 5,000) it runs the shared load generator
``../shared/bench/listeners.py`` (called where it lies, never copied) against

* villagecast: a server process (this file with ``--serve``) whose village channel plays the
  bench MP3 back to back as items; every listener uses one listener token (a token may hold
  several connections), ``GET /live/{village}.mp3?token=…``;
* Icecast 2.4 (Debian ``icecast2``): started here with its own temporary config on a free loopback
  port, fed the same file by ``ffmpeg -re -stream_loop -1 … -f mp3 icecast://source:…``.

It prints one table (listeners held, delivered kbps p5/median, TTFB, server CPU and RSS, CPU per
listener) and writes every raw report as JSON (``--json``). Loopback only; every process it starts
is stopped by its PID at the end.

    .venv/bin/python bench/fanout.py [--counts 100,1000,5000] [--window 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LISTENERS = ROOT.parent / "shared" / "bench" / "listeners.py"
VILLAGE = "goseong-eup-seongnae-ri"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    """Wait until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def make_mp3(path: Path, seconds: int = 60) -> Path:
    """A channel-format MP3 (64 kbps CBR mono 48 kHz) of a tone with a little noise."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"sine=frequency=440:duration={seconds}", "-f", "lavfi", "-i",
         f"anoisesrc=a=0.05:d={seconds}", "-filter_complex", "amix=inputs=2",
         "-ac", "1", "-ar", "48000", "-c:a", "libmp3lame", "-b:a", "64k", str(path)],
        check=True,
    )  # fmt: skip
    return path


def raise_nofile() -> None:
    """Let this process and its children open as many sockets as allowed."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --------------------------------------------------------------------------- villagecast server


async def serve(port: int, data_dir: Path, mp3: Path | None, device_count: int) -> None:
    """The villagecast side: a real app whose channel loops the bench MP3 (``--serve``).

    ``device_count`` speaker boxes are registered round-robin over the other villages.

    Prints ``ready <listener token>`` then, per line, the device tokens as ``device <village>
    <token>``. Reads commands on stdin: ``offer-all <mp3>`` offers one item to every village
    and prints ``offered <t_start> <t_end>`` (CLOCK_MONOTONIC).
    """
    sys.path.insert(0, str(ROOT))
    from aiohttp import web

    from devices import store
    from devices.models import Region
    from streaming.hub import HubPort
    from streaming.items import ItemReport, PlayItem
    from web.app import create_app
    from web.keys import SESSIONMAKER
    from web.settings import Settings
    from web.streams import HUB

    settings = Settings(data_dir=data_dir, log_format="text", log_level="WARNING", port=port)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
    async with app[SESSIONMAKER]() as session:
        await store.import_regions_file(session, store.DEMO_REGIONS)
        _, token = await store.create_listener(session, VILLAGE, "bench", True)
        from sqlalchemy import select

        villages = list(await session.scalars(select(Region.code).where(Region.kind == "village")))
        devices: list[tuple[str, str]] = []
        others = [v for v in villages if v != VILLAGE]
        for n in range(device_count):
            village = others[n % len(others)]
            issued = await store.create_device(session, village, f"bench-{n}")
            devices.append((village, issued.token))
        await session.commit()
    hub = app[HUB]
    counter = iter(range(1, 1_000_000))

    def loop_item(report: ItemReport | None = None) -> None:
        # one item always waits in the queue, so the channel plays the file back to back
        if report is None or (report.village == VILLAGE and report.event == "started"):
            assert mp3 is not None
            hub.offer(PlayItem(f"loop-{next(counter)}", VILLAGE, "bench loop", (mp3,)))

    if mp3 is not None:
        hub.add_report_listener(loop_item)
        loop_item()
    if os.environ.get("VC_BENCH_LAG"):
        _BACKGROUND.add(asyncio.ensure_future(_watch_lag(hub)))
    print("ready", token, flush=True)
    for village, dev_token in devices:
        print("device", village, dev_token, flush=True)
    print("end-devices", flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().strip():
        cmd, _, arg = line.partition(" ")
        if cmd == "offer-all":  # through the port, as the on-air service's dispatcher offers
            port = HubPort(hub)
            t0 = time.monotonic()
            for village in villages:
                if village != VILLAGE:
                    item = PlayItem(f"s-{next(counter)}", village, "start", (Path(arg),))
                    await port.offer(item)
            print("offered", t0, time.monotonic(), flush=True)
    await runner.cleanup()


_BACKGROUND: set[asyncio.Future[None]] = set()


async def _watch_lag(hub: Any) -> None:
    """Diagnostics (VC_BENCH_LAG=1): event loop lag and time spent in the pacing ticks."""
    tick = hub.tick
    spent = [0.0, 0.0]

    def timed_tick() -> None:
        t = time.perf_counter()
        tick()
        d = time.perf_counter() - t
        spent[0] += d
        spent[1] = max(spent[1], d)

    hub.tick = timed_tick
    worst, t_report = 0.0, time.monotonic()
    cpu0 = time.process_time()
    while True:
        t = time.monotonic()
        await asyncio.sleep(0.05)
        worst = max(worst, time.monotonic() - t - 0.05)
        if time.monotonic() - t_report >= 5:
            dt = time.monotonic() - t_report
            print(
                f"lag max {worst * 1000:.0f} ms; ticks {spent[0] / dt * 100:.1f} % "
                f"(max {spent[1] * 1000:.0f} ms); process CPU "
                f"{(time.process_time() - cpu0) / dt * 100:.1f} %; listeners "
                f"{sum(hub.listener_counts().values())}",
                file=sys.stderr,
                flush=True,
            )
            worst, spent[0], spent[1], t_report = 0.0, 0.0, 0.0, time.monotonic()
            cpu0 = time.process_time()


class Villagecast:
    """A villagecast server process for the benches."""

    def __init__(self, mp3: Path | None, device_count: int = 0) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="vc-bench-"))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.port), str(self.tmp), str(mp3 or "-"),
             str(device_count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        if not first or first[0] != "ready":
            raise RuntimeError("villagecast did not start")
        self.token = first[1]
        self.devices: list[tuple[str, str]] = []
        while (line := self.proc.stdout.readline().split()) and line[0] == "device":
            self.devices.append((line[1], line[2]))
        wait_port(self.port)

    @property
    def url(self) -> str:
        """The bench stream URL."""
        return f"http://127.0.0.1:{self.port}/live/{VILLAGE}.mp3?token={self.token}"

    def command(self, line: str) -> list[str]:
        """Send a command line; its one-line answer, split."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()

    def stop(self) -> None:
        """Stop the server (by its PID) and remove its data."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- Icecast


ICECAST_XML = """<icecast>
  <location>bench</location><admin>bench@localhost</admin>
  <limits>
    <clients>20000</clients><sources>2</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout><burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>benchsource</source-password><relay-password>x</relay-password>
    <admin-user>admin</admin-user><admin-password>benchadmin</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>/usr/share/icecast2</basedir><logdir>{logdir}</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot>
    <pidfile>{logdir}/icecast.pid</pidfile>
  </paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel>
  </logging>
  <security><chroot>0</chroot>{changeowner}</security>
</icecast>
"""


class Icecast:
    """Icecast 2.4 on a free loopback port, fed the bench MP3 by ffmpeg."""

    def __init__(self, mp3: Path) -> None:
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="icecast-bench-"))
        os.chmod(self.tmp, 0o777)
        owner = (
            "<changeowner><user>nobody</user><group>nogroup</group></changeowner>"
            if os.geteuid() == 0
            else ""
        )
        conf = self.tmp / "icecast.xml"
        conf.write_text(ICECAST_XML.format(port=self.port, logdir=self.tmp, changeowner=owner))
        self.proc = subprocess.Popen(
            ["icecast2", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)
        self.source = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-re", "-stream_loop", "-1", "-i", str(mp3),
             "-c", "copy", "-content_type", "audio/mpeg", "-f", "mp3",
             f"icecast://source:benchsource@127.0.0.1:{self.port}/bench.mp3"],
        )  # fmt: skip
        time.sleep(2.0)  # the mount exists once the source connected

    @property
    def url(self) -> str:
        """The bench stream URL."""
        return f"http://127.0.0.1:{self.port}/bench.mp3"

    def stop(self) -> None:
        """Stop the source and Icecast (by their PIDs)."""
        for proc in (self.source, self.proc):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- runs


def run_listeners(url: str, pid: int, n: int, window: float, label: str) -> dict[str, Any]:
    """One run of the shared load generator; its JSON report."""
    out = Path(tempfile.mkstemp(prefix="listeners-", suffix=".json")[1])
    procs = 2 if n >= 2000 else 1
    subprocess.run(
        [sys.executable, str(LISTENERS), url, "-n", str(n), "-d", str(window),
         "--nominal-kbps", "64", "--server-pid", str(pid), "--procs", str(procs),
         "--label", label, "--json", str(out)],
        check=True,
    )  # fmt: skip
    report: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return report


def row(name: str, n: int, rep: dict[str, Any]) -> str:
    """One markdown table row of a report."""
    srv = next(iter(rep["server"].values()))
    cpu = srv["cpu_pct_window"] or 0.0
    held = rep["accepted"] - rep["dropped"]
    kbps = rep["kbps"]

    def f(v: float | None, spec: str = ".1f") -> str:
        return "-" if v is None else format(v, spec)

    return (
        f"| {name} | {n} | {held} ({rep['accepted_before_window']}) "
        f"| {f(kbps['p5'])} | {f(kbps['median'])} "
        f"| {f(rep['ttfb_ms']['median'])} / {f(rep['ttfb_ms']['p95'])} | {f(cpu)} "
        f"| {f(cpu / n * 1000, '.2f')} | {f((srv['rss_kb_max'] or 0) / 1024)} |"
    )


HEADER = (
    "| server | listeners | held (before window) | kbps p5 | kbps median "
    "| TTFB ms median / p95 | CPU % "
    "| CPU % per 1,000 | RSS max MiB |\n|---|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    """Run both servers at every count and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="100,1000,5000")
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--servers", default="villagecast,icecast", help="which servers to run")
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, data_dir, mp3, count = args.serve
        asyncio.run(serve(int(port), Path(data_dir), None if mp3 == "-" else Path(mp3), int(count)))
        return 0
    raise_nofile()
    tmp = Path(tempfile.mkdtemp(prefix="fanout-bench-"))
    mp3 = make_mp3(tmp / "bench.mp3")
    results: list[tuple[str, int, dict[str, Any]]] = []
    try:
        for n in (int(c) for c in args.counts.split(",")):
            for name, cls in (("villagecast", Villagecast), ("icecast 2.4", Icecast)):
                if name.split()[0] not in args.servers:
                    continue
                server = cls(mp3)
                try:
                    rep = run_listeners(server.url, server.proc.pid, n, args.window, name)
                finally:
                    server.stop()
                results.append((name, n, rep))
                time.sleep(2.0)  # let TIME_WAIT sockets and CPU settle
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(HEADER)
    for name, n, rep in results:
        print(row(name, n, rep))
    if args.json:
        args.json.write_text(
            json.dumps([{"server": s, "n": n, "report": r} for s, n, r in results])
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
