"""MPEG audio frames of the channel format, for the channel and its loaders.

The parser and the format are defined once in :mod:`recordings.channel_format` (recordings
encodes the renditions, streaming sends their frames); these names stay here for streaming's
modules (``hub.load_frames``, ``channel``).
"""

from __future__ import annotations

from recordings.channel_format import (
    FRAME_S,
    SAMPLE_RATE_HZ,
    SILENCE_FRAME,
    FrameHeader,
    FrameSplitter,
    parse_header,
    split_frames,
)

__all__ = [
    "CHANNEL_SAMPLE_RATE",
    "FRAME_S",
    "SILENCE_FRAME",
    "FrameHeader",
    "FrameSplitter",
    "parse_header",
    "split_frames",
]

CHANNEL_SAMPLE_RATE = SAMPLE_RATE_HZ
