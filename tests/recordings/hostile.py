"""Files built to hurt ffmpeg, made at test time with the real ffmpeg (5.1).

| file | what it says | what ffmpeg does with it unguarded |
| --- | --- | --- |
| :func:`decompression_bomb` | FLAC/Matroska of ~37 s | decodes 54 KB to an hour (691 MB of PCM) |
| :func:`dash_manifest` | an MPD named ``.mp3`` | its DASH demuxer reads the local file named |
| :func:`hls_playlist` | an M3U8 named ``.mp3`` | its HLS demuxer reads the local file listed |
| :func:`concat_script` | ffconcat named ``.mp3`` | its concat demuxer reads the file listed |

The bomb: FLAC codes a block of 65,535 equal samples in a few bytes, and ``setts`` rewrites every
block's timestamp to 14 ms apart, so probing and demuxing (which trust timestamps) see 37 s while
decoding (which counts samples) writes 100 times as much.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["concat_script", "dash_manifest", "decompression_bomb", "hls_playlist", "local_media"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, timeout=120,
        capture_output=True,
    )  # fmt: skip


def decompression_bomb(path: Path, hours: float = 1.0, block_ms: int = 14) -> Path:
    """FLAC-in-Matroska silence whose timestamps claim ``block_ms`` per 65,535-sample block."""
    flac = path.with_suffix(".src.flac")
    _ffmpeg(
        "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", str(int(hours * 3600)),
        "-c:a", "flac", "-frame_size", "65535", "-f", "flac", str(flac),
    )  # fmt: skip
    _ffmpeg("-i", str(flac), "-c", "copy", "-bsf:a", f"setts=ts=N*{block_ms}", "-f", "matroska",
            str(path))  # fmt: skip
    flac.unlink()
    return path


def local_media(path: Path, seconds: float = 5.0) -> Path:
    """A private media file on the server (AAC in MP4: an extension DASH and HLS accept)."""
    _ffmpeg("-f", "lavfi", "-i", f"sine=f=440:d={seconds}", "-c:a", "aac", str(path))
    return path


def dash_manifest(path: Path, target: Path) -> Path:
    """A DASH manifest whose one representation is ``target`` on the server's disk."""
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT5S"'
        ' minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">\n'
        ' <Period><AdaptationSet mimeType="audio/mp4"><Representation id="a" bandwidth="128000">\n'
        f"  <BaseURL>file://{target}</BaseURL>\n"
        " </Representation></AdaptationSet></Period>\n</MPD>\n",
        encoding="utf-8",
    )
    return path


def hls_playlist(path: Path, target: Path) -> Path:
    """An HLS media playlist whose one segment is ``target``."""
    path.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:5,\nfile://{target}\n#EXT-X-ENDLIST\n",
        encoding="utf-8",
    )
    return path


def concat_script(path: Path, target: Path) -> Path:
    """An ffconcat script that names ``target``."""
    path.write_text(f"ffconcat version 1.0\nfile '{target}'\n", encoding="utf-8")
    return path
