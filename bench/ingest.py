"""Ingest benchmark: upload-to-ready through the real API vs the bare ffmpeg commands, side by side.

    .venv/bin/python bench/ingest.py [--repeat 3] [--format m4a]

For a 60 s and a 10-minute clip of Korean speech (espeak-ng, looped), it times

* villagecast: POST /api/v1/announcements on a real server (in this process, real sockets) until
  the announcement is ``ready`` — probe, decode, loudness measurement, trim, gain/limiter, both
  renditions, output measurement, tags, sha256, archive, database;
* reference: the bare ffmpeg commands that do the same transcode — one EBU R128 measurement pass,
  then one command that encodes both renditions with the gain and limiter applied, with the
  same encoder settings (lame -q 5, libopus constrained VBR, compression level 5);

and reports the medians, their ratio, and peak memory (the server process and its largest
ffmpeg child; for the reference, the largest ffmpeg process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices import store as dstore
from recordings.channel_format import MP3_FILE_ARGS, OPUS_FILE_ARGS
from web.api_announcements import INGEST
from web.app import create_app
from web.keys import SESSIONMAKER
from web.settings import Settings

TEXT = (
    "오늘 오전 열시 마을회관에서 경로잔치가 열립니다. 주민 여러분께서는 많이 참석해 주시기 "
    "바랍니다. 다시 한번 알려드립니다."
)
FORMATS = {
    "m4a": ("-c:a", "aac", "-b:a", "96k"),
    "mp3": ("-c:a", "libmp3lame", "-b:a", "128k"),
    "wav": ("-c:a", "pcm_s16le", "-ar", "44100"),
    "webm": ("-c:a", "libopus", "-b:a", "48k", "-f", "webm"),
}


def make_clip(work: Path, seconds: int, fmt: str) -> Path:
    """``seconds`` of looped Korean speech in the given format."""
    speech = work / "speech.wav"
    if not speech.exists():
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(speech), TEXT], check=True)
    out = work / f"clip-{seconds}s.{fmt}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(speech),
         "-t", str(seconds), *FORMATS[fmt], str(out)],
        check=True,
    )  # fmt: skip
    return out


def _rss_kb(pid: int | str, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ChildMemory:
    """Samples the summed RSS of this process's children every 20 ms (ru_maxrss of a child
    counts the parent's memory before exec, so it cannot be used)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _children(self) -> list[str]:
        me = str(os.getpid())
        out = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[1] == me:
                            out.append(pid)
                except (OSError, IndexError):
                    continue
        return out

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kb = max(self.peak_kb, sum(_rss_kb(p) for p in self._children()))

    def __enter__(self) -> ChildMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_checked(args: list[str]) -> str:
    """Run a command; its stderr."""
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(err[-1000:])
    return err


def reference(clip: Path, out: Path) -> float:
    """The bare ffmpeg transcode: measure, then encode both renditions with the gain."""
    start = time.perf_counter()
    err = run_checked(
        ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(clip), "-ac", "1",
         "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"]
    )  # fmt: skip
    lufs = float(re.findall(r"I:\s+(-?[\d.]+) LUFS", err)[-1])
    gain = f"volume={-16 - lufs:.2f}dB,alimiter=limit=0.75:level=false"
    run_checked(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(clip),
         "-af", gain, *MP3_FILE_ARGS, str(out / "ref.mp3"),
         "-af", gain, *OPUS_FILE_ARGS, str(out / "ref.opus")]
    )  # fmt: skip
    return time.perf_counter() - start


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def villagecast_runs(
    clips: list[Path], repeat: int, data_dir: Path
) -> dict[Path, list[float]]:
    """Upload each clip ``repeat`` times to a real server and time upload → ready."""
    settings = Settings(data_dir=data_dir, log_format="text", log_level="WARNING")
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with app[SESSIONMAKER]() as session:
        await dstore.import_regions_file(session, dstore.DEMO_REGIONS)
        account = await dstore.create_account(
            session, "bench", "correct horse battery", "admin", "48820"
        )
        token = (await dstore.create_api_token(session, account, "bench")).token
        await session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[Path, list[float]] = {clip: [] for clip in clips}
    try:
        async with aiohttp.ClientSession() as http:
            for clip in clips:
                data = await asyncio.to_thread(clip.read_bytes)
                for i in range(repeat):
                    form = aiohttp.FormData()
                    form.add_field("title", f"bench {clip.name} {i}")
                    form.add_field("file", data, filename=clip.name)
                    start = time.perf_counter()
                    async with http.post(
                        f"http://127.0.0.1:{port}/api/v1/announcements", data=form, headers=headers
                    ) as resp:
                        assert resp.status == 202, await resp.text()
                        announcement_id = (await resp.json())["id"]
                    status = await app[INGEST].wait_ready(announcement_id, timeout=600)
                    times[clip].append(time.perf_counter() - start)
                    assert status == "ready", status
    finally:
        await runner.cleanup()
    return times


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", choices=sorted(FORMATS), default="m4a")
    parser.add_argument("--seconds", type=int, nargs="+", default=[60, 600])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as tmp:
        work = Path(tmp)
        clips = [make_clip(work, s, args.format) for s in args.seconds]
        base_kb = _rss_kb("self")
        with ChildMemory() as vc_children:
            vc = asyncio.run(villagecast_runs(clips, args.repeat, work / "data"))
        vc_self_kb = _rss_kb("self", "VmHWM")
        ref: dict[Path, list[float]] = {clip: [] for clip in clips}
        with ChildMemory() as ref_children:
            for clip in clips:
                for _ in range(args.repeat):
                    ref[clip].append(reference(clip, work))
    print(
        f"ingest benchmark: {args.format} uploads, median of {args.repeat}, {os.cpu_count()} cores"
    )
    print(f"{'clip':>8} | {'villagecast ready':>17} | {'bare ffmpeg':>11} | {'ratio':>5} | target")
    for clip, secs in zip(clips, args.seconds, strict=True):
        a, b = statistics.median(vc[clip]), statistics.median(ref[clip])
        target = 3 if secs <= 60 else 20
        print(f"{secs:>7}s | {a:>16.2f}s | {b:>10.2f}s | {a / b:>5.2f} | < {target} s "
              f"{'ok' if a < target else 'MISSED'}")  # fmt: skip
    print(
        f"peak memory: server process {vc_self_kb / 1024:.0f} MB "
        f"({base_kb / 1024:.0f} MB before the first upload) + ffmpeg children "
        f"{vc_children.peak_kb / 1024:.0f} MB; bare ffmpeg {ref_children.peak_kb / 1024:.0f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
