"""Text to speech: Korean text through the pronunciation table into espeak-ng (offline)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from .errors import EmptyAudio, ProcessingFailed
from .pronounce import pronounce
from .transcode import ESPEAK, run

__all__ = ["speak"]

log = logging.getLogger(__name__)

VOICE = "ko"
WORDS_PER_MINUTE = 150


async def speak(text: str, out_wav: Path, limit_s: float = 60) -> None:
    """Write Korean speech of ``text`` to a WAV file (text goes through stdin, never argv)."""
    spoken = pronounce(text)
    if not spoken:
        raise EmptyAudio("the text is empty")
    args = [ESPEAK, "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(out_wav), "--stdin"]
    done = await run(args, limit_s, stdin=spoken.encode("utf-8"))
    size = (await asyncio.to_thread(out_wav.stat)).st_size if done.ok else 0
    if size <= 44:
        log.warning("espeak-ng failed: %s", done.tail())
        raise ProcessingFailed("speech synthesis failed")
