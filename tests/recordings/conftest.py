"""Audio fixtures of the recordings tests: real espeak-ng Korean speech, encoded once a session.

``tests/web/test_announcements*.py`` import these fixtures by name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.audio import encode, speech_wav

SPEECH_TEXT = (
    "오늘 오전 열시 마을회관에서 경로잔치가 열립니다. "
    "주민 여러분께서는 많이 참석해 주시기 바랍니다."
)


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of generated audio shared by the whole session."""
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="session")
def speech(audio_dir: Path) -> Path:
    """Korean speech from espeak-ng (WAV, 22.05 kHz mono), about 9 s."""
    return speech_wav(audio_dir / "speech.wav", SPEECH_TEXT)


@pytest.fixture(scope="session")
def encoded(audio_dir: Path, speech: Path) -> Callable[..., Path]:
    """``encoded(name, *ffmpeg_args)`` → the speech encoded once under ``name``."""

    def make(name: str, *args: str) -> Path:
        path = audio_dir / name
        if not path.exists():
            encode(speech, path, *args)
        return path

    return make
