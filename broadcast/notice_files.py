"""Files of notices: what they are, judged by their content, and where they go (the archive).

The checks are pure (``sniff``, ``check_pdf``, ``check_image``); :class:`NoticeFiles` applies them
to received files, sends audio through the recordings ingest (an announcement) and moves PDFs and
images into the archive, content-addressed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devices.errors import InvalidError, TooLargeError, UnsupportedMediaError
from devices.models import Account
from recordings.archive import sha256_file
from recordings.media import Probe
from recordings.service import IngestService

from .notice_models import NoticeAttachment
from .notices import NoticeError

__all__ = [
    "IMAGE_MAX_BYTES",
    "MAX_ATTACHMENTS",
    "PDF_MAX_BYTES",
    "AttachmentTooLarge",
    "Checked",
    "IncomingFile",
    "NotAPdf",
    "NoticeFiles",
    "UnsupportedAttachment",
    "check_image",
    "check_pdf",
    "discard",
    "sniff",
]

MAX_ATTACHMENTS = 10
PDF_MAX_BYTES = 20 * 1024 * 1024
IMAGE_MAX_BYTES = 10 * 1024 * 1024
_HEAD = 4096
_TAIL = 2048
_EXT = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
        "image/webp": "webp"}  # fmt: skip


class NotAPdf(NoticeError, InvalidError):
    """The file is not a valid PDF."""

    title_ko = "올바른 PDF 파일이 아닙니다"


class UnsupportedAttachment(NoticeError, UnsupportedMediaError):
    """Attach PDF files, images (JPEG, PNG, GIF, WebP) or audio."""

    title_ko = "PDF, 사진(JPEG·PNG·GIF·WebP) 또는 음성 파일만 첨부할 수 있습니다"


class AttachmentTooLarge(NoticeError, TooLargeError):
    """The attachment is too large."""

    title_ko = "첨부 파일이 너무 큽니다"


# --- what a file is -------------------------------------------------------------------------------

_IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
)
_PDF_HEADER = re.compile(rb"^%PDF-[12]\.\d")


def sniff(head: bytes) -> tuple[str, str] | None:
    """``(kind, media type)`` of a file by its first bytes: a PDF or an image; None otherwise."""
    if head.startswith(b"%PDF-"):
        return "pdf", "application/pdf"
    for magic, offset, media_type in _IMAGE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return "image", media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image", "image/webp"
    return None


def check_pdf(head: bytes, tail: bytes, size: int) -> None:
    """A minimal structural check of a PDF: header, an object, ``startxref`` and ``%%EOF``."""
    if size > PDF_MAX_BYTES:
        raise AttachmentTooLarge(f"PDF files are limited to {PDF_MAX_BYTES // (1024 * 1024)} MB")
    if not _PDF_HEADER.match(head):
        raise NotAPdf("the file does not start with a PDF header (%PDF-1.x)")
    if not re.search(rb"\d+\s+\d+\s+obj\b", head + tail):
        raise NotAPdf("the file holds no PDF object")
    end = tail.rstrip(b"\r\n\x00 \t")
    if not end.endswith(b"%%EOF"):
        raise NotAPdf("the file does not end with %%EOF (truncated?)")
    if not re.search(rb"startxref\s+\d+\s+%%EOF\s*$", end):
        raise NotAPdf("the file has no cross-reference offset (startxref)")


def check_image(head: bytes, size: int) -> str:
    """The media type of an image checked by its magic bytes and size."""
    found = sniff(head)
    if found is None or found[0] != "image":
        raise UnsupportedAttachment("the file is not a JPEG, PNG, GIF or WebP image")
    if size > IMAGE_MAX_BYTES:
        raise AttachmentTooLarge(f"images are limited to {IMAGE_MAX_BYTES // (1024 * 1024)} MB")
    if found[1] == "image/png" and head[12:16] != b"IHDR":
        raise UnsupportedAttachment("the PNG image has no header chunk (IHDR)")
    return found[1]


# --- received files ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """A received file in the archive's incoming directory, and the name the client gave it."""

    path: Path
    name: str


@dataclass(frozen=True, slots=True)
class Checked:
    """A file checked by its content: ``pdf``, ``image`` or ``audio`` (with its probe)."""

    file: IncomingFile
    kind: str
    media_type: str
    probe: Probe | None = None


class NoticeFiles:
    """Checks received files and stores them: PDFs and images in the archive, audio via ingest."""

    def __init__(self, ingest: IngestService) -> None:
        self._ingest = ingest

    async def check(self, f: IncomingFile, *, photos_only: bool) -> Checked:
        """The kind and media type of a file, by its content (never by its name or part header)."""
        head, tail, size = await asyncio.to_thread(_ends, f.path)
        found = sniff(head)
        if found is not None and found[0] == "pdf" and not photos_only:
            check_pdf(head, tail, size)
            return Checked(f, "pdf", found[1])
        if found is not None and found[0] == "image":
            return Checked(f, "image", check_image(head, size))
        if photos_only:
            raise UnsupportedAttachment("replies take photos (JPEG, PNG, GIF or WebP)")
        probe = await self._ingest.inspect(f.path)  # refuses (and deletes) what is not audio
        return Checked(f, "audio", "audio/mpeg", probe)

    async def store(self, c: Checked, account: Account) -> NoticeAttachment:
        """Move a checked file into the archive (audio: into the ingest) as an attachment row."""
        f, kind, media_type = c.file, c.kind, c.media_type
        sha = await asyncio.to_thread(sha256_file, f.path)
        size = await asyncio.to_thread(lambda: f.path.stat().st_size)
        if kind == "audio":
            announcement_id = await self._ingest.submit_file(
                f.path, title=f.name or "notice audio", source="upload", created_by=account.id,
                region_code=account.region_code, original_name=f.name or None, probe=c.probe,
            )  # fmt: skip
            return NoticeAttachment(kind="audio", media_type="audio/mpeg", name=f.name, bytes=size,
                                    sha256=sha, announcement_id=announcement_id)  # fmt: skip
        rel = await asyncio.to_thread(
            self._ingest.archive.store_original, f.path, sha, _EXT[media_type]
        )
        return NoticeAttachment(kind=kind, media_type=media_type, name=f.name, path=rel,
                                bytes=size, sha256=sha)  # fmt: skip


def _ends(path: Path) -> tuple[bytes, bytes, int]:
    """The first and last bytes of a file and its size."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(_HEAD)
        f.seek(max(0, size - _TAIL))
        tail = f.read(_TAIL)
    return head, tail, size


async def discard(files: Sequence[IncomingFile]) -> None:
    """Remove received files that were not moved into the archive (refused or failed)."""
    for f in files:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(f.path.unlink, True)
