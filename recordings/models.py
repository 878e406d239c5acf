"""Tables of the archive: announcements, their renditions, and replays by residents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from devices.orm import Base, UTCDateTime, utcnow

__all__ = ["Announcement", "Rendition", "Replay"]

STATUSES = ("processing", "ready", "failed")


class Announcement(Base):
    """One piece of audio: uploaded, recorded, spoken from text, or captured live."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # upload | recording | tts | live
    status: Mapped[str] = mapped_column(String(16), default="processing", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)  # TTS input, searchable
    original_name: Mapped[str | None] = mapped_column(String(255))  # as the client named it
    original_path: Mapped[str | None] = mapped_column(String(500))  # relative to the archive
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)  # of the original
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    loudness_lufs: Mapped[float | None]
    true_peak_dbtp: Mapped[float | None]
    peaks: Mapped[list[float] | None] = mapped_column(JSON)  # waveform for the console
    created_by: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    region_code: Mapped[str | None] = mapped_column(String(64))  # the author's region
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when first broadcast (``store.mark_published``): then every staff member may see it.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    renditions: Mapped[list[Rendition]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", back_populates="announcement"
    )


class Rendition(Base):
    """A transcoded file of an announcement: ``mp3`` (64 kbps CBR mono) or ``opus`` (Ogg)."""

    __tablename__ = "renditions"
    __table_args__ = (UniqueConstraint("announcement_id", "format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), index=True
    )
    format: Mapped[str] = mapped_column(String(8))  # mp3 | opus
    path: Mapped[str] = mapped_column(String(500))  # relative to the archive root
    bytes: Mapped[int] = mapped_column(Integer)
    bitrate_kbps: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))

    announcement: Mapped[Announcement] = relationship(back_populates="renditions")


class Replay(Base):
    """A resident (listener token) fetched an announcement's replay file."""

    __tablename__ = "replays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    announcement_id: Mapped[int] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), index=True
    )
    listener_id: Mapped[int] = mapped_column(ForeignKey("listeners.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
