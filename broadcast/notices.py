"""Notices to village heads (스마트 이장넷), pure: who may send and see, drafts, receipts.

No I/O here: files are judged in :mod:`broadcast.notice_files`, the SQL is in
:mod:`broadcast.notice_store`, the orchestration (events, the on-air door) in
:mod:`broadcast.notice_service`. Everything takes values — including ``now`` — and
returns values, so every rule is tested directly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from devices import policy
from devices.errors import (
    ConflictError,
    ForbiddenError,
    InvalidField,
    NotFoundError,
    VillagecastError,
)
from devices.targets import RegionTree, Targets

from .errors import InvalidSchedule
from .scheduling import parse_instant

__all__ = [
    "DistrictRate",
    "NotARecipient",
    "NothingToAir",
    "NoticeDraft",
    "NoticeError",
    "ReceiptLike",
    "UnknownNotice",
    "check_sender",
    "district_rates",
    "is_overdue",
    "parse_draft",
    "parse_reply",
    "receipts_csv",
    "staff_sees",
    "timeline",
]

MAX_TITLE = 200
MAX_BODY = 10_000
MAX_BROADCAST_TEXT = 2000
MAX_REPLY = 2000
DRAFT_FIELDS = ("title", "body", "targets", "requires_ack", "due_at", "broadcast_text")


# --- errors -----------------------------------------------------------------------------------


class NoticeError(VillagecastError):
    """Notice error."""


class UnknownNotice(NoticeError, NotFoundError):
    """Unknown notice."""

    title_ko = "알 수 없는 공지입니다"


class NotARecipient(NoticeError, ForbiddenError):
    """Only the village heads it was sent to can do this."""

    title_ko = "이 공지를 받은 이장님만 할 수 있습니다"


class NotASender(NoticeError, ForbiddenError):
    """Only county and district staff can do this."""

    title_ko = "군청·읍면 담당자만 할 수 있습니다"


class NothingToAir(NoticeError, ConflictError):
    """This notice has no text or audio to air."""

    title_ko = "이 공지에는 방송할 문구나 음성이 없습니다"


# --- drafts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """A parsed ``POST /api/v1/notices`` (without its files)."""

    title: str
    body: str
    targets: Targets
    requires_ack: bool = False
    due_at: datetime | None = None
    broadcast_text: str | None = None


def _text(data: Mapping[str, Any], name: str, max_len: int, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise InvalidField(f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise InvalidField(f"{name} must be a string", field=name)
    value = value.replace("\r\n", "\n").strip()
    if required and not value:
        raise InvalidField(f"{name} must not be empty", field=name)
    if len(value) > max_len:
        raise InvalidField(f"{name} must be at most {max_len} characters", field=name)
    if any((ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 for ch in value):
        raise InvalidField(f"{name} must not contain control characters", field=name)
    return value or None


def _bool(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if isinstance(value, str) and value in ("true", "false", "1", "0", "on", ""):
        return value in ("true", "1", "on")  # multipart form fields are strings
    if not isinstance(value, bool):
        raise InvalidField(f"{name} must be true or false", field=name)
    return value


def parse_draft(data: Mapping[str, Any], *, now: datetime, tz: ZoneInfo) -> NoticeDraft:
    """A notice draft from its JSON (or form) fields; :class:`InvalidField` for what is wrong."""
    unknown = sorted(set(data) - set(DRAFT_FIELDS))
    if unknown:
        raise InvalidField(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    title = _text(data, "title", MAX_TITLE, required=True)
    assert title is not None
    if "\n" in title:
        raise InvalidField("title must be one line", field="title")
    targets = Targets.from_json(data.get("targets"))
    if targets.groups:
        raise InvalidField(
            "notices go to villages, districts or the county, not speaker groups", field="groups"
        )
    due_at = None
    raw_due = data.get("due_at")
    if raw_due not in (None, ""):
        try:
            due_at = parse_instant(raw_due, tz)
        except InvalidSchedule:
            raise InvalidField("due_at must be an ISO 8601 time", field="due_at") from None
        if due_at <= now:
            raise InvalidField("due_at must be in the future", field="due_at")
    requires_ack = _bool(data, "requires_ack")
    if due_at is not None and not requires_ack:
        raise InvalidField("due_at needs requires_ack: true", field="due_at")
    return NoticeDraft(
        title=title,
        body=_text(data, "body", MAX_BODY, required=False) or "",
        targets=targets,
        requires_ack=requires_ack,
        due_at=due_at,
        broadcast_text=_text(data, "broadcast_text", MAX_BROADCAST_TEXT, required=False),
    )


def parse_reply(data: Mapping[str, Any], *, photos: int) -> str:
    """The text of a reply: ``body`` (may be empty when photos come with it)."""
    unknown = sorted(set(data) - {"body"})
    if unknown:
        raise InvalidField(f"unknown field(s): {', '.join(unknown)}", fields=unknown)
    body = _text(data, "body", MAX_REPLY, required=photos == 0) or ""
    return body


# --- who may do what ----------------------------------------------------------------------------


class AccountLike(Protocol):
    """A staff account (ORM ``Account`` or any value with these)."""

    @property
    def id(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def region_code(self) -> str: ...


def check_sender(account: AccountLike, targets: Targets, tree: RegionTree) -> None:
    """Refuse unless the account may send a notice to every target (county or district staff)."""
    if account.role not in ("admin", "district"):
        raise NotASender("village heads receive notices; county and district staff send them")
    for code in (*targets.districts, *targets.villages):
        tree.node(code)  # an unknown region is a 404 problem, whoever asks
    policy.check_targets(account, targets, tree)


def staff_sees(
    account: AccountLike, sender_id: int | None, districts: Iterable[str]
) -> frozenset[str] | None:
    """Which districts' receipts a staff account sees: None for all, else the codes (may be empty).

    County admins see every notice whole; a district officer sees the receipts of their own
    district, and the whole of a notice they sent themselves (only ever to their district).
    """
    if account.role == "admin" or (sender_id is not None and sender_id == account.id):
        return None
    if account.role == "district":
        return frozenset(d for d in districts if d == account.region_code)
    return frozenset()


# --- receipts -----------------------------------------------------------------------------------


class ReceiptLike(Protocol):
    """One recipient's receipt (ORM ``NoticeRecipient`` or any value with these)."""

    @property
    def district_code(self) -> str: ...
    @property
    def read_at(self) -> datetime | None: ...
    @property
    def acked_at(self) -> datetime | None: ...
    @property
    def replied_at(self) -> datetime | None: ...
    @property
    def aired_at(self) -> datetime | None: ...


def is_overdue(
    receipt: ReceiptLike, requires_ack: bool, due_at: datetime | None, now: datetime
) -> bool:
    """Whether a confirmation was asked for by a time that passed without it."""
    return requires_ack and due_at is not None and receipt.acked_at is None and due_at <= now


@dataclass(frozen=True, slots=True)
class DistrictRate:
    """Counts and rates of one district (or of all, ``district=""``)."""

    district: str
    recipients: int
    read: int
    acked: int
    replied: int
    aired: int
    overdue: int

    @property
    def read_rate(self) -> float:
        """Read / recipients (0 when none)."""
        return round(self.read / self.recipients, 4) if self.recipients else 0.0

    @property
    def ack_rate(self) -> float:
        """Acknowledged / recipients (0 when none)."""
        return round(self.acked / self.recipients, 4) if self.recipients else 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON of the rates."""
        return {
            "district": self.district,
            "recipients": self.recipients,
            "read": self.read,
            "acknowledged": self.acked,
            "replied": self.replied,
            "aired": self.aired,
            "overdue": self.overdue,
            "read_rate": self.read_rate,
            "ack_rate": self.ack_rate,
        }


def _rate(district: str, rows: Sequence[ReceiptLike], overdue: int) -> DistrictRate:
    return DistrictRate(
        district=district,
        recipients=len(rows),
        read=sum(r.read_at is not None for r in rows),
        acked=sum(r.acked_at is not None for r in rows),
        replied=sum(r.replied_at is not None for r in rows),
        aired=sum(r.aired_at is not None for r in rows),
        overdue=overdue,
    )


def district_rates(
    rows: Sequence[ReceiptLike], requires_ack: bool, due_at: datetime | None, now: datetime
) -> tuple[DistrictRate, list[DistrictRate]]:
    """The totals and the rates per district (in the order districts first appear)."""
    by: dict[str, list[ReceiptLike]] = {}
    for r in rows:
        by.setdefault(r.district_code, []).append(r)

    def overdue(group: Sequence[ReceiptLike]) -> int:
        return sum(is_overdue(r, requires_ack, due_at, now) for r in group)

    return _rate("", rows, overdue(rows)), [_rate(d, g, overdue(g)) for d, g in by.items()]


def timeline(rows: Sequence[ReceiptLike]) -> list[dict[str, Any]]:
    """Cumulative reads and confirmations over time, one point per change (for the chart)."""
    changes = sorted(
        [(r.read_at, "read") for r in rows if r.read_at is not None]
        + [(r.acked_at, "acked") for r in rows if r.acked_at is not None]
    )
    counts = {"read": 0, "acked": 0}
    out: list[dict[str, Any]] = []
    for at, what in changes:
        counts[what] += 1
        out.append({"at": at, "read": counts["read"], "acknowledged": counts["acked"]})
    return out


CSV_HEADER = (
    "district", "village", "village_head", "read_at", "acknowledged_at", "replied_at",
    "replies", "reminders", "aired_at", "broadcast_id", "overdue",
)  # fmt: skip


def receipts_csv(lines: Iterable[Sequence[Any]]) -> bytes:
    """The receipts as CSV for Excel (UTF-8 with BOM); ``lines`` follow :data:`CSV_HEADER`."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in lines:
        writer.writerow(["" if v is None else _csv_safe(v) for v in line])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _csv_safe(value: Any) -> Any:
    """Neutralise cells a spreadsheet would run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
