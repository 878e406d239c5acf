"""Scheduler benchmark: 10,000 broadcasts across 263 villages, start-time error and dispatcher CPU.

The real :class:`broadcast.dispatcher.Dispatcher` runs on a real SQLite file (WAL) with the real
clock; the channels are a recording :class:`streaming.items.ChannelPort` that notes when each item
is offered and reports it started and finished at once (so the dispatcher also writes every
outcome). Start-time error = wall time when the item reached the channel − its due time.

By default the 10,000 starts are spread over a compressed timeline (``--span-s 120``: ~83 starts
a second, 30× denser than 10,000 an hour); ``--span-s 3600`` runs the real hour.

    .venv/bin/python bench/scheduler.py [--broadcasts 10000] [--villages 263] [--span-s 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broadcast.dispatcher import Dispatcher, DispatcherConfig
from broadcast.models import Broadcast, Occurrence
from broadcast.quiet import QuietHours
from devices.models import Region
from recordings.models import Announcement, Rendition
from streaming.items import (
    ChannelPort,
    ItemReport,
    LiveInput,
    Placement,
    PlayItem,
    Priority,
    Reader,
    ReportListener,
)
from web.db import make_engine, make_sessionmaker, migrate


class RecordingChannels:
    """A ``ChannelPort`` that notes when each item is offered and reports it started and
    finished at once."""

    def __init__(self, reports: bool = True) -> None:
        self.reports = reports
        self.offered_at: dict[int, float] = {}  # broadcast id → when offered
        self.listeners: list[ReportListener] = []

    async def predict(self, village: str, priority: Priority) -> Placement:
        return Placement("plays_now", village)

    async def offer(self, item: PlayItem) -> Placement:
        assert item.ref is not None
        self.offered_at[item.ref.broadcast_id] = time.time()
        now = datetime.now(UTC)
        for event in ("started", "finished") if self.reports else ():
            report = ItemReport(
                item.item_id, item.village, item.broadcast_id, event, now, 1000, ref=item.ref
            )  # type: ignore[arg-type]
            for listener in self.listeners:
                listener(report)
        return Placement("plays_now", item.village)

    async def open_live(self, item: PlayItem) -> tuple[Placement, LiveInput]:
        raise NotImplementedError("no live sessions in this benchmark")

    async def cancel(self, item_id: str) -> bool:
        return False

    async def load_audio(self, path: Path) -> list[bytes]:
        return []

    async def connected_devices(self, village: str) -> set[int]:
        return set()

    async def add_reader(self, village: str, reader: Reader) -> None:
        pass

    async def remove_reader(self, village: str, reader: Reader) -> None:
        pass

    async def note_listener(
        self, village: str, listener_id: int, reader_id: int, present: bool = True
    ) -> None:
        pass

    def add_report_listener(self, listener: ReportListener) -> None:
        self.listeners.append(listener)


def _port(channels: RecordingChannels) -> ChannelPort:
    return channels


class Media:
    def __init__(self, path: Path) -> None:
        self.path = path

    def rendition_path(self, rendition: Rendition) -> Path:
        return self.path

    def chime_parts(self, emergency: bool) -> tuple[Path, Path] | None:
        return None


async def seed(
    maker: async_sessionmaker[AsyncSession],
    villages: int,
    broadcasts: int,
    start: datetime,
    span_s: float,
    mp3: Path,
) -> dict[int, datetime]:
    """Regions, one announcement, the broadcasts and their occurrences; returns due times."""
    rng = random.Random(42)
    codes = [f"bench-v{i:03d}" for i in range(villages)]
    due = {i + 1: start + timedelta(seconds=rng.uniform(0, span_s)) for i in range(broadcasts)}
    async with maker() as session:
        session.add(Region(code="bench", kind="county", name_ko="벤치군", name_en="Bench"))
        session.add(
            Region(
                code="bench-d", kind="district", name_ko="벤치면", name_en="B", parent_code="bench"
            )
        )
        session.add_all(
            Region(code=c, kind="village", name_ko=c, name_en=c, parent_code="bench-d")
            for c in codes
        )
        ann = Announcement(title="bench", source="upload", status="ready")
        session.add(ann)
        await session.flush()
        session.add(
            Rendition(
                announcement_id=ann.id, format="mp3", path=str(mp3), bytes=1, bitrate_kbps=64,
                duration_ms=1000, sha256="0" * 64,
            )
        )  # fmt: skip
        await session.execute(
            insert(Broadcast),
            [
                {
                    "id": bid, "announcement_id": ann.id, "title": f"b{bid}",
                    "villages": [codes[bid % villages]], "targets": {}, "priority": "normal",
                    "repeat": 1, "chime": False, "start_at": at, "status": "scheduled",
                    "next_due_at": at,
                }
                for bid, at in due.items()
            ],
        )  # fmt: skip
        await session.execute(
            insert(Occurrence),
            [
                {
                    "broadcast_id": bid, "seq": 0, "village_code": codes[bid % villages],
                    "nominal_at": at, "due_at": at, "status": "scheduled", "quiet": "clear",
                }
                for bid, at in due.items()
            ],
        )  # fmt: skip
        await session.commit()
    return due


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broadcasts", type=int, default=10_000)
    parser.add_argument("--villages", type=int, default=263)
    parser.add_argument("--span-s", type=float, default=120.0)
    parser.add_argument("--lead-s", type=float, default=20.0, help="time before the first start")
    parser.add_argument(
        "--no-reports", action="store_true", help="channels send no reports (timer cost alone)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await migrate(engine)
        maker = make_sessionmaker(engine)
        mp3 = Path(tmp) / "a.mp3"
        mp3.write_bytes(b"\xff\xfb")
        t_seed = time.perf_counter()
        start = datetime.now(UTC) + timedelta(seconds=args.lead_s)
        due = await seed(maker, args.villages, args.broadcasts, start, args.span_s, mp3)
        seed_s = time.perf_counter() - t_seed
        assert datetime.now(UTC) < start, "seeding took longer than --lead-s"
        channels = RecordingChannels(reports=not args.no_reports)
        config = DispatcherConfig(tz=ZoneInfo("Asia/Seoul"), default_quiet=QuietHours.parse("off"))
        dispatcher = Dispatcher(maker, channels, Media(mp3), config)
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        await dispatcher.start()
        last_due = max(due.values())
        # Run until the last start has passed, plus a margin for the report writer.
        await asyncio.sleep((last_due - datetime.now(UTC)).total_seconds() + 2.0)
        await asyncio.sleep(1.0)  # let the report writer catch up
        await dispatcher.stop()
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        await engine.dispose()
    errors = []
    for bid, at in channels.offered_at.items():
        errors.append(at - due[bid].timestamp())
    result = {
        "broadcasts": args.broadcasts,
        "villages": args.villages,
        "span_s": args.span_s,
        "starts_per_s": round(args.broadcasts / args.span_s, 1),
        "dispatched": len(errors),
        "missed": dispatcher.missed,
        "start_error_ms": {
            "p50": round(statistics.median(errors) * 1000, 1),
            "p99": round(percentile(errors, 99) * 1000, 1),
            "max": round(max(errors) * 1000, 1),
            "min": round(min(errors) * 1000, 1),
        },
        "dispatcher_cpu_s": round(cpu, 2),
        "dispatcher_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "wall_s": round(wall, 1),
        "max_rss_mb": round(ru1.ru_maxrss / 1024, 1),
        "seed_s": round(seed_s, 1),
        "voluntary_context_switches": ru1.ru_nvcsw - ru0.ru_nvcsw,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
