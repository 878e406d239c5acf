"""Notices to village heads, orchestrated: send, open, confirm, reply, receipts, remind, air.

:class:`NoticeService` is built once by ``web/api_notices.py``. It applies the rules of
:mod:`broadcast.notices`, the SQL of :mod:`broadcast.notice_store`, stores files in the archive
(audio through the recordings ingest), audits, publishes ``notice.*`` events to the recipients
after each commit, and airs a notice through the one on-air door
(:meth:`broadcast.onair.OnAir.send`, dry run first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from devices import store as devices_store
from devices.models import Account
from devices.targets import RegionTree, Targets
from recordings.service import IngestService

from . import notice_store as nstore
from .errors import AnnouncementNotReady
from .notice_files import MAX_ATTACHMENTS, IncomingFile, NoticeFiles, UnsupportedAttachment, discard
from .notice_models import Notice, NoticeAttachment, NoticeRecipient, NoticeReply
from .notices import (
    NotARecipient,
    NotASender,
    NothingToAir,
    NoticeDraft,
    UnknownNotice,
    check_sender,
    parse_reply,
    staff_sees,
)
from .onair import OnAir
from .onair import Sent as Aired
from .planner import AirRequest, Staff
from .store import mp3_rendition

__all__ = ["NoticeService", "NoticeView", "Receipts", "Sent"]

AIR_WAIT_S = 60.0  # how long "air it" waits for the spoken announcement to be ready

Publish = Callable[..., None]
SessionMaker = Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Sent:
    """A notice just sent: its row, how many heads got it, the villages without a head."""

    notice: Notice
    recipients: int
    headless: list[str]


@dataclass(slots=True)
class NoticeView:
    """What one account sees of one notice."""

    notice: Notice
    attachments: list[NoticeAttachment]
    recipient: NoticeRecipient | None  # the reader's own copy (village heads)
    replies: list[NoticeReply] = field(default_factory=list)
    reply_files: dict[int, list[NoticeAttachment]] = field(default_factory=dict)
    scope: frozenset[str] | None = None  # districts of the receipts a staff reader sees
    heads: dict[int, NoticeRecipient] = field(default_factory=dict)  # recipient id → row

    @property
    def can_air(self) -> bool:
        """Whether the notice carries something to air (text or audio)."""
        return bool(self.notice.broadcast_text) or any(a.kind == "audio" for a in self.attachments)


@dataclass(frozen=True, slots=True)
class Receipts:
    """The receipts of a notice as one staff account may see them."""

    notice: Notice
    recipients: list[NoticeRecipient]
    replies: list[NoticeReply]
    reply_files: dict[int, list[NoticeAttachment]]
    headless: list[str]


class NoticeService:
    """Notices to village heads over one database, archive, event bus and on-air door."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        ingest: IngestService,
        onair: OnAir,
        publish: Publish,
        tz: ZoneInfo,
    ) -> None:
        self._sm = sessionmaker
        self._ingest = ingest
        self._files = NoticeFiles(ingest)
        self._onair = onair
        self._publish = publish
        self.tz = tz

    def now(self) -> datetime:
        """The time of the on-air door's clock."""
        return self._onair.clock.now()

    # --- send -------------------------------------------------------------------------------

    async def send(
        self, account: Account, draft: NoticeDraft, files: Sequence[IncomingFile]
    ) -> Sent:
        """Check rights and files, resolve the village heads, store it all, tell the heads."""
        try:
            async with self._sm() as session:
                tree = await devices_store.load_tree(session)
                check_sender(account, draft.targets, tree)
                villages = sorted((await devices_store.resolve(session, draft.targets)).villages)
            if len(files) > MAX_ATTACHMENTS:
                raise UnsupportedAttachment(f"at most {MAX_ATTACHMENTS} attachments per notice")
            checked = [await self._files.check(f, photos_only=False) for f in files]
            stored = [await self._files.store(c, account) for c in checked]
        finally:
            await discard(files)
        async with self._sm() as session:
            heads = await nstore.heads_of_villages(session, villages)
            with_head = {h.region_code for h in heads}
            headless = [v for v in villages if v not in with_head]
            notice = Notice(
                title=draft.title,
                body=draft.body,
                sender_id=account.id,
                sender_name=account.display_name or account.username,
                sender_region=account.region_code,
                targets=draft.targets.to_json(),
                villages=villages,
                headless=headless,
                requires_ack=draft.requires_ack,
                due_at=draft.due_at,
                broadcast_text=draft.broadcast_text,
                created_at=self.now(),
            )
            session.add(notice)
            await session.flush()
            for head in heads:
                session.add(
                    NoticeRecipient(
                        notice_id=notice.id,
                        account_id=head.id,
                        head_name=head.display_name or head.username,
                        village_code=head.region_code,
                        district_code=_district(tree, head.region_code),
                    )
                )
            for att in stored:
                att.notice_id = notice.id
                session.add(att)
            devices_store.audit(
                session, devices_store.actor_of(account), "notice.send", f"notice:{notice.id}",
                account.region_code, note=notice.title, villages=villages,
                recipients=len(heads), headless=headless, attachments=len(stored),
                requires_ack=draft.requires_ack,
            )  # fmt: skip
            await session.commit()
        self._publish(
            "notice.created", notice_id=notice.id, title=notice.title,
            account_ids=[h.id for h in heads], requires_ack=notice.requires_ack,
        )  # fmt: skip
        return Sent(notice, len(heads), headless)

    # --- who sees what ------------------------------------------------------------------------

    async def _visible(
        self, session: AsyncSession, account: Account, notice_id: int
    ) -> tuple[Notice, NoticeRecipient | None, frozenset[str] | None]:
        """The notice, the reader's own copy, and the districts of receipts they see.

        A notice the account may not see answers exactly like a missing one.
        """
        notice = await nstore.get_notice(session, notice_id)
        if account.role == "village":
            mine = await nstore.recipient_of(session, notice_id, account.id)
            if mine is None:
                raise UnknownNotice(f"no notice {notice_id}")
            return notice, mine, frozenset()
        if account.role == "admin":
            return notice, None, None  # the county sees every notice whole (no tree needed)
        tree = await devices_store.load_tree(session)
        districts = {_district(tree, v) for v in notice.villages}
        scope = staff_sees(account, notice.sender_id, districts)
        if scope is not None and not scope:
            raise UnknownNotice(f"no notice {notice_id}")
        return notice, None, scope

    async def _own_copy(
        self, session: AsyncSession, account: Account, notice_id: int
    ) -> tuple[Notice, NoticeRecipient]:
        notice, mine, _ = await self._visible(session, account, notice_id)
        if mine is None:
            raise NotARecipient("only the village heads it was sent to can do this")
        return notice, mine

    # --- read -------------------------------------------------------------------------------

    async def listing(
        self, account: Account, limit: int, offset: int
    ) -> tuple[list[tuple[Notice, NoticeRecipient | None, nstore.Counts | None]], int, int]:
        """The inbox of a village head, or the notices a staff account follows (with counts)."""
        async with self._sm() as session:
            if account.role == "village":
                rows, total, unread = await nstore.inbox(session, account.id, limit, offset)
                return [(n, r, None) for n, r in rows], total, unread
            notices, total = await nstore.sent_notices(session, account, limit, offset)
            counts = await nstore.counts_by_notice(session, [n.id for n in notices], self.now())
        out: list[tuple[Notice, NoticeRecipient | None, nstore.Counts | None]] = []
        for n in notices:
            scope = staff_sees(account, n.sender_id, counts.get(n.id, {}).keys())
            total_counts = nstore.Counts()
            for district, c in counts.get(n.id, {}).items():
                if scope is None or district in scope:
                    total_counts.add(c)
            out.append((n, None, total_counts))
        return out, total, 0

    async def open(self, account: Account, notice_id: int) -> NoticeView:
        """A notice as the account sees it; a village head opening it records the read receipt."""
        async with self._sm() as session:
            notice, mine, scope = await self._visible(session, account, notice_id)
            first_read = mine is not None and mine.read_at is None
            if mine is not None and first_read:
                mine.read_at = self.now()
                await session.commit()
            view = NoticeView(notice, await nstore.attachments_of(session, notice.id), mine)
            view.scope = scope
            if mine is not None:
                view.replies = await nstore.replies_of(session, notice.id, [mine.id])
                view.heads = {mine.id: mine}
            else:
                heads = await nstore.recipients_of(session, notice.id, scope)
                view.heads = {h.id: h for h in heads}
                view.replies = await nstore.replies_of(session, notice.id, list(view.heads))
            view.reply_files = await self._reply_files(session, notice.id, view.replies)
        if first_read and notice.sender_id is not None and mine is not None:
            self._receipt_event("notice.read", notice, mine)
        return view

    async def _reply_files(
        self, session: AsyncSession, notice_id: int, replies: Sequence[NoticeReply]
    ) -> dict[int, list[NoticeAttachment]]:
        out: dict[int, list[NoticeAttachment]] = {}
        if replies:
            for att in await nstore.attachments_of(session, notice_id, [r.id for r in replies]):
                out.setdefault(att.reply_id or 0, []).append(att)
        return out

    def _receipt_event(self, kind: str, notice: Notice, row: NoticeRecipient) -> None:
        if notice.sender_id is not None:
            self._publish(kind, notice_id=notice.id, village=row.village_code,
                          account_ids=[notice.sender_id])  # fmt: skip

    async def attachment(
        self, account: Account, notice_id: int, attachment_id: int
    ) -> tuple[NoticeAttachment, Path]:
        """A file of a notice (or of a reply the account may see) and its path on disk."""
        async with self._sm() as session:
            _, mine, scope = await self._visible(session, account, notice_id)
            att = await session.get(NoticeAttachment, attachment_id)
            if att is None or att.notice_id != notice_id:
                raise UnknownNotice(f"no attachment {attachment_id} of notice {notice_id}")
            if att.reply_id is not None:
                reply = await session.get(NoticeReply, att.reply_id)
                owner = await session.get(NoticeRecipient, reply.recipient_id) if reply else None
                allowed = owner is not None and (
                    owner.id == mine.id if mine is not None
                    else scope is None or owner.district_code in scope
                )  # fmt: skip
                if not allowed:
                    raise UnknownNotice(f"no attachment {attachment_id} of notice {notice_id}")
            if att.kind == "audio":
                rendition = await mp3_rendition(session, att.announcement_id or 0)
                if rendition is None:
                    raise AnnouncementNotReady("the audio is still being processed")
                return att, self._ingest.rendition_path(rendition)
        return att, self._ingest.archive.absolute(att.path or "")

    # --- the village head's actions -------------------------------------------------------------

    async def ack(self, account: Account, notice_id: int) -> NoticeRecipient:
        """Confirm a notice (once; confirming again keeps the first time). Opening it counts."""
        async with self._sm() as session:
            notice, mine = await self._own_copy(session, account, notice_id)
            now = self.now()
            first = mine.acked_at is None
            mine.read_at = mine.read_at or now
            mine.acked_at = mine.acked_at or now
            if first:
                devices_store.audit(session, devices_store.actor_of(account), "notice.ack",
                                    f"notice:{notice.id}", mine.village_code)  # fmt: skip
            await session.commit()
        if first:
            self._receipt_event("notice.acknowledged", notice, mine)
        return mine

    async def reply(
        self,
        account: Account,
        notice_id: int,
        fields: Mapping[str, Any],
        photos: Sequence[IncomingFile],
    ) -> tuple[NoticeReply, list[NoticeAttachment]]:
        """Reply to a notice with text (``fields["body"]``) and photos; audited."""
        try:
            async with self._sm() as session:
                await self._own_copy(session, account, notice_id)
            body = parse_reply(fields, photos=len(photos))
            if len(photos) > MAX_ATTACHMENTS:
                raise UnsupportedAttachment(f"at most {MAX_ATTACHMENTS} photos per reply")
            checked = [await self._files.check(f, photos_only=True) for f in photos]
            stored = [await self._files.store(c, account) for c in checked]
        finally:
            await discard(photos)
        async with self._sm() as session:
            notice, mine = await self._own_copy(session, account, notice_id)
            now = self.now()
            row = NoticeReply(notice_id=notice.id, recipient_id=mine.id, body=body, created_at=now)
            session.add(row)
            await session.flush()
            for att in stored:
                att.notice_id, att.reply_id = notice.id, row.id
                session.add(att)
            mine.read_at = mine.read_at or now
            mine.replied_at = mine.replied_at or now
            mine.replies = (mine.replies or 0) + 1
            devices_store.audit(
                session, devices_store.actor_of(account), "notice.reply", f"notice:{notice.id}",
                mine.village_code, note=body[:200], reply_id=row.id, photos=len(stored),
            )  # fmt: skip
            await session.commit()
        self._receipt_event("notice.replied", notice, mine)
        return row, stored

    async def air(
        self, account: Account, notice_id: int, *, dry_run: bool, defer_quiet: bool = False
    ) -> Aired:
        """Air the notice to the head's own village through the one on-air door (plan first)."""
        async with self._sm() as session:
            notice, mine = await self._own_copy(session, account, notice_id)
            announcement_id = mine.air_announcement_id
            spoken = announcement_id is not None  # the head's own TTS, not the sender's audio
            if announcement_id is None and not notice.broadcast_text:
                audio = [
                    a for a in await nstore.attachments_of(session, notice.id) if a.kind == "audio"
                ]
                announcement_id = audio[0].announcement_id if audio else None
                if announcement_id is None:
                    raise NothingToAir(f"notice {notice.id} has no broadcast text or audio")
        if announcement_id is None:
            assert notice.broadcast_text is not None
            announcement_id = await self._ingest.submit_text(
                " ".join(notice.broadcast_text.split()), title=notice.title,
                created_by=account.id, region_code=account.region_code,
            )  # fmt: skip
            async with self._sm() as session:
                row = await session.get(NoticeRecipient, mine.id)
                assert row is not None
                row.air_announcement_id = announcement_id
                await session.commit()
            spoken = True
        try:
            status = await self._ingest.wait_ready(announcement_id, AIR_WAIT_S)
        except TimeoutError:
            raise AnnouncementNotReady("the announcement is still being made; try again") from None
        if status == "failed" and spoken:
            async with self._sm() as session:  # the next try speaks it again
                row = await session.get(NoticeRecipient, mine.id)
                if row is not None and row.air_announcement_id == announcement_id:
                    row.air_announcement_id = None
                    await session.commit()
        req = AirRequest(
            announcement_id=announcement_id,
            targets=Targets(villages=(mine.village_code,)),
            defer_quiet=defer_quiet,
            dry_run=dry_run,
            announcement_granted=True,  # the notice gave its recipient this audio (or text) to air
        )
        created = await self._onair.send(Staff(account), req)
        async with self._sm() as session:
            if created.broadcast is not None:
                row = await session.get(NoticeRecipient, mine.id)
                assert row is not None
                row.aired_at = row.aired_at or self.now()
                row.broadcast_id = created.broadcast.id
                row.read_at = row.read_at or self.now()
                devices_store.audit(
                    session, devices_store.actor_of(account), "notice.air", f"notice:{notice.id}",
                    mine.village_code, broadcast_id=created.broadcast.id,
                    announcement_id=announcement_id,
                )  # fmt: skip
            await session.commit()
        if created.broadcast is not None:
            self._receipt_event("notice.aired", notice, mine)
        return created

    # --- the sender's follow-up -------------------------------------------------------------------

    async def receipts(self, account: Account, notice_id: int) -> Receipts:
        """Per recipient: read, acknowledged, replied, aired (district officers: their district)."""
        async with self._sm() as session:
            notice, mine, scope = await self._visible(session, account, notice_id)
            if mine is not None:
                raise NotASender("receipts are for the county and district staff")
            rows = await nstore.recipients_of(session, notice.id, scope)
            replies = await nstore.replies_of(session, notice.id, [r.id for r in rows])
            files = await self._reply_files(session, notice.id, replies)
            headless = list(notice.headless)
            if scope is not None:
                tree = await devices_store.load_tree(session)
                headless = [v for v in headless if _district(tree, v) in scope]
        return Receipts(notice, rows, replies, files, headless)

    async def remind(self, account: Account, notice_id: int) -> list[NoticeRecipient]:
        """Remind the recipients (in the account's scope) who have not read it; audited."""
        async with self._sm() as session:
            notice, mine, scope = await self._visible(session, account, notice_id)
            if mine is not None:
                raise NotASender("reminders are sent by the county and district staff")
            now = self.now()
            unread = [
                r
                for r in await nstore.recipients_of(session, notice.id, scope)
                if r.read_at is None
            ]
            for r in unread:
                r.reminded_at = now
                r.reminders = (r.reminders or 0) + 1
            devices_store.audit(
                session, devices_store.actor_of(account), "notice.remind", f"notice:{notice.id}",
                account.region_code, reminded=len(unread),
                villages=[r.village_code for r in unread],
            )  # fmt: skip
            await session.commit()
        if unread:
            self._publish("notice.reminder", notice_id=notice.id, title=notice.title,
                          account_ids=[r.account_id for r in unread])  # fmt: skip
        return unread


def _district(tree: RegionTree, village: str) -> str:
    return tree.district_of(village) if village in tree else ""
