"""Errors of the village channels."""

from __future__ import annotations

from devices.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    UnsupportedMediaError,
    VillagecastError,
)


class StreamingError(VillagecastError):
    """Channel error."""


class UnsupportedPart(StreamingError, UnsupportedMediaError):
    """A part is not in the channel format (MPEG-1 Layer III, 48 kHz, mono)."""

    title_ko = "채널 형식(MP3 48kHz 모노)이 아닌 오디오입니다"


class PartUnreadable(StreamingError, InvalidError):
    """A part of the item cannot be read."""

    title_ko = "항목의 오디오 파일을 읽을 수 없습니다"


class DuplicateItem(StreamingError, ConflictError):
    """An item with this id is already on the channel."""

    title_ko = "이미 채널에 있는 항목입니다"


class FeedClosed(StreamingError, ConflictError):
    """The live feed is closed."""

    title_ko = "생방송이 이미 끝났습니다"


class WrongVillage(StreamingError, ForbiddenError):
    """This token may only listen to its own village."""

    title_ko = "자기 마을 방송만 들을 수 있습니다"


class UnknownStream(StreamingError, NotFoundError):
    """No such stream."""

    title_ko = "그런 스트림이 없습니다"
