"""Errors of the broadcast package: one root, leaves in the shared categories."""

from __future__ import annotations

from devices.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    VillagecastError,
)

__all__ = [
    "AnnouncementNotReady",
    "BroadcastError",
    "EmptyTarget",
    "InQuietHours",
    "InvalidSchedule",
    "NotCancellable",
    "TargetForbidden",
    "UnknownAnnouncement",
    "UnknownBroadcast",
    "UnknownSession",
]


class BroadcastError(VillagecastError):
    """Broadcast error."""


class InvalidSchedule(BroadcastError, InvalidError):
    """The time or recurrence of the broadcast is not valid."""

    title_ko = "방송 시간 또는 반복 설정이 올바르지 않습니다"


class EmptyTarget(BroadcastError, InvalidError):
    """The broadcast targets no village."""

    title_ko = "방송할 마을을 선택하세요"


class InQuietHours(BroadcastError, InvalidError):
    """The broadcast would start during quiet hours."""

    title_ko = "야간 방송 제한 시간입니다"


class TargetForbidden(BroadcastError, ForbiddenError):
    """Your account may not broadcast there."""

    title_ko = "이 지역에 방송할 권한이 없습니다"


class UnknownAnnouncement(BroadcastError, NotFoundError):
    """Unknown announcement."""

    title_ko = "알 수 없는 안내 방송 음원입니다"


class AnnouncementNotReady(BroadcastError, ConflictError):
    """The announcement is not ready to broadcast."""

    title_ko = "안내 방송 음원이 아직 준비되지 않았습니다"


class UnknownBroadcast(BroadcastError, NotFoundError):
    """Unknown broadcast."""

    title_ko = "알 수 없는 방송입니다"


class NotCancellable(BroadcastError, ConflictError):
    """The broadcast has already ended."""

    title_ko = "이미 끝난 방송은 취소할 수 없습니다"


class UnknownSession(BroadcastError, NotFoundError):
    """No such live session."""

    title_ko = "그런 생방송이 없습니다"
