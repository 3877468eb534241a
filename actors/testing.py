"""Tools for testing actors: a virtual clock so timers of hours fire at once.

Example::

    clock = VirtualClock()
    async with ActorSystem(journal=MemoryJournal(), snapshots=MemorySnapshotStore(),
                           clock=clock) as system:
        ref = await system.spawn(Reminder, "r-1")
        assert await ref.result() == "reminded"     # a 3-day sleep took no real time
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

__all__ = ["VirtualClock"]


class VirtualClock:
    """A clock whose time moves only when the system is idle, or when told to.

    Time jumps to the next timer when every actor is idle (no input queued, no
    commit or activity attempt in flight) while some caller awaits an actor's
    ``result()``: so a test that awaits a result sees hours of timers fire at once,
    and a test that sends a signal first is never overtaken by a timeout. ``advance``
    moves time explicitly.
    """

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        """Start at ``start`` (default 2026-01-01T00:00:00Z)."""
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._is_idle: Callable[[], bool] = lambda: True
        self._waiters = 0
        self._advancer: asyncio.Task[None] | None = None

    def now(self) -> float:
        """Return the virtual time."""
        return self._now

    def attach(self, is_idle: Callable[[], bool]) -> None:
        """Learn how to ask the system whether every actor is idle."""
        self._is_idle = is_idle

    async def sleep_until(self, deadline: float) -> None:
        """Wait until virtual time reaches ``deadline``."""
        if deadline <= self._now:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._order), future))
        try:
            await future
        finally:
            if not future.done():
                future.cancel()

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due by then."""
        self._set(self._now + seconds)
        await asyncio.sleep(0)

    def _set(self, moment: float) -> None:
        self._now = max(self._now, moment)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)

    def waiting_for_result(self) -> _Waiting:
        """Mark a caller waiting for a result: time may skip while it waits."""
        return _Waiting(self)

    def _start(self) -> None:
        self._waiters += 1
        if self._advancer is None or self._advancer.done():
            self._advancer = asyncio.get_running_loop().create_task(self._advance_when_idle())

    def _stop(self) -> None:
        self._waiters -= 1
        if self._waiters == 0 and self._advancer is not None:
            self._advancer.cancel()
            self._advancer = None

    async def _advance_when_idle(self) -> None:
        quiet = 0
        while True:
            await asyncio.sleep(0)
            live = [s for s in self._sleepers if not s[2].done()]
            if not live or not self._is_idle():
                quiet = 0
                if not live:
                    await asyncio.sleep(0.001)
                continue
            quiet += 1
            if quiet < 3:  # idle for several loop turns: nothing is about to wake
                continue
            quiet = 0
            self._set(min(s[0] for s in live))


class _Waiting:
    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def __enter__(self) -> None:
        self._clock._start()

    def __exit__(self, *exc: object) -> None:
        self._clock._stop()
