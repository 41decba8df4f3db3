"""The wall clock and sleep the GitHub client, its policies and token sources read."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A source of UNIX time that can also wait."""

    def time(self) -> float:
        """Return the current UNIX time in seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for ``seconds``."""
        ...


class SystemClock:
    """The real clock: ``time.time`` and ``time.sleep``."""

    def time(self) -> float:
        """Return the current UNIX time."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to: ``sleep`` advances it at once; thread safe."""

    def __init__(self, start: float) -> None:
        """Start at UNIX time ``start``."""
        self._now = float(start)
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def time(self) -> float:
        """Return the clock's current time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` without waiting, and remember the wait."""
        with self._lock:
            self.slept.append(seconds)
            self._now += max(seconds, 0.0)

    def advance(self, seconds: float) -> None:
        """Move the clock forward without recording a sleep."""
        with self._lock:
            self._now += seconds


# The clock the hook hands to every client it builds; tests swap it for a ManualClock.
DEFAULT_CLOCK: Clock = SystemClock()


def default_clock() -> Clock:
    """Return the clock new clients and token sources use."""
    return DEFAULT_CLOCK
