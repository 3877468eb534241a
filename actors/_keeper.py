"""Passivation: idle actors leave memory, and come back when they have something to do.

Theory of operation. An actor can be dropped from memory whenever everything it waits
for is durable: no input queued, no activity in flight, no message it wants waiting.
Its timers are wakeups in the journal and its messages are in its inbox, so dropping
it loses nothing: a message delivered to it, a signal, a query, or a timer coming due
rebuilds it from its newest snapshot and its journal. The keeper passivates actors
idle past ``idle_timeout`` and, when more than ``max_active`` are in memory, the least
recently active ones; it snapshots a quiescent actor first when enough events have
accumulated since its last snapshot. For the timers of passivated actors it keeps a
heap of (due time, actor id), read from the journal's wakeups at start, and wakes each
actor when its earliest timer is due.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._runner import Runner
    from ._system import ActorSystem
    from ._tasks import TaskSet

logger = logging.getLogger("actors")

SNAPSHOT_ON_PASSIVATION = 20
"""Snapshot at passivation only past this many events since the last snapshot: a
shorter history replays as fast as a snapshot loads."""


class Keeper:
    """Passivates idle actors and wakes passivated ones whose timers come due."""

    def __init__(self, system: ActorSystem, *, max_active: int, idle_timeout: float) -> None:
        self._system = system
        self.max_active = max_active
        self.idle_timeout = idle_timeout
        self._sleepers: list[tuple[float, str]] = []
        self._changed = asyncio.Event()
        self._evicting = False

    def start(self, tasks: TaskSet) -> None:
        """Start the timer watch and the idle sweep as tasks of ``tasks``."""
        tasks.start(self._watch_timers())
        tasks.start(self._sweep_idle())

    def clear(self) -> None:
        """Forget every sleeper (the system stopped)."""
        self._sleepers.clear()

    async def load_wakeups(self) -> None:
        """Learn, from the journal, when each actor not in memory has a timer due."""
        earliest: dict[str, float] = {}
        for wakeup in await self._system.journal.due_wakeups(until=math.inf):
            if wakeup.stream not in earliest:
                earliest[wakeup.stream] = wakeup.due
        for actor_id, due in earliest.items():
            if actor_id not in self._system._runners:
                self.sleep(actor_id, due)

    def sleep(self, actor_id: str, due: float) -> None:
        """Wake ``actor_id`` (not in memory) at ``due``."""
        heapq.heappush(self._sleepers, (due, actor_id))
        self._changed.set()

    def activated(self) -> None:
        """Note an activation; passivate the least recently active if over the cap."""
        if len(self._system._runners) > self.max_active and not self._evicting:
            self._evicting = True
            self._system._drivers.start(self._evict())

    async def _evict(self) -> None:
        try:
            target = int(self.max_active * 0.9)
            runners = sorted(self._system._runners.values(), key=lambda r: r.last_active)
            for runner in runners:
                if len(self._system._runners) <= target:
                    break
                await self.passivate(runner)
        finally:
            self._evicting = False

    async def passivate(self, runner: Runner) -> bool:
        """Drop ``runner`` from memory if it waits only on durable things."""
        system = self._system
        if not self._can_drop(runner):
            return False
        if runner.engine.quiescent and runner.seq - runner.snapshot_seq >= SNAPSHOT_ON_PASSIVATION:
            await system._snapshot(runner)
            if not self._can_drop(runner):  # it got work while the snapshot was saved
                return False
        del system._runners[runner.actor_id]
        runner.stop()
        due = runner.next_timer()
        if due is not None:
            self.sleep(runner.actor_id, due)
        return True

    def _can_drop(self, runner: Runner) -> bool:
        return runner.passivatable and self._system._runners.get(runner.actor_id) is runner

    async def _watch_timers(self) -> None:
        clock = self._system.clock
        while True:
            if not self._sleepers:
                await self._changed.wait()
                self._changed.clear()
                continue
            due, actor_id = self._sleepers[0]
            if due > clock.now():
                self._changed.clear()
                waiting = asyncio.ensure_future(clock.sleep_until(due))
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({waiting, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiting.cancel()
                    changed.cancel()
                continue
            heapq.heappop(self._sleepers)
            if actor_id not in self._system._runners:
                self._system.busy += 1
                try:
                    await self._system._activate(actor_id)
                finally:
                    self._system.busy -= 1

    async def _sweep_idle(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle_timeout / 2, 30.0))
            cutoff = time.monotonic() - self.idle_timeout
            for runner in list(self._system._runners.values()):
                if runner.last_active < cutoff:
                    try:
                        await self.passivate(runner)
                    except Exception:
                        logger.exception("could not passivate actor %r", runner.actor_id)
