"""SQL of notices to village heads: recipients by village, inbox, sent lists, receipts, replies.

Every function takes an ``AsyncSession`` and leaves committing to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from devices.models import Account

from .notice_models import Notice, NoticeAttachment, NoticeRecipient, NoticeReply
from .notices import UnknownNotice

__all__ = [
    "Counts",
    "attachments_of",
    "counts_by_notice",
    "get_notice",
    "heads_of_villages",
    "inbox",
    "recipient_of",
    "recipients_of",
    "replies_of",
    "sent_notices",
]


async def heads_of_villages(session: AsyncSession, villages: Iterable[str]) -> list[Account]:
    """The enabled village-head accounts of these villages, by village then username."""
    codes = sorted(set(villages))
    if not codes:
        return []
    rows = await session.scalars(
        select(Account)
        .where(
            Account.role == "village", Account.disabled.is_(False), Account.region_code.in_(codes)
        )
        .order_by(Account.region_code, Account.username)
    )
    return list(rows.all())


async def get_notice(session: AsyncSession, notice_id: int) -> Notice:
    """The notice with this id, or :class:`UnknownNotice`."""
    row = await session.get(Notice, notice_id)
    if row is None:
        raise UnknownNotice(f"no notice {notice_id}")
    return row


async def recipient_of(
    session: AsyncSession, notice_id: int, account_id: int
) -> NoticeRecipient | None:
    """The account's copy of a notice, if it was sent to them."""
    return await session.scalar(
        select(NoticeRecipient).where(
            NoticeRecipient.notice_id == notice_id, NoticeRecipient.account_id == account_id
        )
    )


async def recipients_of(
    session: AsyncSession, notice_id: int, districts: frozenset[str] | None = None
) -> list[NoticeRecipient]:
    """The recipients of a notice (optionally of some districts only), by district and village."""
    cond: list[ColumnElement[bool]] = [NoticeRecipient.notice_id == notice_id]
    if districts is not None:
        cond.append(NoticeRecipient.district_code.in_(sorted(districts)))
    rows = await session.scalars(
        select(NoticeRecipient)
        .where(*cond)
        .order_by(NoticeRecipient.district_code, NoticeRecipient.village_code, NoticeRecipient.id)
    )
    return list(rows.all())


async def inbox(
    session: AsyncSession, account_id: int, limit: int, offset: int
) -> tuple[list[tuple[Notice, NoticeRecipient]], int, int]:
    """A village head's notices, unread first then newest first; the total and the unread count."""
    mine = NoticeRecipient.account_id == account_id
    rows = await session.execute(
        select(Notice, NoticeRecipient)
        .join(NoticeRecipient, NoticeRecipient.notice_id == Notice.id)
        .where(mine)
        .order_by(
            case((NoticeRecipient.read_at.is_(None), 0), else_=1),
            Notice.created_at.desc(),
            Notice.id.desc(),
        )
        .limit(limit)
        .offset(offset)
    )
    total, unread = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((NoticeRecipient.read_at.is_(None), 1), else_=0)), 0),
            ).where(mine)
        )
    ).one()
    return [(n, r) for n, r in rows.all()], int(total), int(unread)


async def sent_notices(
    session: AsyncSession, account: Account, limit: int, offset: int
) -> tuple[list[Notice], int]:
    """Notices a staff account may follow, newest first: all (admins), else theirs or to their
    district."""
    cond: list[ColumnElement[bool]] = []
    if account.role != "admin":
        to_district = select(NoticeRecipient.notice_id).where(
            NoticeRecipient.district_code == account.region_code
        )
        cond.append((Notice.sender_id == account.id) | Notice.id.in_(to_district))
    total = await session.scalar(select(func.count()).select_from(Notice).where(*cond)) or 0
    rows = await session.scalars(
        select(Notice)
        .where(*cond)
        .order_by(Notice.created_at.desc(), Notice.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total)


@dataclass(slots=True)
class Counts:
    """Receipt counts of one notice and district."""

    recipients: int = 0
    read: int = 0
    acked: int = 0
    replied: int = 0
    aired: int = 0
    overdue: int = 0
    districts: set[str] = field(default_factory=set)

    def add(self, other: Counts) -> None:
        """Add another district's counts."""
        self.recipients += other.recipients
        self.read += other.read
        self.acked += other.acked
        self.replied += other.replied
        self.aired += other.aired
        self.overdue += other.overdue


def _n(column: Any) -> ColumnElement[int]:
    """How many rows have this column set."""
    return func.coalesce(func.sum(case((column.is_not(None), 1), else_=0)), 0)


async def counts_by_notice(
    session: AsyncSession, notice_ids: Sequence[int], now: datetime
) -> dict[int, dict[str, Counts]]:
    """Per notice, per district: recipients, read, acknowledged, replied, aired, overdue."""
    if not notice_ids:
        return {}
    r = NoticeRecipient
    overdue = func.coalesce(
        func.sum(
            case(
                (
                    (Notice.requires_ack.is_(True))
                    & (Notice.due_at.is_not(None))
                    & (Notice.due_at <= now)
                    & (r.acked_at.is_(None)),
                    1,
                ),
                else_=0,
            )
        ),
        0,
    )
    rows = await session.execute(
        select(
            r.notice_id,
            r.district_code,
            func.count(),
            _n(r.read_at),
            _n(r.acked_at),
            _n(r.replied_at),
            _n(r.aired_at),
            overdue,
        )
        .join(Notice, Notice.id == r.notice_id)
        .where(r.notice_id.in_(list(notice_ids)))
        .group_by(r.notice_id, r.district_code)
    )
    out: dict[int, dict[str, Counts]] = {}
    for nid, district, total, read, acked, replied, aired, late in rows.all():
        out.setdefault(nid, {})[district] = Counts(
            int(total), int(read), int(acked), int(replied), int(aired), int(late)
        )
    return out


async def attachments_of(
    session: AsyncSession, notice_id: int, reply_ids: Iterable[int] | None = None
) -> list[NoticeAttachment]:
    """The notice's own files (``reply_ids`` None) or the files of these replies."""
    cond: list[ColumnElement[bool]] = [NoticeAttachment.notice_id == notice_id]
    if reply_ids is None:
        cond.append(NoticeAttachment.reply_id.is_(None))
    else:
        cond.append(NoticeAttachment.reply_id.in_(list(reply_ids)))
    rows = await session.scalars(
        select(NoticeAttachment).where(*cond).order_by(NoticeAttachment.id)
    )
    return list(rows.all())


async def replies_of(
    session: AsyncSession, notice_id: int, recipient_ids: Iterable[int] | None = None
) -> list[NoticeReply]:
    """The replies of a notice (optionally of some recipients only), oldest first."""
    cond: list[ColumnElement[bool]] = [NoticeReply.notice_id == notice_id]
    if recipient_ids is not None:
        cond.append(NoticeReply.recipient_id.in_(list(recipient_ids)))
    rows = await session.scalars(select(NoticeReply).where(*cond).order_by(NoticeReply.id))
    return list(rows.all())
