"""The content-addressed archive on disk: originals and renditions named by their sha256.

Every file is written under a temporary name, fsynced and renamed into place, so a crash leaves
either the whole file or none. Blocking functions here are called through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import StorageFull

__all__ = ["Archive", "disk_errors", "sha256_file"]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


_DISK_FULL_TEXT = ("database or disk is full", "No space left on device", "Disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error means a full disk: ENOSPC/EDQUOT, or a database saying so."""
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return True
    return isinstance(exc, Exception) and any(text in str(exc) for text in _DISK_FULL_TEXT)


@contextlib.contextmanager
def disk_errors(what: str) -> Iterator[None]:
    """Turn a full disk met while doing ``what`` into :class:`StorageFull` (a 507 problem)."""
    try:
        yield
    except StorageFull:
        raise
    except Exception as exc:
        if is_disk_full(exc):
            raise StorageFull(f"the server ran out of disk space while {what}") from None
        raise


_CHUNK = 1024 * 1024


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb+") as f:
        os.fsync(f.fileno())


def _move(src: Path, final: Path) -> None:
    """Durably move ``src`` to ``final`` (copying through a temporary name across filesystems)."""
    try:
        _fsync_file(src)
        os.replace(src, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        shutil.copyfile(src, tmp)
        _fsync_file(tmp)
        os.replace(tmp, final)
        src.unlink()
    os.utime(final)  # the orphan sweep's grace period counts from the move into the archive
    _fsync_dir(final.parent)


class Archive:
    """The archive directory tree under ``root`` (``settings.data_dir / "archive"``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"  # uploads being received or checked
        self.work = root / "work"  # scratch files of jobs in progress
        self.originals = root / "originals"
        self.renditions = root / "renditions"
        self.chimes = root / "chimes"

    def create(self) -> None:
        """Make the directories."""
        for d in (self.incoming, self.work, self.originals, self.renditions, self.chimes):
            d.mkdir(parents=True, exist_ok=True)

    def clean_scratch(self) -> int:
        """Remove leftovers of interrupted uploads and jobs (call before any job starts)."""
        removed = 0
        for d in (self.incoming, self.work):
            if not d.exists():
                continue
            for entry in d.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
        return removed

    def free_bytes(self) -> int:
        """Free space on the archive's filesystem, for an unprivileged writer."""
        return shutil.disk_usage(self.root).free

    def orphans(
        self, in_use: set[str], grace_s: float, now: Callable[[], float] = time.time
    ) -> list[str]:
        """Archive files (originals, renditions) that no row references, older than ``grace_s``.

        The grace period spares a file just moved in whose row is about to be committed (by
        this process or another node sharing the directory).
        """
        found = []
        for kind in (self.originals, self.renditions):
            if not kind.exists():
                continue
            for path in kind.glob("*/*"):
                rel = path.relative_to(self.root).as_posix()
                if rel in in_use or not path.is_file():
                    continue
                with contextlib.suppress(FileNotFoundError):
                    if now() - path.stat().st_mtime > grace_s:
                        found.append(rel)
        return sorted(found)

    def remove(self, relative: list[str]) -> int:
        """Delete archive files by relative path; how many bytes were freed."""
        freed = 0
        for rel in relative:
            path = self.absolute(rel)
            with contextlib.suppress(FileNotFoundError):
                freed += path.stat().st_size
                path.unlink()
        return freed

    def new_incoming(self, suffix: str = ".part") -> Path:
        """A fresh, unguessable path for an upload being received (never the client's name)."""
        return self.incoming / f"{secrets.token_hex(12)}{suffix}"

    def work_dir(self, job: str) -> Path:
        """A fresh scratch directory for one job."""
        path = self.work / f"{job}-{secrets.token_hex(4)}"
        path.mkdir(parents=True)
        return path

    def absolute(self, relative: str) -> Path:
        """The absolute path of an archive-relative path (refuses paths leaving the archive)."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"path outside the archive: {relative!r}")
        return path

    def _commit(self, src: Path, kind_dir: Path, sha: str, ext: str) -> str:
        """Move ``src`` to its content address (once); returns the archive-relative path."""
        final_dir = kind_dir / sha[:2]
        final = final_dir / f"{sha}.{ext}"
        rel = final.relative_to(self.root).as_posix()
        if final.exists():
            os.utime(final)  # young again: an orphan sweep must not take it before our row commits
            src.unlink(missing_ok=True)  # identical content is stored once
            return rel
        final_dir.mkdir(parents=True, exist_ok=True)
        _move(src, final)
        return rel

    def store_original(self, src: Path, sha: str, ext: str) -> str:
        """Move an accepted upload into ``originals/``; returns its archive-relative path."""
        return self._commit(src, self.originals, sha, ext)

    def store_rendition(self, src: Path, ext: str) -> tuple[str, str, int]:
        """Move a finished rendition into ``renditions/``: (relative path, sha256, bytes)."""
        sha = sha256_file(src)
        size = src.stat().st_size
        return self._commit(src, self.renditions, sha, ext), sha, size
