"""Fixtures of the channel tests (in fixtures.py, shared with tests/web/test_streams*.py)."""

from tests.streaming.fixtures import (  # noqa: F401
    long_tone_mp3,
    make_device,
    make_listener,
    reports,
    short_tone_mp3,
    speech_mp3,
)
