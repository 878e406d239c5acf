"""The content-addressed archive: stored once, atomically, never outside its root."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from recordings.archive import Archive, sha256_file


def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    archive.create()
    first, second = archive.new_incoming(), archive.new_incoming()
    assert first != second
    first.write_bytes(b"same audio")
    second.write_bytes(b"same audio")
    sha = sha256_file(first)
    assert archive.store_original(first, sha, "wav") == archive.store_original(second, sha, "wav")
    assert not first.exists()
    assert not second.exists()
    assert [p.name for p in archive.originals.rglob("*.wav")] == [f"{sha}.wav"]


def test_renditions_are_named_by_their_content(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    archive.create()
    src = archive.work_dir("a1") / "out.mp3"
    src.write_bytes(b"mp3 bytes")
    rel, sha, size = archive.store_rendition(src, "mp3")
    assert rel == f"renditions/{sha[:2]}/{sha}.mp3"
    assert size == 9
    assert archive.absolute(rel).read_bytes() == b"mp3 bytes"


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "originals/../../x"])
def test_paths_outside_the_archive_are_refused(tmp_path: Path, rel: str) -> None:
    with pytest.raises(ValueError, match="outside"):
        Archive(tmp_path / "archive").absolute(rel)


def test_clean_scratch_removes_interrupted_work(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    archive.create()
    archive.new_incoming().write_bytes(b"partial")
    (archive.work_dir("a2") / "pcm.f32").write_bytes(b"pcm")
    assert archive.clean_scratch() == 2
    assert list(archive.incoming.iterdir()) == []
    assert list(archive.work.iterdir()) == []


def test_a_file_from_another_filesystem_is_copied_in(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem to move from")
    archive = Archive(tmp_path / "archive")
    archive.create()
    src = shm / f"vc-test-{tmp_path.name}.mp3"
    src.write_bytes(b"live recording")
    rel = archive.store_original(src, sha256_file(src), "mp3")
    assert not src.exists()
    assert archive.absolute(rel).read_bytes() == b"live recording"
    assert [p.name for p in archive.originals.rglob(".*")] == []  # no temporary left


def test_orphans_are_unreferenced_files_past_the_grace_period(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive")
    archive.create()
    paths = {}
    for name in ("kept", "orphan", "young"):
        src = archive.new_incoming()
        src.write_bytes(name.encode())
        sha = sha256_file(src)
        paths[name] = archive.store_original(src, sha, "wav")
    hour_ago = time.time() - 3600
    for name in ("kept", "orphan"):
        os.utime(archive.absolute(paths[name]), (hour_ago, hour_ago))
    found = archive.orphans({paths["kept"]}, grace_s=600)
    assert found == [paths["orphan"]]  # referenced and young files stay
    assert archive.remove(found) == len(b"orphan")
    assert not archive.absolute(paths["orphan"]).exists()
    assert archive.absolute(paths["young"]).exists()


def test_storing_content_again_makes_its_file_young(tmp_path: Path) -> None:
    # An orphan about to be referenced again by an identical upload must survive a sweep.
    archive = Archive(tmp_path / "archive")
    archive.create()
    src = archive.new_incoming()
    src.write_bytes(b"same")
    sha = sha256_file(src)
    rel = archive.store_original(src, sha, "wav")
    os.utime(archive.absolute(rel), (0, 0))
    again = archive.new_incoming()
    again.write_bytes(b"same")
    assert archive.store_original(again, sha, "wav") == rel
    assert archive.orphans(set(), grace_s=600) == []
