"""Probe parsing, what we accept, completeness and loudness math (pure)."""

from __future__ import annotations

import math

import pytest

from recordings.errors import AudioTooLong, EmptyAudio, NotAudio, TruncatedAudio
from recordings.media import (
    Loudness,
    Probe,
    check_complete,
    check_probe,
    decoded_bound_s,
    demuxer_of,
    gain_for,
    needs_limiter,
    original_extension,
    parse_ebur128,
    parse_probe,
    parse_progress_seconds,
)


def probe(format_name: str = "mp3", codec: str | None = "mp3", duration: float | None = 9.3,
          size: int = 1000, brand: str = "") -> Probe:  # fmt: skip
    return Probe(format_name, codec, duration, 1, 48000, size, brand)


def test_parse_probe_takes_the_first_audio_stream() -> None:
    data = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "12.5", "size": "4096",
                   "tags": {"major_brand": "3gp4"}},
        "streams": [{"codec_type": "video", "codec_name": "h264"},
                    {"codec_type": "audio", "codec_name": "aac", "channels": 2,
                     "sample_rate": "44100"}],
    }  # fmt: skip
    p = parse_probe(data)
    assert (p.codec, p.duration_s, p.channels, p.sample_rate, p.size_bytes) == (
        "aac", 12.5, 2, 44100, 4096,
    )  # fmt: skip
    assert original_extension(p) == "3gp"


def test_parse_probe_without_duration() -> None:
    p = parse_probe({"format": {"format_name": "matroska,webm", "size": "10"},
                     "streams": [{"codec_type": "audio", "codec_name": "opus"}]})  # fmt: skip
    assert p.duration_s is None
    assert original_extension(p) == "webm"


@pytest.mark.parametrize(
    ("p", "error"),
    [
        (probe(size=0), EmptyAudio),
        (probe("png_pipe", None), NotAudio),
        (probe("image2", None), NotAudio),
        (probe("tty", None), NotAudio),
        (probe("mp3", None), NotAudio),
        (probe(duration=7200), AudioTooLong),
    ],
)
def test_check_probe_refuses(p: Probe, error: type[Exception]) -> None:
    with pytest.raises(error):
        check_probe(p, max_duration_s=1800)


def test_check_probe_accepts_audio() -> None:
    check_probe(probe(), max_duration_s=1800)
    check_probe(probe("matroska,webm", "opus", None), max_duration_s=1800)


@pytest.mark.parametrize(
    ("claimed", "actual", "error"),
    [(93.0, 18.7, TruncatedAudio), (None, 0.0, EmptyAudio), (None, 4000.0, AudioTooLong)],
)
def test_check_complete_refuses(
    claimed: float | None, actual: float, error: type[Exception]
) -> None:
    with pytest.raises(error):
        check_complete(claimed, actual, max_duration_s=1800)


@pytest.mark.parametrize(("claimed", "actual"), [(9.3, 9.3), (9.3, 9.1), (None, 5.0), (0.5, 0.4)])
def test_check_complete_accepts(claimed: float | None, actual: float) -> None:
    check_complete(claimed, actual, max_duration_s=1800)


def test_original_extension_never_trusts_the_client() -> None:
    assert original_extension(probe("ogg", "opus")) == "opus"
    assert original_extension(probe("ogg", "vorbis")) == "ogg"
    assert original_extension(probe("wav", "pcm_s16le")) == "wav"
    assert original_extension(probe("something_new", "x")) == "bin"


def test_parse_ebur128_summary() -> None:
    log = """[Parsed_ebur128_0 @ 0x1] t: 9.2  M: -20 S: -19 I: -19.0 LUFS
[Parsed_ebur128_0 @ 0x1] Summary:

  Integrated loudness:
    I:         -19.2 LUFS
    Threshold: -29.2 LUFS

  True peak:
    Peak:       -1.8 dBFS
"""
    assert parse_ebur128(log) == Loudness(-19.2, -1.8)
    silent = parse_ebur128("Summary:\n    I:         -70.0 LUFS\n    Peak:       -inf dBFS\n")
    assert silent.true_peak_dbtp == -math.inf


def test_progress_seconds() -> None:
    assert (
        parse_progress_seconds("out_time_us=100\nprogress=continue\nout_time_us=18670000\n")
        == 18.67
    )
    assert parse_progress_seconds("") == 0.0


def test_gain_and_limiter() -> None:
    quiet = Loudness(-46.0, -28.0)
    assert gain_for(quiet) == pytest.approx(30.0)
    assert needs_limiter(quiet, 30.0)  # peaks would reach +2 dBTP
    assert not needs_limiter(Loudness(-19.0, -12.0), 3.0)
    with pytest.raises(EmptyAudio):
        gain_for(Loudness(-70.0, -math.inf))


def test_durations_estimated_from_the_bitrate_are_not_claims() -> None:
    assert probe("aac", "aac", 10.0).claimed_s is None
    assert probe("amr", "amr_nb", 10.0).claimed_s is None
    assert probe("mp3", "mp3", 10.0).claimed_s == 10.0


@pytest.mark.parametrize(
    ("accepted_s", "bound_s"),
    [
        (36.9, 36.9 * 1.25 + 5),  # the bomb that claims 37 s: cut at ~51 s of PCM (9.8 MB)
        (1790.0, 1805.0),  # a claim near the 30 min limit never decodes past the limit
        (None, 1805.0),  # text and live recordings: the limit
        (0.5, 0.5 * 1.25 + 5),
    ],
)
def test_a_decode_is_cut_a_little_past_what_the_upload_check_accepted(
    accepted_s: float | None, bound_s: float
) -> None:
    assert decoded_bound_s(accepted_s, 1800) == pytest.approx(bound_s)


@pytest.mark.parametrize(
    ("format_name", "demuxer"),
    [
        ("mov,mp4,m4a,3gp,3g2,mj2", "mov"),
        ("matroska,webm", "matroska"),
        ("ogg", "ogg"),
        ("wav", "wav"),
        ("dash", None),
        ("hls", None),
        ("concat", None),
        ("png_pipe", None),
    ],
)
def test_only_audio_demuxers_are_allowed(format_name: str, demuxer: str | None) -> None:
    assert demuxer_of(probe(format_name)) == demuxer
    if demuxer is None:
        with pytest.raises(NotAudio):
            check_probe(probe(format_name), 1800)
