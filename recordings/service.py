"""The long-lived ingest service: takes files, runs the pipeline with bounded concurrency, resumes.

Created by ``web/api_announcements.py`` at app start; the queue holds announcement ids and the
database is the source of truth, so a crash loses nothing: ``processing`` rows are resumed at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from devices.models import Account, Region
from devices.orm import utcnow

from . import store, transcode, tts
from .archive import Archive, sha256_file
from .chimes import Chimes, ensure_chimes
from .errors import EmptyAudio, RecordingsError
from .media import FORMATS_EXT, Probe, check_complete, check_probe, original_extension
from .models import Announcement, Rendition
from .pipeline import FORMATS, Normalized, normalize
from .tags import Tags, tag_mp3, tag_opus

__all__ = ["IngestService"]

log = logging.getLogger(__name__)

SessionMaker = Callable[[], Any]  # an async_sessionmaker[AsyncSession]


class IngestService:
    """Accepts audio files and text, and turns them into archived, normalised announcements."""

    def __init__(
        self,
        sessionmaker: SessionMaker,
        archive_root: Path,
        *,
        workers: int = 2,
        max_duration_s: float = 1800,
        timezone: str = "Asia/Seoul",
    ) -> None:
        self.archive_root = archive_root
        self.archive = Archive(archive_root)
        self.max_duration_s = max_duration_s
        self._sessionmaker = sessionmaker
        self._workers = max(1, workers)
        self._zone = ZoneInfo(timezone)
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._done: dict[int, asyncio.Event] = {}
        self.chimes: Chimes | None = None  # set by start()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Prepare the archive and chimes, resume unfinished work, start the workers."""
        await asyncio.to_thread(self.archive.create)
        await asyncio.to_thread(self.archive.clean_scratch)
        self.chimes = await asyncio.to_thread(ensure_chimes, self.archive.chimes)
        async with self._sessionmaker() as session:
            pending = await store.processing_ids(session)
        for announcement_id in pending:
            self._queue.put_nowait(announcement_id)
        if pending:
            log.info("resuming %d unfinished announcement(s)", len(pending))
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"ingest-{i}") for i in range(self._workers)
        ]

    async def close(self) -> None:
        """Stop the workers; unfinished jobs stay ``processing`` and resume at the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # --- intake -----------------------------------------------------------------------------

    async def inspect(self, path: Path) -> Probe:
        """Check an upload before accepting it (fast: probe and demux, no decoding).

        Raises a recordings error (and deletes the file) when it is not acceptable audio.
        """
        try:
            probe = await transcode.probe(path)
            check_probe(probe, self.max_duration_s)
            readable = await transcode.readable_seconds(path)
            check_complete(probe.duration_s, readable, self.max_duration_s)
            return probe
        except BaseException:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            raise

    async def submit_file(
        self,
        path: Path,
        *,
        title: str,
        source: str,
        created_by: int | None,
        region_code: str | None,
        original_name: str | None = None,
        text: str | None = None,
        probe: Probe | None = None,
    ) -> int:
        """Take ownership of a file on disk and queue it; returns the new announcement's id."""
        sha = await asyncio.to_thread(sha256_file, path)
        ext = original_extension(probe) if probe is not None else path.suffix.lstrip(".") or "bin"
        ext = ext if ext.isalnum() and len(ext) <= 5 else "bin"
        relative = await asyncio.to_thread(self.archive.store_original, path, sha, ext)
        meta: dict[str, Any] = {}
        if probe is not None:
            meta = {
                "format": probe.format_name,
                "codec": probe.codec,
                "claimed_s": probe.duration_s,
            }
        async with self._sessionmaker() as session:
            row = await store.create_announcement(
                session,
                title=title,
                source=source,
                text=text,
                original_name=original_name,
                original_path=relative,
                sha256=sha,
                created_by=created_by,
                region_code=region_code,
                meta=meta,
            )
            await session.commit()
            announcement_id = row.id
        self._queue.put_nowait(announcement_id)
        return announcement_id

    async def submit_text(
        self, text: str, *, title: str, created_by: int | None, region_code: str | None
    ) -> int:
        """Speak Korean text (espeak-ng) and queue it like an upload."""
        wav = self.archive.new_incoming(".wav")
        try:
            await tts.speak(text, wav)
        except BaseException:
            wav.unlink(missing_ok=True)
            raise
        return await self.submit_file(
            wav, title=title, source="tts", created_by=created_by, region_code=region_code,
            text=text,
        )  # fmt: skip

    async def wait_ready(self, announcement_id: int, timeout: float) -> str:  # noqa: ASYNC109
        # (a plain timeout argument is the interface streaming and tests rely on)
        """Wait until the announcement is no longer ``processing``; its final status.

        Raises ``TimeoutError`` when it is still processing after ``timeout`` seconds.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            event = self._done.setdefault(announcement_id, asyncio.Event())
            async with self._sessionmaker() as session:
                row = await store.get_announcement(session, announcement_id)
                if row.status != "processing":
                    return row.status
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"announcement {announcement_id} is still processing")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 1.0))

    def rendition_path(self, rendition: Rendition) -> Path:
        """The absolute path of a rendition's file."""
        return self.archive.absolute(rendition.path)

    # --- work -------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            announcement_id = await self._queue.get()
            try:
                await self._process(announcement_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ingest of announcement %s crashed", announcement_id)
            finally:
                self._queue.task_done()
                self._done.pop(announcement_id, asyncio.Event()).set()

    async def _process(self, announcement_id: int) -> None:
        async with self._sessionmaker() as session:
            row = await session.get(Announcement, announcement_id)
            if row is None or row.status != "processing":
                return
            original = self.archive.absolute(row.original_path or "")
            claimed = (row.meta or {}).get("claimed_s")
            tags = await self._tags(session, row)
        work = await asyncio.to_thread(self.archive.work_dir, f"a{announcement_id}")
        try:
            if not original.is_file():
                raise EmptyAudio("the original file is missing from the archive")
            result = await normalize(
                original, work, claimed_s=claimed, max_duration_s=self.max_duration_s
            )
            renditions = await self._archive_renditions(result, tags)
            await self._finish(announcement_id, result, renditions)
        except RecordingsError as exc:
            log.info("announcement %s failed: %s", announcement_id, exc.detail)
            await self._fail(announcement_id, exc)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as exc:
            log.exception("announcement %s failed unexpectedly", announcement_id)
            await self._fail(announcement_id, exc)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _tags(self, session: AsyncSession, row: Announcement) -> Tags:
        announcer = "villagecast"
        if row.created_by is not None:
            account = await session.get(Account, row.created_by)
            if account is not None:
                announcer = account.display_name or account.username
        region = ""
        if row.region_code:
            found = await session.get(Region, row.region_code)
            region = f"{found.name_ko} ({found.code})" if found else row.region_code
        created: datetime = row.created_at or utcnow()
        comment = row.text or f"villagecast {row.source} #{row.id}"
        return Tags(row.title, announcer, created.astimezone(self._zone).date().isoformat(),
                    region, comment[:1000])  # fmt: skip

    async def _archive_renditions(
        self, result: Normalized, tags: Tags
    ) -> list[tuple[str, str, str, int]]:
        out = []
        taggers = {"mp3": tag_mp3, "opus": tag_opus}
        for fmt, path in result.files.items():
            await asyncio.to_thread(taggers[fmt], path, tags)
            rel, sha, size = await asyncio.to_thread(
                self.archive.store_rendition, path, FORMATS_EXT[fmt]
            )
            out.append((fmt, rel, sha, size))
        return out

    async def _finish(
        self, announcement_id: int, result: Normalized, renditions: list[tuple[str, str, str, int]]
    ) -> None:
        scale = 10 ** (result.gain_db / 20)
        async with self._sessionmaker() as session:
            row = await store.get_announcement(session, announcement_id)
            for old in list(row.renditions):
                row.renditions.remove(old)
            await session.flush()
            for fmt, rel, sha, size in renditions:
                nominal = FORMATS[fmt][2]
                measured = round(size * 8 / max(result.span.duration_s, 0.001) / 1000)
                row.renditions.append(
                    Rendition(
                        format=fmt, path=rel, bytes=size, sha256=sha,
                        bitrate_kbps=nominal if fmt == "mp3" else measured,
                        duration_ms=result.duration_ms,
                    )
                )  # fmt: skip
            row.status = "ready"
            row.error = None
            row.duration_ms = result.duration_ms
            row.loudness_lufs = round(result.loudness.integrated_lufs, 2)
            row.true_peak_dbtp = round(result.loudness.true_peak_dbtp, 2)
            row.peaks = [round(min(1.0, p * scale), 3) for p in result.span.peaks]
            row.ready_at = utcnow()
            await session.commit()

    async def _fail(self, announcement_id: int, exc: Exception) -> None:
        if isinstance(exc, RecordingsError):
            reason, reason_ko = exc.detail, type(exc).title_ko
        else:
            reason, reason_ko = "internal error while processing", "처리 중 내부 오류"
        async with self._sessionmaker() as session:
            row = await store.get_announcement(session, announcement_id)
            row.status = "failed"
            row.error = reason
            row.meta = {**(row.meta or {}), "error_ko": reason_ko}
            await session.commit()
