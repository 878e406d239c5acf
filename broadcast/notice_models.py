"""Tables of notices to village heads (스마트 이장넷): notices, recipients, replies, attachments.

Recipients are resolved when a notice is sent: one row per village-head account of each targeted
village, with the head's name at that time, so the receipts show who was the head then.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from devices.orm import Base, UTCDateTime, utcnow

__all__ = ["Notice", "NoticeAttachment", "NoticeRecipient", "NoticeReply"]


class Notice(Base):
    """A notice from the county or a district to the village heads of some villages."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    sender_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), index=True
    )
    sender_name: Mapped[str] = mapped_column(String(100), default="")
    sender_region: Mapped[str] = mapped_column(String(64))
    targets: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    villages: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Targeted villages that had no village-head account when the notice was sent.
    headless: Mapped[list[str]] = mapped_column(JSON, default=list)
    requires_ack: Mapped[bool] = mapped_column(Boolean, default=False)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    broadcast_text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class NoticeRecipient(Base):
    """One village head's copy of a notice: read, acknowledged, replied, reminded, aired."""

    __tablename__ = "notice_recipients"
    __table_args__ = (UniqueConstraint("notice_id", "account_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    head_name: Mapped[str] = mapped_column(String(100))  # the head's name when it was sent
    village_code: Mapped[str] = mapped_column(String(64))
    district_code: Mapped[str] = mapped_column(String(64), index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the first reply
    replies: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    # "Air it to my village": the announcement made for it and the broadcast that carried it.
    air_announcement_id: Mapped[int | None] = mapped_column(
        ForeignKey("announcements.id", ondelete="SET NULL")
    )
    aired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL")
    )


class NoticeReply(Base):
    """A village head's reply to a notice (text, and photos as attachments)."""

    __tablename__ = "notice_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    recipient_id: Mapped[int] = mapped_column(
        ForeignKey("notice_recipients.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NoticeAttachment(Base):
    """A file of a notice or of a reply: a PDF, an image, or audio (then an announcement)."""

    __tablename__ = "notice_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"), index=True)
    reply_id: Mapped[int | None] = mapped_column(
        ForeignKey("notice_replies.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # pdf | image | audio
    media_type: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")  # as the client named it (shown)
    path: Mapped[str | None] = mapped_column(String(500))  # archive-relative (pdf, image)
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    announcement_id: Mapped[int | None] = mapped_column(
        ForeignKey("announcements.id", ondelete="SET NULL")
    )
