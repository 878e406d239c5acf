"""The decode bound of the pipeline on real ffmpeg: cut at what the upload check accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordings.errors import AudioTooLong, DecodesTooLong
from recordings.pipeline import normalize
from recordings.transcode import PCM_BYTES_PER_S
from tests.recordings import conftest as audio_fixtures

pytestmark = pytest.mark.ffmpeg

audio_dir = audio_fixtures.audio_dir
speech = audio_fixtures.speech

_ONE_BLOCK = 64 * 1024  # -fs stops after the packet that passes the bound


@pytest.mark.parametrize(
    ("accepted_s", "error", "bound_s"),
    [
        (1.0, DecodesTooLong, 1.0 * 1.25 + 5),  # the check measured 1 s; 9 s decode
        (None, AudioTooLong, 2.0 + 5),  # text or live recording: bounded by the length limit
    ],
)
async def test_a_decode_stops_at_its_bound(
    speech: Path, tmp_path: Path, accepted_s: float | None, error: type[Exception],
    bound_s: float,
) -> None:  # fmt: skip
    with pytest.raises(error):
        await normalize(
            speech, tmp_path, claimed_s=None, accepted_s=accepted_s, demuxer="wav",
            max_duration_s=2.0,
        )  # fmt: skip
    written = (tmp_path / "pcm.f32").stat().st_size
    assert written <= bound_s * PCM_BYTES_PER_S + _ONE_BLOCK
    assert written < 9 * PCM_BYTES_PER_S  # never the whole 9 s
