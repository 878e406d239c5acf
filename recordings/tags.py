"""Tags of the renditions, written with mutagen (blocking: call through ``asyncio.to_thread``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mutagen.id3 import COMM, ID3, TDRC, TIT2, TPE1, TXXX
from mutagen.oggopus import OggOpus

__all__ = ["Tags", "tag_mp3", "tag_opus"]


@dataclass(frozen=True, slots=True)
class Tags:
    """What every rendition is tagged with."""

    title: str
    announcer: str
    date: str  # ISO date in Asia/Seoul, e.g. "2026-11-25"
    region: str  # region name (code in parentheses)
    comment: str


def tag_mp3(path: Path, tags: Tags) -> None:
    """Write an ID3v2.4 tag at the start of an MP3 (no ID3v1 at the end)."""
    id3 = ID3()
    id3.add(TIT2(encoding=3, text=tags.title))
    id3.add(TPE1(encoding=3, text=tags.announcer))
    id3.add(TDRC(encoding=3, text=tags.date))
    id3.add(TXXX(encoding=3, desc="region", text=tags.region))
    id3.add(COMM(encoding=3, lang="kor", desc="", text=tags.comment))
    id3.save(str(path), v1=0, v2_version=4)


def tag_opus(path: Path, tags: Tags) -> None:
    """Write Vorbis comments into an Ogg/Opus file."""
    audio = OggOpus(str(path))
    assert audio.tags is not None  # an Opus file always has a comment header
    audio.tags["TITLE"] = tags.title
    audio.tags["ARTIST"] = tags.announcer
    audio.tags["DATE"] = tags.date
    audio.tags["REGION"] = tags.region
    audio.tags["COMMENT"] = tags.comment
    audio.save()
