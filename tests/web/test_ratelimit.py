"""The sliding-window rate limiter with a fake clock."""

from __future__ import annotations

import pytest

from web.ratelimit import RateLimited, RateLimiter


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limit_per_key_within_the_window_then_free_again() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2, 60.0, clock)
    limiter.hit("a")
    clock.now += 10
    limiter.hit("a")
    with pytest.raises(RateLimited) as info:
        limiter.check("a")
    assert info.value.extra["retry_after_s"] == 50
    limiter.check("b")  # other keys are free
    clock.now += 50
    limiter.check("a")  # the first hit left the window
    limiter.hit("a")
    with pytest.raises(RateLimited):
        limiter.check("a")


def test_reset_forgets_a_key_and_zero_limit_means_unlimited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1, 60.0, clock)
    limiter.hit("a")
    limiter.reset("a")
    limiter.check("a")
    unlimited = RateLimiter(0, 60.0, clock)
    for _ in range(100):
        unlimited.hit("a")
    unlimited.check("a")


def test_memory_stays_bounded() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, 60.0, clock, max_keys=100)
    for i in range(1000):
        limiter.hit(f"k{i}")
    assert len(limiter._hits) <= 100
