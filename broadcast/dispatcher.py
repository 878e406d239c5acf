"""The scheduler: wakes at each start time, hands items to the village channels, records outcomes.

Persistent: every start is a row (:class:`~broadcast.models.Occurrence`). One timer is armed to the
earliest due row and re-armed whenever rows change (:meth:`Dispatcher.poke`); nothing polls.
An occurrence is committed as ``dispatched`` *before* it is offered to its channel, so a crash in
between loses it rather than playing it twice; on start, :func:`store.recover_interrupted` ends such
rows (``missed``, or ``partial`` when the channel had reported it started).
Only one dispatcher may run against one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from devices import store as devices_store
from devices.orm import utcnow
from recordings.models import Rendition
from streaming.errors import PartUnreadable
from streaming.items import ChannelPort, ItemRef, ItemReport, PlayItem, Priority

from . import store
from .models import Broadcast, Occurrence
from .quiet import QuietHours, decide_quiet, village_quiet
from .scheduling import Recurrence, late_outcome, next_start, validity_window

__all__ = ["Clock", "Dispatcher", "DispatcherConfig", "Media", "SystemClock", "build_parts"]

log = logging.getLogger(__name__)

# Occurrences due this close to the wake-up are dispatched in the same batch.
BATCH_EPSILON = timedelta(milliseconds=5)
# The timer wakes and claims due rows this much ahead, then offers each item at its time.
CLAIM_LEAD = timedelta(milliseconds=300)
# Sleep at most this long, so that a jump of the wall clock is noticed within it.
MAX_SLEEP_S = 60.0
# Reports written in one transaction at most.
REPORT_BATCH = 100
# Reports that could not be written (database down) are retried after this, doubling up to the max.
REPORT_RETRY_S = 0.5
REPORT_RETRY_MAX_S = 5.0
# How long stop() waits for the tasks to finish their work.
STOP_TIMEOUT_S = 10.0


class Clock(Protocol):
    """Tells the time (aware UTC)."""

    def now(self) -> datetime:
        """The current time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current time, aware UTC."""
        return utcnow()


class Media(Protocol):
    """Where the audio files of a broadcast are."""

    def rendition_path(self, rendition: Rendition) -> Path:
        """The file of an announcement's mp3 rendition."""
        ...

    def chime_parts(self, emergency: bool) -> tuple[Path, Path] | None:
        """The opening and closing chime (emergency or routine), or None when there are none."""
        ...


def build_parts(
    announcement: Path, repeat: int, chimes: tuple[Path, Path] | None
) -> tuple[Path, ...]:
    """The parts of a play item: chime, the announcement ``repeat`` times, closing chime."""
    body = (announcement,) * repeat
    return (chimes[0], *body, chimes[1]) if chimes else body


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    """The on-air rules taken from the settings, built once and shared by every path to the air."""

    tz: ZoneInfo
    default_quiet: QuietHours
    validity_min: int = 10
    emergency_validity_min: int = 60

    @classmethod
    def build(
        cls,
        timezone: str,
        quiet_hours: str,
        validity_min: int = 10,
        emergency_validity_min: int = 60,
    ) -> DispatcherConfig:
        """The rules from the settings' text values."""
        return cls(
            ZoneInfo(timezone), QuietHours.parse(quiet_hours), validity_min, emergency_validity_min
        )


class Dispatcher:
    """Plays every scheduled occurrence once, at its time, and records what the channels report."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: ChannelPort,
        media: Media,
        config: DispatcherConfig,
        clock: Clock | None = None,
        publish: Callable[..., None] | None = None,
        pending_reports: Path | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        # where reports still unwritten at shutdown (database down) wait for the next start
        self.pending_reports = pending_reports
        self.channels = channels
        self.media = media
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.publish = publish or (lambda type_, **data: None)
        self._wake = asyncio.Event()
        self._claimed: set[str] = set()  # committed dispatched, waiting for their exact time
        # One writer at a time from this process: SQLite's busy handler sleeps in steps of up to
        # 100 ms when two connections want to write, which would delay starts; an asyncio lock
        # queues them without sleeping (the timer and the report writer take turns).
        self._write = asyncio.Lock()
        # None: the stop sentinel.
        self._reports: asyncio.Queue[ItemReport | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._unwritten: list[ItemReport] = []  # kept while the database is unavailable
        self._stop_event = asyncio.Event()
        self._stopping = False
        self._paused = False
        self.dispatched = 0  # counters for /metrics and the benchmark
        self.missed = 0
        self._listening = False

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover after a restart, then run the timer loop and the report writer."""
        await self._write_pending()  # before recovery: a report kept at shutdown is the truth
        await self.recover()
        self.attach()
        self._stopping = self._paused = False
        self._stop_event.clear()
        self._tasks = [
            asyncio.create_task(self._timer_loop(), name="broadcast-timer"),
            asyncio.create_task(self._report_loop(), name="broadcast-reports"),
        ]

    def pause(self) -> None:
        """Stop the timer (shutdown's first step): nothing more is claimed or offered."""
        self._paused = True
        self._wake.set()

    async def stop(self) -> None:
        """Stop waking up; write the reports already received; ignore later ones."""
        # Let both tasks finish what they are doing: a task cancelled inside a transaction
        # could leave its SQLite connection holding the write lock.
        self._paused = True
        self._stopping = True
        self._wake.set()
        self._stop_event.set()
        self._reports.put_nowait(None)
        for task in self._tasks:
            try:
                await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks = []
        try:
            await self.process_reports()
        except Exception:
            log.exception("%d report(s) could not be written at shutdown", len(self._unwritten))
            if self.pending_reports is not None:  # kept on disk, written at the next start
                await asyncio.to_thread(save_reports, self.pending_reports, self._unwritten)

    async def _write_pending(self) -> None:
        path = self.pending_reports
        if path is None:
            return
        reports = await asyncio.to_thread(load_reports, path)
        if reports:
            await self._handle_reports(reports)
            log.warning("wrote %d report(s) kept from the last shutdown", len(reports))
        await asyncio.to_thread(path.unlink, missing_ok=True)

    def attach(self) -> None:
        """Listen to the channels' reports (once)."""
        if not self._listening:
            self.channels.add_report_listener(self._on_report)
            self._listening = True

    async def process_reports(self) -> int:
        """Record the reports received so far (the report task does this as they come)."""
        batch, self._unwritten = self._unwritten, []
        while not self._reports.empty():
            entry = self._reports.get_nowait()
            if entry is not None:
                batch.append(entry)
        if batch:
            try:
                await self._handle_reports(batch)
            except Exception:
                self._unwritten = batch
                raise
        return len(batch)

    def poke(self) -> None:
        """Rows changed: re-arm the timer."""
        self._wake.set()

    async def recover(self) -> None:
        """After a restart: what never started is due again; what was cut ends (never replayed)."""
        now = self.clock.now()
        async with self._write, self.sessionmaker() as session:
            rescheduled, ended = await store.recover_interrupted(session, now)
            for bid in {o.broadcast_id for o in (*rescheduled, *ended)}:
                await store.refresh_status(session, await store.get_broadcast(session, bid), now)
            _audit_missed(session, [o for o in ended if o.status == "missed"])
            await session.commit()
        if rescheduled:
            log.warning("%d occurrence(s) that never started are due again", len(rescheduled))
        if ended:
            log.warning("%d occurrence(s) cut off by a restart were not replayed", len(ended))

    # --- the timer -------------------------------------------------------------------------------

    async def next_due(self) -> datetime | None:
        """When the next occurrence is due."""
        async with self.sessionmaker() as session:
            return await store.next_due(session)

    async def _timer_loop(self) -> None:
        while not self._paused:
            self._wake.clear()
            try:
                await self.dispatch_due(CLAIM_LEAD)
                nxt = await self.next_due()
            except Exception:
                log.exception("dispatcher pass failed; retrying in 1 s")
                nxt = self.clock.now() + timedelta(seconds=1)
            delay = MAX_SLEEP_S
            if nxt is not None:
                wake = nxt - CLAIM_LEAD
                delay = min(MAX_SLEEP_S, max(0.0, (wake - self.clock.now()).total_seconds()))
            if delay > 0 and not self._paused:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    async def dispatch_due(self, lead: timedelta = timedelta(0)) -> int:
        """Offer every occurrence due by now (+ ``lead``) to its channel at its due time (or mark
        it missed); returns how many were offered.

        Claiming ``lead`` ahead takes the database round trips off the start time: rows are
        committed ``dispatched`` early and each item is offered when its time comes.
        """
        async with self._write:
            items = await self._claim_due(self.clock.now() + lead)
        refused: list[tuple[PlayItem, str]] = []
        self._claimed.update(item.item_id for item, _ in items)
        offered = 0
        for item, due in sorted(items, key=lambda pair: pair[1]):
            wait_s = (due - self.clock.now()).total_seconds()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            if item.item_id not in self._claimed:
                continue  # cancelled while it waited for its time
            if self._paused:  # shutting down: left dispatched, due again at the next start
                self._claimed.discard(item.item_id)
                continue
            self._claimed.discard(item.item_id)
            offered += 1
            try:  # after the commit: a crash from here on never replays them
                await self.channels.offer(item)
            except Exception as exc:
                log.exception("channel refused item %s", item.item_id)
                refused.append((item, str(exc) or type(exc).__name__))
        if refused:
            await self._refused(refused)
        self.dispatched += offered - len(refused)
        return offered - len(refused)

    async def _claim_due(self, until: datetime) -> list[tuple[PlayItem, datetime]]:
        """Mark occurrences due by ``until`` dispatched (or missed) and commit; items to offer."""
        now = self.clock.now()
        async with self.sessionmaker() as session:
            rows = await store.due(session, until + BATCH_EPSILON)
            if not rows:
                return []
            items: list[tuple[PlayItem, datetime]] = []
            missed: list[Occurrence] = []
            parts_cache: dict[tuple[int, int, bool, bool], tuple[Path, ...] | None] = {}
            for occ, b in rows:
                priority = Priority.parse(b.priority)
                window = validity_window(
                    priority, self.config.validity_min, self.config.emergency_validity_min
                )
                if late_outcome(occ.due_at, now, window) == "missed":
                    occ.note = f"the server was down at its time (more than {window} late)"
                    missed.append(occ)
                    continue
                if b.valid_until is not None and now > b.valid_until:
                    occ.note = "it expired before it could start (valid until its alert's expiry)"
                    missed.append(occ)
                    continue
                key = (b.announcement_id, b.repeat, b.chime, priority >= Priority.EMERGENCY)
                if key not in parts_cache:
                    parts_cache[key] = await self._parts(session, b, priority)
                parts = parts_cache[key]
                if parts is None:
                    occ.note = "the announcement's audio file is missing"
                    missed.append(occ)
                    continue
                items.append((PlayItem.of(occ.ref, b.title, parts, priority), occ.due_at))
            for occ in missed:
                occ.status = "missed"
                occ.ended_at = now
                occ.end_event = "missed"
            played = {item.ref.occurrence_id for item, _ in items if item.ref is not None}
            await store.mark_dispatched(session, [o.id for o, _ in rows if o.id in played], now)
            broadcasts = {b.id: b for _, b in rows}
            for bid, seq in {(o.broadcast_id, o.seq) for o, _ in rows}:
                await self._ensure_next(session, broadcasts[bid], seq)
            await store.refresh_statuses(session, broadcasts.values(), now)
            _audit_missed(session, missed)
            await session.commit()
        self.missed += len(missed)
        return items

    async def _refused(self, refused: list[tuple[PlayItem, str]]) -> None:
        """Items the channel would not take end ``missed`` with the channel's reason."""
        now = self.clock.now()
        async with self._write, self.sessionmaker() as session:
            for item, reason in refused:
                assert item.ref is not None
                occ = await session.get(Occurrence, item.ref.occurrence_id)
                if occ is None or occ.status != "dispatched":
                    continue
                occ.status, occ.ended_at, occ.end_event = "missed", now, "refused"
                occ.note = f"the channel could not play it: {reason}"[:500]
                await store.refresh_status(
                    session, await store.get_broadcast(session, occ.broadcast_id), now
                )
                _audit_missed(session, [occ])
            await session.commit()
        self.missed += len(refused)

    async def _parts(
        self, session: AsyncSession, b: Broadcast, priority: Priority
    ) -> tuple[Path, ...] | None:
        rendition = await store.mp3_rendition(session, b.announcement_id)
        if rendition is None:
            return None
        path = self.media.rendition_path(rendition)
        chimes = self.media.chime_parts(priority >= Priority.EMERGENCY) if b.chime else None
        parts = build_parts(path, b.repeat, chimes)
        # Load the parts now, ahead of the start: off the loop, and from memory when fresh.
        for part in dict.fromkeys(parts):
            try:
                await self.channels.load_audio(part)
            except PartUnreadable:
                if part == path:
                    return None  # the announcement's file is gone
            except Exception:
                log.debug("part %s did not load ahead", part, exc_info=True)
        return parts

    async def _ensure_next(self, session: AsyncSession, b: Broadcast, seq: int) -> None:
        """Add the next recurrence of a recurring broadcast (once)."""
        if not b.recurrence or b.cancelled_at is not None:
            return
        if await store.has_seq(session, b.id, seq + 1):
            return
        tz = self.config.tz
        rec = Recurrence.from_json(b.recurrence, b.start_at.astimezone(tz))
        current = await session.scalar(_nominal_of(b.id, seq))
        nxt = next_start(b.start_at, rec, current or b.start_at, tz)
        if nxt is None:
            return
        new = list(
            self.plan_occurrences(b, seq + 1, nxt, await store.village_info(session, b.villages))
        )
        store.add_occurrences(session, b.id, new)
        for o in new:
            if o.status == "missed":
                devices_store.audit(
                    session, "system", "broadcast.missed", f"broadcast:{b.id}", o.village,
                    note=o.note, due_at=o.due_at.isoformat(),
                )  # fmt: skip
        await session.flush()

    def plan_occurrences(
        self,
        b: Broadcast,
        seq: int,
        nominal: datetime,
        info: dict[str, tuple[str, str | None]],
    ) -> Iterable[store.NewOccurrence]:
        """The occurrences of one start in every village, quiet hours applied."""
        priority = Priority.parse(b.priority)
        for village in b.villages:
            quiet = village_quiet(info.get(village, ("", None))[1], self.config.default_quiet)
            decision = decide_quiet(nominal, quiet, self.config.tz, priority, b.defer_quiet)
            if decision.outcome == "refused":
                yield store.NewOccurrence(
                    village, seq, nominal, nominal, "refused", "missed", "refused by quiet hours"
                )
            else:
                yield store.NewOccurrence(village, seq, nominal, decision.at, decision.outcome)

    # --- reports ---------------------------------------------------------------------------------

    def _on_report(self, report: ItemReport) -> None:
        if self._stopping or report.ref is None:
            return  # not a broadcast's item (a test tone, a benchmark loop)
        self._reports.put_nowait(report)

    async def _report_loop(self) -> None:
        stop = False
        retry_s = REPORT_RETRY_S
        while not stop:
            # reports not written yet (the database was down) go first, in their order
            batch, self._unwritten = self._unwritten, []
            if not batch:
                entry = await self._reports.get()
                if entry is None:
                    break
                batch.append(entry)
            while not self._reports.empty() and len(batch) < REPORT_BATCH:
                entry = self._reports.get_nowait()
                if entry is None:
                    stop = True
                    break
                batch.append(entry)
            try:
                await self._handle_reports(batch)
                retry_s = REPORT_RETRY_S
            except Exception:
                log.exception("could not record %d item report(s); kept, retrying", len(batch))
                self._unwritten = batch + self._unwritten
                if not stop:
                    await self._sleep_unless_stopping(retry_s)
                    retry_s = min(retry_s * 2, REPORT_RETRY_MAX_S)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    async def _handle_reports(self, batch: list[ItemReport]) -> None:
        """Record a batch of reports in one transaction, then tell the console."""
        async with self._write:
            events, touched, statuses = await self._record_reports(batch)
        for event, bid, oid, report, village_status in events:
            b = touched[bid]
            data: dict[str, Any] = {
                "broadcast_id": bid,
                "village": report.village,
                "title": b.title,
                "priority": b.priority,
                "occurrence_id": oid,
                "status": statuses[bid],
            }
            if village_status is not None:
                data["village_status"] = village_status
            self.publish("broadcast.started" if event == "started" else "broadcast.ended", **data)

    async def _record_reports(
        self, batch: list[ItemReport]
    ) -> tuple[
        list[tuple[str, int, int, ItemReport, str | None]], dict[int, Broadcast], dict[int, str]
    ]:
        now = self.clock.now()
        events: list[tuple[str, int, int, ItemReport, str | None]] = []
        touched: dict[int, Broadcast] = {}
        async with self.sessionmaker() as session:
            changed = await store.record_reports(session, batch)
            bids = {occ.broadcast_id for _, occ in changed}
            if bids:
                rows = await session.scalars(select(Broadcast).where(Broadcast.id.in_(bids)))
                touched = {b.id: b for b in rows}
            for report, occ in changed:
                bid = occ.broadcast_id
                village_status = None if report.event == "started" else occ.status
                events.append((report.event, bid, occ.id, report, village_status))
            _audit_missed(session, [occ for r, occ in changed if r.event != "started"
                                    and occ.status == "missed"])  # fmt: skip
            statuses = await store.refresh_statuses(session, touched.values(), now)
            await session.commit()
        return events, touched, statuses

    async def stop_items(self, refs: Iterable[ItemRef]) -> None:
        """Stop items where they play (cancel); ones the channels do not know end ``cancelled``."""
        unknown = []
        for ref in refs:
            if ref.key in self._claimed:  # claimed ahead, not offered yet: never offer it
                self._claimed.discard(ref.key)
                unknown.append(ref)
            elif not await self.channels.cancel(ref.key):
                unknown.append(ref)
        if not unknown:
            return
        now = self.clock.now()
        reports = [
            ItemReport(r.key, r.village, r.broadcast_id, "cancelled", now, 0, ref=r)
            for r in unknown
        ]
        await self._handle_reports(reports)


def save_reports(path: Path, reports: Iterable[ItemReport]) -> None:
    """Keep reports in a file (JSON lines; written to a temporary name, fsynced, renamed)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in reports:
            f.write(json.dumps(_report_json(r)) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_reports(path: Path) -> list[ItemReport]:
    """The reports kept by :func:`save_reports` (none when there is no file)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        ref = ItemRef(**d["ref"]) if d["ref"] else None
        out.append(
            ItemReport(
                d["item_id"],
                d["village"],
                d["broadcast_id"],
                d["event"],
                datetime.fromisoformat(d["at"]),
                d["total_bytes"],
                {int(k): v for k, v in d["device_bytes"].items()},
                frozenset(d["listener_ids"]),
                frozenset(d["connected"]),
                ref,
            )
        )
    return out


def _report_json(r: ItemReport) -> dict[str, Any]:
    ref = r.ref
    return {
        "item_id": r.item_id,
        "village": r.village,
        "broadcast_id": r.broadcast_id,
        "event": r.event,
        "at": r.at.isoformat(),
        "total_bytes": r.total_bytes,
        "device_bytes": {str(k): v for k, v in r.device_bytes.items()},
        "listener_ids": sorted(r.listener_ids),
        "connected": sorted(r.connected),
        "ref": None
        if ref is None
        else {
            "broadcast_id": ref.broadcast_id,
            "occurrence_id": ref.occurrence_id,
            "village": ref.village,
            "seq": ref.seq,
            "session_id": ref.session_id,
        },
    }


def _audit_missed(session: AsyncSession, occs: Iterable[Occurrence]) -> None:
    """Every ``missed`` occurrence gets an audit entry with its reason."""
    for occ in occs:
        devices_store.audit(
            session,
            "system",
            "broadcast.missed",
            f"broadcast:{occ.broadcast_id}",
            occ.village_code,
            note=occ.note,
            due_at=occ.due_at.isoformat(),
        )


def _nominal_of(broadcast_id: int, seq: int) -> Select[datetime]:
    return (
        select(Occurrence.nominal_at)
        .where(Occurrence.broadcast_id == broadcast_id, Occurrence.seq == seq)
        .limit(1)
    )
