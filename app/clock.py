"""One monotonic clock for every stamp in voiceprobe.

All stamps are ``time.monotonic_ns()`` values (CLOCK_MONOTONIC on Linux, shared by every
process on the machine, so the simulator's ground-truth stamps and the bridge's stamps
compare directly). Tests inject :class:`FakeClock`.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the time in monotonic nanoseconds."""

    def now_ns(self) -> int:
        """Return the current monotonic time in nanoseconds."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic_ns``."""

    def now_ns(self) -> int:
        """Return ``time.monotonic_ns()``."""
        return time.monotonic_ns()


class FakeClock:
    """A clock that only moves when told to (for pure state-machine tests)."""

    def __init__(self, start_ns: int = 0) -> None:
        self.t_ns = start_ns

    def now_ns(self) -> int:
        """Return the fake time."""
        return self.t_ns

    def advance_ms(self, ms: float) -> None:
        """Move the fake time forward by ``ms`` milliseconds."""
        self.t_ns += int(ms * 1_000_000)


MONOTONIC = MonotonicClock()


def ns_to_ms(ns: int) -> float:
    """Convert nanoseconds to milliseconds."""
    return ns / 1_000_000
