"""Errors of the recordings package: one root, leaves in a web-mapped category."""

from __future__ import annotations

from devices.errors import (
    InsufficientStorageError,
    InvalidError,
    NotFoundError,
    TooLargeError,
    UnavailableError,
    UnsupportedMediaError,
    VillagecastError,
)

__all__ = [
    "AudioTooLong",
    "DecodesTooLong",
    "EmptyAudio",
    "IngestBusy",
    "NotAudio",
    "ProcessingFailed",
    "RecordingsError",
    "StorageFull",
    "TruncatedAudio",
    "UnknownAnnouncement",
    "UnknownRendition",
    "UploadTooLarge",
]


class RecordingsError(VillagecastError):
    """Recordings error."""


class UnknownAnnouncement(RecordingsError, NotFoundError):
    """Unknown announcement."""

    title_ko = "알 수 없는 방송 음성입니다"


class UnknownRendition(RecordingsError, NotFoundError):
    """This announcement has no such audio file (yet)."""

    title_ko = "해당 형식의 음성 파일이 (아직) 없습니다"


class UploadTooLarge(RecordingsError, TooLargeError):
    """The file is larger than the upload limit."""

    title_ko = "파일이 업로드 한도보다 큽니다"


class NotAudio(RecordingsError, UnsupportedMediaError):
    """The file is not audio in a format we can read."""

    title_ko = "읽을 수 있는 음성 파일이 아닙니다"


class EmptyAudio(RecordingsError, InvalidError):
    """The file is empty or holds no sound."""

    title_ko = "파일이 비어 있거나 소리가 없습니다"


class TruncatedAudio(RecordingsError, InvalidError):
    """The file is incomplete (truncated or corrupt)."""

    title_ko = "파일이 잘렸거나 손상되었습니다"


class AudioTooLong(RecordingsError, InvalidError):
    """The recording is longer than the length limit."""

    title_ko = "녹음이 허용된 길이보다 깁니다"


class ProcessingFailed(RecordingsError):
    """The audio could not be processed."""

    title_ko = "음성 처리에 실패했습니다"


class DecodesTooLong(RecordingsError, InvalidError):
    """The audio decodes to far more than the file says (its timestamps lie)."""

    title_ko = "파일에 적힌 길이보다 음성이 훨씬 깁니다"


class StorageFull(RecordingsError, InsufficientStorageError):
    """The server is short of disk space; try again later."""

    title_ko = "서버의 저장 공간이 부족합니다. 나중에 다시 시도하세요"


class IngestBusy(RecordingsError, UnavailableError):
    """Too many announcements are waiting to be processed; try again shortly."""

    title_ko = "처리를 기다리는 음성이 너무 많습니다. 잠시 후 다시 시도하세요"
