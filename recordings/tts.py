"""Text to speech: Korean text through the pronunciation table into espeak-ng (offline)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from .errors import EmptyAudio, ProcessingFailed
from .pronounce import pronounce

__all__ = ["ESPEAK", "speak"]

log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
VOICE = "ko"
WORDS_PER_MINUTE = 150


async def speak(text: str, out_wav: Path, limit_s: float = 60) -> None:
    """Write Korean speech of ``text`` to a WAV file (text goes through stdin, never argv)."""
    spoken = pronounce(text)
    if not spoken:
        raise EmptyAudio("the text is empty")
    proc = await asyncio.create_subprocess_exec(
        ESPEAK, "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(out_wav), "--stdin",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(proc.communicate(spoken.encode("utf-8")), limit_s)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    size = (await asyncio.to_thread(out_wav.stat)).st_size if proc.returncode == 0 else 0
    if size <= 44:
        log.warning("espeak-ng failed: %s", err.decode(errors="replace")[-500:])
        raise ProcessingFailed("speech synthesis failed")
