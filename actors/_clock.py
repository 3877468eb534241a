"""Clocks: where the host side reads the time and waits for timers.

Workflow code never reads a clock (its time comes from the history); the host does,
through one of these, so tests can swap in ``actors.testing.VirtualClock``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import anyio


class Clock(Protocol):
    """The host's clock: wall time in POSIX seconds, and waiting for a moment."""

    def now(self) -> float:
        """Return the current time as a POSIX timestamp."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline``."""
        ...

    def attach(self, is_idle: Callable[[], bool]) -> None:
        """Learn how to ask the system whether every actor is idle (virtual clocks)."""
        ...


class SystemClock:
    """Real time: ``time.time()`` and real sleeping."""

    def now(self) -> float:
        """Return ``time.time()``."""
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep for real until ``deadline``."""
        delay = deadline - time.time()
        if delay > 0:
            await anyio.sleep(delay)

    def attach(self, is_idle: Callable[[], bool]) -> None:
        """Real time needs nothing from the system."""
