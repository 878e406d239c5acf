"""Errors of disaster-alert ingest: leaves of the broadcast root in the shared categories."""

from __future__ import annotations

from devices.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
    TooLargeError,
    UnsupportedMediaError,
)

from ..errors import BroadcastError

__all__ = [
    "AlertNotPending",
    "AlertTooLarge",
    "AlertUnsafeXml",
    "InvalidAlert",
    "NotCapXml",
    "UnknownAlert",
]


class InvalidAlert(BroadcastError, InvalidError):
    """The CAP 1.2 document is not valid."""

    title_ko = "재난 경보(CAP 1.2) 문서가 올바르지 않습니다"


class NotCapXml(BroadcastError, UnsupportedMediaError):
    """The body is not a CAP 1.2 XML document."""

    title_ko = "CAP 1.2 XML 문서가 아닙니다"


class AlertTooLarge(BroadcastError, TooLargeError):
    """The CAP document is too large."""

    title_ko = "경보 문서가 너무 큽니다"


class AlertUnsafeXml(InvalidAlert):
    """The CAP document uses DTDs or entities, which are refused."""

    title_ko = "DTD·엔티티가 있는 경보 문서는 받지 않습니다"


class UnknownAlert(BroadcastError, NotFoundError):
    """No such alert."""

    title_ko = "경보를 찾을 수 없습니다"


class AlertNotPending(BroadcastError, ConflictError):
    """The alert does not wait for a decision."""

    title_ko = "승인을 기다리는 경보가 아닙니다"
