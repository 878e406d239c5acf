"""Tables of disaster alerts (each CAP document received) and of the signed as-run log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devices.orm import Base, UTCDateTime, utcnow

__all__ = ["ALERT_STATES", "Alert", "AsRunRow"]

# received → one of: aired (a broadcast was made), pending (waits for a staff member), rejected,
# ignored (nothing in this county, Draft/System, Ack/Error, expired), cancelled (by a later Cancel),
# replaced (by a later Update).
ALERT_STATES = ("aired", "pending", "rejected", "ignored", "cancelled", "replaced")


class Alert(Base):
    """One CAP 1.2 document as received, what it matched, and what became of it."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("identifier", "sender", "sent"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifier: Mapped[str] = mapped_column(String(200))
    sender: Mapped[str] = mapped_column(String(200))
    sent: Mapped[str] = mapped_column(String(32))  # as written (the key is textual per CAP)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(300), default="post")  # post | feed:<url>
    status: Mapped[str] = mapped_column(String(16))  # Actual | Exercise | Test | System | Draft
    msg_type: Mapped[str] = mapped_column(String(16))
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    event: Mapped[str] = mapped_column(String(200), default="")
    headline: Mapped[str] = mapped_column(String(300), default="")
    speech: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    severity: Mapped[str] = mapped_column(String(16), default="Unknown")
    urgency: Mapped[str] = mapped_column(String(16), default="Unknown")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    areas: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # AreaMatch.to_json()
    villages: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="ignored", index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), index=True
    )
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    xml: Mapped[str] = mapped_column(Text)  # the document as received (bounded by MAX_CAP_BYTES)


class AsRunRow(Base):
    """One signed entry of the as-run log (``broadcast.alerts.asrun``); append-only."""

    __tablename__ = "asrun_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    prev: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    sig: Mapped[str] = mapped_column(String(128))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    broadcast_id: Mapped[int | None] = mapped_column(Integer, unique=True)  # no FK: outlives rows
