"""HLS playlists: pure helpers for the live playlist that phones fetch."""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = ["SEGMENT_NAME", "segment_count", "with_token"]

SEGMENT_NAME = re.compile(r"^seg\d{5,9}\.ts$")


def with_token(playlist: str, token: str | None) -> str:
    """The playlist with ``?token=`` on every segment URI (players drop the playlist query)."""
    if not token:
        return playlist
    suffix = "?token=" + quote(token, safe="")
    lines = []
    for line in playlist.splitlines():
        if line and not line.startswith("#"):
            line += suffix
        lines.append(line)
    return "\n".join(lines) + "\n"


def segment_count(playlist: str) -> int:
    """How many media segments a playlist lists."""
    return sum(1 for line in playlist.splitlines() if line.startswith("#EXTINF"))
