"""Pure outcome and report logic: occurrence and broadcast statuses, per-village reports, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "DeviceLine",
    "ListenerLine",
    "VillageReport",
    "broadcast_status",
    "occurrence_status",
    "report_csv",
    "report_totals",
]


def occurrence_status(
    end_event: str,
    targeted: Iterable[int],
    reached: Iterable[int],
    received: Iterable[int] | None = None,
) -> str:
    """An ended occurrence: ``done`` when every targeted box got all of it, ``missed`` when boxes
    were targeted and none received any of it (``received``: boxes that got some audio; default
    ``reached``), else ``partial``."""
    if end_event == "cancelled":
        return "cancelled"
    targeted = set(targeted)
    got = set(reached if received is None else received)
    if targeted and not targeted & got:
        return "missed"
    if end_event == "preempted":
        return "partial"
    return "done" if targeted <= set(reached) else "partial"


def broadcast_status(cancelled: bool, occurrence_statuses: Sequence[str]) -> str:
    """A broadcast's status from its occurrences' (all villages, all recurrences)."""
    if cancelled:
        return "cancelled"
    statuses = set(occurrence_statuses)
    if statuses & {"dispatched", "playing"}:
        return "playing"
    if "scheduled" in statuses or not statuses:
        return "scheduled"
    ended = statuses - {"cancelled"}
    if ended <= {"done"}:
        return "done"
    if ended <= {"missed", "refused"}:
        return "missed"
    return "partial"


@dataclass(frozen=True, slots=True)
class DeviceLine:
    """A targeted speaker box in a report."""

    id: int
    name: str
    reached: bool
    connected_at_start: bool
    bytes: int = 0
    last_seen: datetime | None = None


@dataclass(frozen=True, slots=True)
class ListenerLine:
    """A registered resident in a report: heard live, replayed, or not yet."""

    id: int
    nickname: str
    heard: str  # live | replay | none
    replayed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VillageReport:
    """What one village's speakers and residents got of one occurrence."""

    village: str
    name_ko: str
    status: str
    due_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    quiet: str
    devices: tuple[DeviceLine, ...] = ()
    listeners: tuple[ListenerLine, ...] = ()
    note: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        village: str,
        name_ko: str,
        status: str,
        due_at: datetime,
        started_at: datetime | None,
        ended_at: datetime | None,
        quiet: str,
        devices: Iterable[DeviceLine],
        registered: Iterable[tuple[int, str]],
        live: Iterable[int],
        replays: Mapping[int, datetime],
        note: str = "",
    ) -> VillageReport:
        """Combine boxes, registered listeners, live listener ids and replays into a report."""
        live_set = set(live)
        lines = []
        for lid, nickname in registered:
            if lid in live_set:
                lines.append(ListenerLine(lid, nickname, "live"))
            elif lid in replays:
                lines.append(ListenerLine(lid, nickname, "replay", replays[lid]))
            else:
                lines.append(ListenerLine(lid, nickname, "none"))
        return cls(
            village=village,
            name_ko=name_ko,
            status=status,
            due_at=due_at,
            started_at=started_at,
            ended_at=ended_at,
            quiet=quiet,
            devices=tuple(sorted(devices, key=lambda d: d.id)),
            listeners=tuple(lines),
            note=note,
        )

    @property
    def ended(self) -> bool:
        """Whether the outcome is final (reached/missed are meaningful)."""
        return self.status in ("done", "partial", "missed", "cancelled")

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        """The API form of this village's report."""

        def t(value: datetime | None) -> str | None:
            return value.astimezone(tz).isoformat() if value else None

        reached = [d for d in self.devices if d.reached]
        missed = [d for d in self.devices if not d.reached] if self.ended else []
        heard = [x for x in self.listeners if x.heard != "none"]
        return {
            "village": self.village,
            "name_ko": self.name_ko,
            "status": self.status,
            "due_at": t(self.due_at),
            "started_at": t(self.started_at),
            "ended_at": t(self.ended_at),
            "quiet_hours": self.quiet,
            "note": self.note,
            "speakers": {
                "targeted": len(self.devices),
                "reached": len(reached),
                "missed": len(missed),
                "reached_devices": [{"id": d.id, "name": d.name} for d in reached],
                "missed_devices": [
                    {
                        "id": d.id,
                        "name": d.name,
                        "online_at_start": d.connected_at_start,
                        "last_seen": t(d.last_seen),
                    }
                    for d in missed
                ],
            },
            "listeners": {
                "registered": len(self.listeners),
                "live": [
                    {"id": x.id, "nickname": x.nickname}
                    for x in self.listeners
                    if x.heard == "live"
                ],
                "replayed": [
                    {"id": x.id, "nickname": x.nickname, "at": t(x.replayed_at)}
                    for x in self.listeners
                    if x.heard == "replay"
                ],
                "heard": len(heard),
                "not_heard": [
                    {"id": x.id, "nickname": x.nickname}
                    for x in self.listeners
                    if x.heard == "none"
                ],
            },
        }


CSV_HEADER = ("village", "village_name", "kind", "id", "name", "result", "last_seen_or_at")


def report_csv(
    broadcast_id: int, title: str, villages: Sequence[VillageReport], tz: ZoneInfo
) -> bytes:
    """The report as CSV, UTF-8 with a BOM so that Excel shows Korean."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("broadcast", broadcast_id, _cell(title)))
    writer.writerow(CSV_HEADER)

    def t(value: datetime | None) -> str:
        return value.astimezone(tz).isoformat() if value else ""

    for v in villages:
        for d in v.devices:
            result = "reached" if d.reached else ("missed" if v.ended else "pending")
            row = (v.village, v.name_ko, "speaker", d.id, d.name, result, t(d.last_seen))
            writer.writerow([_cell(c) for c in row])
        for x in v.listeners:
            result = {"live": "heard_live", "replay": "replayed", "none": "not_heard"}[x.heard]
            row = (v.village, v.name_ko, "resident", x.id, x.nickname, result, t(x.replayed_at))
            writer.writerow([_cell(c) for c in row])
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


def _cell(value: object) -> object:
    """Keep spreadsheet formulas out: text starting with = + - @ gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def report_totals(villages: list[VillageReport]) -> dict[str, int]:
    """The report's totals over its villages: speakers and residents."""
    out = dict.fromkeys(
        ("targeted", "reached", "missed", "registered", "live", "replayed", "not_heard"), 0
    )
    for v in villages:
        out["targeted"] += len(v.devices)
        out["reached"] += sum(d.reached for d in v.devices)
        out["missed"] += sum(not d.reached for d in v.devices) if v.ended else 0
        out["registered"] += len(v.listeners)
        out["live"] += sum(x.heard == "live" for x in v.listeners)
        out["replayed"] += sum(x.heard == "replay" for x in v.listeners)
        out["not_heard"] += sum(x.heard == "none" for x in v.listeners)
    return out
