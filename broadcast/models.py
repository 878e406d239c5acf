"""Tables of broadcasts: the broadcast, its per-village occurrences, and per-device deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devices.orm import Base, UTCDateTime, utcnow
from streaming.items import ItemRef

__all__ = ["BROADCAST_STATUSES", "OCCURRENCE_STATUSES", "Broadcast", "Delivery", "Occurrence"]

BROADCAST_STATUSES = ("scheduled", "playing", "done", "partial", "missed", "cancelled")
# "dispatched": handed to the channel (committed before offering), not yet reported started.
OCCURRENCE_STATUSES = (
    "scheduled",
    "dispatched",
    "playing",
    "done",
    "partial",
    "missed",
    "cancelled",
    "refused",
)
OPEN_OCCURRENCE = ("scheduled", "dispatched", "playing")


class Broadcast(Base):
    """An announcement sent to a target at a time, with a priority, a repeat count and a chime."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    targets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # as requested
    villages: Mapped[list[str]] = mapped_column(JSON, default=list)  # as resolved
    device_ids: Mapped[list[int] | None] = mapped_column(JSON)  # None: every box of the villages
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    repeat: Mapped[int] = mapped_column(Integer, default=1)
    chime: Mapped[bool] = mapped_column(Boolean, default=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # first (nominal) start
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    defer_quiet: Mapped[bool] = mapped_column(Boolean, default=False)
    # never starts after this (a disaster alert's CAP ``expires``); None: the validity window only
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # soonest open occurrence
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))


class Occurrence(Base):
    """One start of a broadcast on one village channel (recurrences add rows as they go)."""

    __tablename__ = "broadcast_occurrences"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "seq", "village_code"),
        Index("ix_broadcast_occurrences_status_due_at", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer, default=0)  # n-th start of a recurring broadcast
    village_code: Mapped[str] = mapped_column(String(64), index=True)
    nominal_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the start the sender asked for
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())  # after quiet-hours deferral
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    quiet: Mapped[str] = mapped_column(
        String(16), default="clear"
    )  # clear|deferred|ignored|refused
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_event: Mapped[str | None] = mapped_column(String(16))  # finished|preempted|cancelled
    total_bytes: Mapped[int] = mapped_column(Integer, default=0)
    listener_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")

    @property
    def ref(self) -> ItemRef:
        """The typed reference of this occurrence's channel item."""
        return ItemRef(self.broadcast_id, self.id, self.village_code, self.seq)


class Delivery(Base):
    """What one targeted speaker box received of one occurrence."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (UniqueConstraint("occurrence_id", "device_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurrence_id: Mapped[int] = mapped_column(
        ForeignKey("broadcast_occurrences.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[int] = mapped_column(Integer)  # no FK: a report outlives a deleted box
    device_name: Mapped[str] = mapped_column(String(100), default="")
    connected_at_start: Mapped[bool] = mapped_column(Boolean, default=False)
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    reached: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime())
