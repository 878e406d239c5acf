"""The root of every villagecast error, its categories, and the registry's own errors.

Every package's ``errors.py`` defines one root (subclass of :class:`VillagecastError`) and leaves
that also inherit one *category* below; ``web/`` maps categories to HTTP statuses in one table.
Each leaf has a one-line docstring (its English title) and a ``title_ko``.
"""

from __future__ import annotations

from typing import Any


class VillagecastError(Exception):
    """Something went wrong."""

    title_ko = "오류가 발생했습니다"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title_en())
        self.detail = detail or self.title_en()
        self.extra = extra

    @classmethod
    def title_en(cls) -> str:
        """The English title: the first line of the class docstring."""
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


# Categories (web/ maps each to one HTTP status).
class InvalidError(VillagecastError):
    """The request is not valid."""

    title_ko = "요청이 올바르지 않습니다"


class NotFoundError(VillagecastError):
    """Not found."""

    title_ko = "찾을 수 없습니다"


class UnauthorizedError(VillagecastError):
    """Authentication required."""

    title_ko = "로그인이 필요합니다"


class ForbiddenError(VillagecastError):
    """Not allowed."""

    title_ko = "권한이 없습니다"


class ConflictError(VillagecastError):
    """Conflicts with the current state."""

    title_ko = "현재 상태와 맞지 않습니다"


class TooLargeError(VillagecastError):
    """Too large."""

    title_ko = "너무 큽니다"


class UnsupportedMediaError(VillagecastError):
    """Unsupported media type."""

    title_ko = "지원하지 않는 형식입니다"


class RateLimitedError(VillagecastError):
    """Too many requests."""

    title_ko = "요청이 너무 많습니다. 잠시 후 다시 시도하세요"


class UnavailableError(VillagecastError):
    """Temporarily unavailable."""

    title_ko = "일시적으로 사용할 수 없습니다"


class InsufficientStorageError(VillagecastError):
    """Insufficient storage."""

    title_ko = "저장 공간이 부족합니다"


# The registry's own errors.
class DevicesError(VillagecastError):
    """Registry error."""


class UnknownRegion(DevicesError, NotFoundError):
    """Unknown region code."""

    title_ko = "알 수 없는 지역 코드입니다"


class UnknownDevice(DevicesError, NotFoundError):
    """Unknown device."""

    title_ko = "알 수 없는 장치입니다"


class UnknownListener(DevicesError, NotFoundError):
    """Unknown listener."""

    title_ko = "알 수 없는 청취자입니다"


class BadCredentials(DevicesError, UnauthorizedError):
    """Wrong username or password."""

    title_ko = "아이디 또는 비밀번호가 틀렸습니다"


class BadToken(DevicesError, UnauthorizedError):
    """Missing, unknown or revoked token."""

    title_ko = "토큰이 없거나 올바르지 않습니다"


class PendingApproval(DevicesError, ForbiddenError):
    """This registration waits for the village head's approval."""

    title_ko = "이장님의 승인을 기다리고 있습니다"


class NotPermitted(DevicesError, ForbiddenError):
    """Your account may not do this here."""

    title_ko = "이 지역에 대한 권한이 없습니다"


class InvalidField(DevicesError, InvalidError):
    """A field is missing or not valid."""

    title_ko = "입력값이 올바르지 않습니다"


class AlreadyExists(DevicesError, ConflictError):
    """Already exists."""

    title_ko = "이미 존재합니다"


class UnknownToken(DevicesError, NotFoundError):
    """Unknown API token."""

    title_ko = "알 수 없는 API 토큰입니다"


class UnknownAccount(DevicesError, NotFoundError):
    """Unknown staff account."""

    title_ko = "알 수 없는 계정입니다"


class NoSuchGroup(DevicesError, NotFoundError):
    """Unknown device group."""

    title_ko = "알 수 없는 장치 그룹입니다"


class UnknownGroup(InvalidField):
    """Unknown device group."""

    title_ko = "알 수 없는 장치 그룹입니다"


class WrongState(DevicesError, ConflictError):
    """Not possible in the current state."""

    title_ko = "현재 상태에서는 할 수 없습니다"
