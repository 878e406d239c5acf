"""SQL of broadcasts: create, find what is due, record what the channels report, list, report.

Every function takes an ``AsyncSession`` and leaves committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from devices import store as devices_store
from devices.models import Device, Region
from recordings.models import Announcement, Rendition, Replay
from streaming.items import ItemRef, ItemReport

from .errors import AnnouncementNotReady, UnknownAnnouncement, UnknownBroadcast
from .models import OPEN_OCCURRENCE, Broadcast, Delivery, Occurrence
from .report import DeviceLine, VillageReport, broadcast_status, occurrence_status

__all__ = [
    "NewOccurrence",
    "add_occurrences",
    "cancel",
    "due",
    "get_broadcast",
    "list_broadcasts",
    "next_due",
    "ready_announcement",
    "record_reports",
    "recover_interrupted",
    "refresh_status",
    "refresh_statuses",
    "village_info",
    "village_reports",
]


@dataclass(frozen=True, slots=True)
class NewOccurrence:
    """An occurrence to insert: one village's start of one recurrence."""

    village: str
    seq: int
    nominal_at: datetime
    due_at: datetime
    quiet: str  # clear | deferred | ignored | refused
    status: str = "scheduled"
    note: str = ""


async def get_broadcast(session: AsyncSession, broadcast_id: int) -> Broadcast:
    """The broadcast with this id, or :class:`UnknownBroadcast`."""
    row = await session.get(Broadcast, broadcast_id)
    if row is None:
        raise UnknownBroadcast(f"no broadcast {broadcast_id}")
    return row


async def ready_announcement(session: AsyncSession, announcement_id: int) -> Announcement:
    """A ``ready`` announcement with an mp3 rendition (404 unknown, 409 not ready)."""
    ann = await session.get(Announcement, announcement_id)
    if ann is None:
        raise UnknownAnnouncement(f"no announcement {announcement_id}")
    if ann.status != "ready" or not any(r.format == "mp3" for r in ann.renditions):
        raise AnnouncementNotReady(
            f"announcement {announcement_id} is {ann.status}", announcement_status=ann.status
        )
    return ann


async def mp3_rendition(session: AsyncSession, announcement_id: int) -> Rendition | None:
    """The mp3 rendition of an announcement."""
    return await session.scalar(
        select(Rendition).where(
            Rendition.announcement_id == announcement_id, Rendition.format == "mp3"
        )
    )


async def village_info(
    session: AsyncSession, villages: Iterable[str]
) -> dict[str, tuple[str, str | None]]:
    """Village code → (Korean name, its own quiet hours or None for the default)."""
    rows = await session.execute(
        select(Region.code, Region.name_ko, Region.quiet_hours).where(
            Region.code.in_(list(villages))
        )
    )
    return {code: (name, quiet) for code, name, quiet in rows.all()}


def add_occurrences(session: AsyncSession, broadcast_id: int, new: Iterable[NewOccurrence]) -> None:
    """Insert occurrences of a broadcast."""
    for o in new:
        session.add(
            Occurrence(
                broadcast_id=broadcast_id,
                seq=o.seq,
                village_code=o.village,
                nominal_at=o.nominal_at,
                due_at=o.due_at,
                quiet=o.quiet,
                status=o.status,
                note=o.note,
            )
        )


async def next_due(session: AsyncSession) -> datetime | None:
    """The earliest due time of a scheduled occurrence."""
    value: datetime | None = await session.scalar(
        select(func.min(Occurrence.due_at)).where(Occurrence.status == "scheduled")
    )
    if value is not None and value.tzinfo is None:  # min() bypasses the column type on SQLite
        value = datetime.fromisoformat(str(value)).replace(tzinfo=ZoneInfo("UTC"))
    return value


async def due(session: AsyncSession, until: datetime) -> list[tuple[Occurrence, Broadcast]]:
    """Scheduled occurrences due at or before ``until``, oldest first, with their broadcasts."""
    rows = await session.execute(
        select(Occurrence, Broadcast)
        .join(Broadcast, Broadcast.id == Occurrence.broadcast_id)
        .where(Occurrence.status == "scheduled", Occurrence.due_at <= until)
        .order_by(Occurrence.due_at, Occurrence.id)
    )
    return [(o, b) for o, b in rows.all()]


async def record_reports(
    session: AsyncSession, reports: Sequence[ItemReport]
) -> list[tuple[ItemReport, Occurrence]]:
    """Record channel reports (of broadcast items: ``report.ref`` set) in bulk.

    ``started``: the occurrence plays; every box of its village gets a delivery row noting
    whether it was connected. An end (``finished``/``preempted``/``cancelled``): bytes and
    outcome per box, live listeners, and the occurrence's status. Returns what changed.
    """
    if not reports:
        return []
    occ_ids = {r.ref.occurrence_id for r in reports if r.ref is not None}
    occs = {
        o.id: o for o in await session.scalars(select(Occurrence).where(Occurrence.id.in_(occ_ids)))
    }
    villages = {o.village_code for o in occs.values()}
    devices: dict[int, Device] = {
        d.id: d
        for d in await session.scalars(
            select(Device).where(Device.village_code.in_(villages), Device.revoked_at.is_(None))
        )
    }
    deliveries: dict[int, dict[int, Delivery]] = {oid: {} for oid in occ_ids}
    for row in await session.scalars(select(Delivery).where(Delivery.occurrence_id.in_(occ_ids))):
        deliveries[row.occurrence_id][row.device_id] = row
    started_broadcasts: set[int] = set()
    out = []
    with session.no_autoflush:
        for report in reports:
            if report.ref is None:
                continue
            oid = report.ref.occurrence_id
            occ = occs.get(oid)
            if occ is None:
                continue
            if report.event == "started":
                if occ.status not in ("dispatched", "scheduled"):
                    continue
                occ.status = "playing"
                occ.started_at = report.at
                _add_deliveries(session, occ, devices, deliveries[oid], set(report.connected))
                started_broadcasts.add(occ.broadcast_id)
            else:
                if occ.status not in OPEN_OCCURRENCE:
                    continue
                _record_end(session, occ, report, devices, deliveries[oid])
            out.append((report, occ))
    if started_broadcasts:
        # Broadcast: from now on residents and every staff member may replay it. One UPDATE of
        # the not-yet-published rows (what ``recordings.store.mark_published`` does one by one,
        # without loading each announcement and its renditions at every start).
        await session.execute(
            update(Announcement)
            .where(
                Announcement.id.in_(
                    select(Broadcast.announcement_id).where(Broadcast.id.in_(started_broadcasts))
                ),
                Announcement.published_at.is_(None),
            )
            .values(published_at=min(r.at for r in reports))
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    return out


def _add_deliveries(
    session: AsyncSession,
    occ: Occurrence,
    devices: dict[int, Device],
    rows: dict[int, Delivery],
    connected: set[int],
) -> None:
    for d in devices.values():
        if d.village_code == occ.village_code and d.id not in rows:
            rows[d.id] = Delivery(
                occurrence_id=occ.id,
                device_id=d.id,
                device_name=d.name,
                connected_at_start=d.id in connected,
                last_seen=d.last_seen,
            )
            session.add(rows[d.id])


def _record_end(
    session: AsyncSession,
    occ: Occurrence,
    report: ItemReport,
    devices: dict[int, Device],
    rows: dict[int, Delivery],
) -> None:
    if occ.started_at is None and report.event != "cancelled":
        occ.started_at = report.at
    if occ.started_at is not None:
        _add_deliveries(session, occ, devices, rows, set())
    occ.ended_at = report.at
    occ.end_event = report.event
    occ.total_bytes = report.total_bytes
    occ.listener_ids = sorted(set(occ.listener_ids or ()) | set(report.listener_ids))
    reached = report.reached()
    for device_id in set(report.device_bytes) - set(rows):  # connected, added after the start
        device = devices.get(device_id)
        rows[device_id] = Delivery(
            occurrence_id=occ.id,
            device_id=device_id,
            device_name=device.name if device else f"#{device_id}",
            connected_at_start=False,
        )
        session.add(rows[device_id])
    for row in rows.values():
        row.bytes = report.device_bytes.get(row.device_id, 0)
        row.reached = row.device_id in reached
        device = devices.get(row.device_id)
        if not row.reached and device is not None and device.last_seen is not None:
            row.last_seen = device.last_seen
    received = {d for d, n in report.device_bytes.items() if n > 0}
    occ.status = occurrence_status(report.event, rows, reached, received)
    if occ.status == "missed" and not occ.note:
        occ.note = "no speaker box received any of it"


async def refresh_status(session: AsyncSession, broadcast: Broadcast, now: datetime) -> str:
    """Recompute a broadcast's status and next due time from its occurrences."""
    return (await refresh_statuses(session, [broadcast], now))[broadcast.id]


async def refresh_statuses(
    session: AsyncSession, broadcasts: Iterable[Broadcast], now: datetime
) -> dict[int, str]:
    """:func:`refresh_status` for many broadcasts with one query; their new statuses by id."""
    by_id = {b.id: b for b in broadcasts}
    if not by_id:
        return {}
    await session.flush()
    rows = (
        await session.execute(
            select(Occurrence.broadcast_id, Occurrence.status, Occurrence.due_at).where(
                Occurrence.broadcast_id.in_(list(by_id))
            )
        )
    ).all()
    grouped: dict[int, list[tuple[str, datetime]]] = {bid: [] for bid in by_id}
    for bid, status, due_at in rows:
        grouped[bid].append((status, due_at))
    out = {}
    for bid, b in by_id.items():
        occs = grouped[bid]
        status = broadcast_status(b.cancelled_at is not None, [s for s, _ in occs])
        pending = [d for s, d in occs if s == "scheduled"]
        b.next_due_at = min(pending) if pending else None
        if status in ("done", "partial", "missed", "cancelled") and b.ended_at is None:
            b.ended_at = now
        b.status = out[bid] = status
    return out


async def cancel(
    session: AsyncSession, broadcast: Broadcast, account_id: int | None, now: datetime
) -> list[ItemRef]:
    """Cancel a broadcast; returns the channel items to stop (dispatched or playing)."""
    broadcast.cancelled_at = now
    broadcast.cancelled_by = account_id
    occs = await session.scalars(
        select(Occurrence).where(
            Occurrence.broadcast_id == broadcast.id, Occurrence.status.in_(OPEN_OCCURRENCE)
        )
    )
    to_stop = []
    for occ in occs:
        if occ.status == "scheduled":
            occ.status = "cancelled"
            occ.ended_at = now
            occ.end_event = "cancelled"
        else:
            to_stop.append(occ.ref)
    await refresh_status(session, broadcast, now)
    return to_stop


async def recover_interrupted(
    session: AsyncSession, now: datetime
) -> tuple[list[Occurrence], list[Occurrence]]:
    """After a restart: the point of no return is the channel's ``started`` report.

    ``dispatched`` occurrences never started (claimed ahead of their time, or queued behind
    another item in memory): they are still due, back to ``scheduled`` (the timer plays them late
    inside their validity window, or ends them ``missed``). ``playing`` ones were cut: ``partial``,
    never replayed. A live session's occurrence cannot be replayed (its audio is gone): ``missed``
    if it never started. Returns (rescheduled, ended).
    """
    occs = list(
        await session.scalars(
            select(Occurrence).where(Occurrence.status.in_(("dispatched", "playing")))
        )
    )
    rescheduled, ended = [], []
    for occ in occs:
        if occ.status == "dispatched" and occ.note != "live":
            occ.status = "scheduled"
            occ.dispatched_at = None
            rescheduled.append(occ)
            continue
        occ.status = "partial" if occ.status == "playing" else "missed"
        occ.ended_at = now
        occ.end_event = "interrupted"
        occ.note = "interrupted by a server restart; not played again"
        ended.append(occ)
    await session.flush()
    return rescheduled, ended


async def list_broadcasts(
    session: AsyncSession,
    *,
    status: str | None = None,
    village: str | None = None,
    visible: Iterable[str] | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Broadcast], int]:
    """Broadcasts, soonest first for ``scheduled``, newest first otherwise; and the total count."""
    query = select(Broadcast)
    if status:
        query = query.where(Broadcast.status == status)
    if village:
        query = query.where(
            Broadcast.id.in_(
                select(Occurrence.broadcast_id).where(Occurrence.village_code == village)
            )
        )
    if visible is not None:
        query = query.where(
            Broadcast.id.in_(
                select(Occurrence.broadcast_id).where(Occurrence.village_code.in_(list(visible)))
            )
        )
    if start_from is not None:
        query = query.where(Broadcast.start_at >= start_from)
    if start_to is not None:
        query = query.where(Broadcast.start_at < start_to)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if status == "scheduled":
        query = query.order_by(Broadcast.next_due_at.asc(), Broadcast.id.asc())
    else:
        query = query.order_by(Broadcast.start_at.desc(), Broadcast.id.desc())
    rows = await session.scalars(query.limit(limit).offset(offset))
    return list(rows.all()), int(total)


async def occurrences_of(session: AsyncSession, broadcast_id: int) -> list[Occurrence]:
    """Every occurrence of a broadcast, by recurrence then village."""
    rows = await session.scalars(
        select(Occurrence)
        .where(Occurrence.broadcast_id == broadcast_id)
        .order_by(Occurrence.seq, Occurrence.village_code)
    )
    return list(rows.all())


async def replays_by_listener(session: AsyncSession, announcement_id: int) -> dict[int, datetime]:
    """Listener id → their latest replay of an announcement."""
    rows = await session.execute(
        select(Replay.listener_id, func.max(Replay.at))
        .where(Replay.announcement_id == announcement_id)
        .group_by(Replay.listener_id)
    )
    out = {}
    for lid, at in rows.all():
        if isinstance(at, str):
            at = datetime.fromisoformat(at)
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo("UTC"))
        out[lid] = at
    return out


def report_seq(occurrences: Sequence[Occurrence]) -> int:
    """The recurrence a report shows: the latest that has left ``scheduled`` (else the first)."""
    started = [o.seq for o in occurrences if o.status != "scheduled"]
    if started:
        return max(started)
    return min((o.seq for o in occurrences), default=0)


async def village_reports(
    session: AsyncSession, broadcast: Broadcast, occurrences: Sequence[Occurrence]
) -> list[VillageReport]:
    """The per-village report of the recurrence :func:`report_seq` picks."""
    seq = report_seq(occurrences)
    chosen = [o for o in occurrences if o.seq == seq]
    info = await village_info(session, [o.village_code for o in chosen])
    replays = await replays_by_listener(session, broadcast.announcement_id)
    out = []
    for occ in chosen:
        lines = await _device_lines(session, occ)
        listeners = await devices_store.listeners_of(session, occ.village_code)
        out.append(
            VillageReport.build(
                village=occ.village_code,
                name_ko=info.get(occ.village_code, ("", None))[0],
                status=occ.status,
                due_at=occ.due_at,
                started_at=occ.started_at,
                ended_at=occ.ended_at,
                quiet=occ.quiet,
                devices=lines,
                registered=[(x.id, x.nickname) for x in listeners],
                live=occ.listener_ids or (),
                replays=replays,
                note=occ.note,
            )
        )
    return out


async def _device_lines(session: AsyncSession, occ: Occurrence) -> list[DeviceLine]:
    rows = list(await session.scalars(select(Delivery).where(Delivery.occurrence_id == occ.id)))
    if rows:
        return [
            DeviceLine(
                r.device_id,
                r.device_name,
                r.reached,
                r.connected_at_start,
                r.bytes,
                r.last_seen,
            )
            for r in rows
        ]
    devices = await session.scalars(
        select(Device).where(Device.village_code == occ.village_code, Device.revoked_at.is_(None))
    )
    return [DeviceLine(d.id, d.name, False, False, 0, d.last_seen) for d in devices]


async def mark_dispatched(
    session: AsyncSession, occurrence_ids: Sequence[int], at: datetime
) -> None:
    """Mark occurrences handed to the channels (committed before offering: never plays twice)."""
    if occurrence_ids:
        await session.execute(
            update(Occurrence)
            .where(Occurrence.id.in_(list(occurrence_ids)), Occurrence.status == "scheduled")
            .values(status="dispatched", dispatched_at=at)
        )


async def has_seq(session: AsyncSession, broadcast_id: int, seq: int) -> bool:
    """Whether occurrences of this recurrence exist."""
    n = await session.scalar(
        select(func.count()).where(Occurrence.broadcast_id == broadcast_id, Occurrence.seq == seq)
    )
    return bool(n)


async def feed_items(
    session: AsyncSession, village: str, limit: int
) -> list[tuple[Announcement, Rendition, datetime]]:
    """The village's broadcast announcements for its podcast feed: newest start first, once each."""
    rows = (
        await session.execute(
            select(Announcement, Rendition, Occurrence.started_at)
            .join(Broadcast, Broadcast.announcement_id == Announcement.id)
            .join(Occurrence, Occurrence.broadcast_id == Broadcast.id)
            .join(
                Rendition,
                (Rendition.announcement_id == Announcement.id) & (Rendition.format == "mp3"),
            )
            .where(Occurrence.village_code == village, Occurrence.started_at.is_not(None))
            .order_by(Occurrence.started_at.desc())
            .limit(limit * 4)
        )
    ).all()
    seen: set[int] = set()
    out = []
    for ann, rendition, started_at in rows:
        if started_at is not None and ann.id not in seen and len(seen) < limit:
            seen.add(ann.id)
            out.append((ann, rendition, started_at))
    return out


# --- live sessions --------------------------------------------------------------------------


async def attach_live_recording(
    session: AsyncSession, broadcast_id: int, placeholder_id: int, announcement_id: int
) -> None:
    """Point a live broadcast at its archived recording and remove its placeholder."""
    b = await get_broadcast(session, broadcast_id)
    b.announcement_id = announcement_id
    await session.flush()
    placeholder = await session.get(Announcement, placeholder_id)
    still_used = await session.scalar(
        select(Broadcast.id).where(Broadcast.announcement_id == placeholder_id).limit(1)
    )
    if placeholder is not None and still_used is None:
        await session.delete(placeholder)
        await session.flush()


async def drop_live_placeholder(session: AsyncSession, placeholder_id: int, reason: str) -> None:
    """Nothing was recorded: the placeholder stays as a ``failed`` announcement with the reason."""
    placeholder = await session.get(Announcement, placeholder_id)
    if placeholder is not None:
        placeholder.status = "failed"
        placeholder.error = reason
        await session.flush()


async def delete_live(session: AsyncSession, broadcast_id: int, placeholder_id: int) -> None:
    """A session that never went on air (its negotiation failed): remove its rows."""
    await session.execute(delete(Occurrence).where(Occurrence.broadcast_id == broadcast_id))
    await session.execute(delete(Broadcast).where(Broadcast.id == broadcast_id))
    await session.execute(delete(Announcement).where(Announcement.id == placeholder_id))
    await session.flush()


async def interrupted_live(
    session: AsyncSession, broadcast_id: int
) -> tuple[Broadcast, Announcement] | None:
    """A live broadcast cut off by a restart, still on its placeholder: it and the placeholder."""
    b = await session.get(Broadcast, broadcast_id)
    if b is None:
        return None
    placeholder = await session.get(Announcement, b.announcement_id)
    if placeholder is None or placeholder.source != "live" or placeholder.original_path:
        return None  # already archived
    return b, placeholder
