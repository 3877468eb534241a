"""What the actor tests share: stores that outlive a system, and waiting without sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import attrs
import pytest

from actors import Actor, ActorSystem
from actors.testing import VirtualClock
from journal.memory import MemoryJournal
from snapshots.memory import MemorySnapshotStore

_T = TypeVar("_T")

calls: list[str] = []
"""Every call of the `step` activity, in order: the exactly-once counter (cleared
before and after each test by ``conftest.py``)."""


async def step(label: str) -> str:
    """An activity that records its call and returns its label."""
    calls.append(label)
    return label


TURNS = 2_000
"""Loop turns a helper waits for background work: far more than any path here takes."""


@attrs.define
class Stores:
    """One set of stores and a clock, shared by the systems a test opens in turn."""

    journal: MemoryJournal = attrs.Factory(MemoryJournal)
    snapshots: MemorySnapshotStore = attrs.Factory(MemorySnapshotStore)
    clock: VirtualClock = attrs.Factory(VirtualClock)
    messages: tuple[type, ...] = ()
    """Message types only ever received (named in no signature), registered by name."""

    def system(self, *actors: type[Actor], **options: Any) -> ActorSystem:
        system = ActorSystem(
            journal=self.journal,
            snapshots=self.snapshots,
            clock=self.clock,
            actors=actors,
            **options,
        )
        for cls in self.messages:
            system.codec.register(cls, name=cls.__name__)
        return system


async def settle(system: ActorSystem) -> None:
    """Return once no actor has an input queued, a commit or an activity attempt running."""
    quiet = 0
    for turn in range(TURNS * 10):
        quiet = quiet + 1 if system.busy == 0 else 0
        if quiet >= 5:
            return
        # A file journal's fsync can outlast many loop turns on a loaded machine.
        await asyncio.sleep(0 if turn < TURNS else 0.001)
    pytest.fail("the system never went idle")


async def until(check: Callable[[], bool | Awaitable[bool]], what: str) -> None:
    """Return once ``check()`` holds; fail after ``TURNS`` loop turns."""
    for _ in range(TURNS):
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        await asyncio.sleep(0)
    pytest.fail(f"never happened: {what}")


async def finishes(awaitable: Awaitable[_T], what: str) -> _T:
    """Await ``awaitable``, failing (not hanging) if it is still waiting after ``TURNS``."""
    task = asyncio.ensure_future(awaitable)
    for _ in range(TURNS):
        if task.done():
            return task.result()
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    pytest.fail(f"still waiting: {what}")


async def last_seq(system: ActorSystem, actor_id: str) -> int:
    """The journal's last seq of ``actor_id``."""
    info = await system.journal.info(actor_id)
    assert info is not None
    return info.last_seq


class ActorsLog(logging.Handler):
    """The ``actors`` log, each record stamped with the system's clock when it was made."""

    def __init__(self, now: Callable[[], float]) -> None:
        super().__init__(logging.DEBUG)
        self._now = now
        self.records: list[tuple[float, logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((self._now(), record))

    def restarts(self) -> list[str]:
        """The actors rebuilt by a restart, in order (one entry per rebuild)."""
        rebuilt = []
        for _, record in self.records:
            actor_id = getattr(record, "actor_id", None)
            if actor_id is not None and record.getMessage().startswith(
                f"actor {actor_id!r} restarted"
            ):
                rebuilt.append(actor_id)
        return rebuilt

    def crashes(self) -> list[dict[str, Any]]:
        """The structured fields of each crash-and-restart record."""
        fields = ("actor_id", "error", "source", "attempt", "delay")
        return [
            {name: getattr(r, name) for name in fields}
            for _, r in self.records
            if r.levelno == logging.WARNING and hasattr(r, "attempt")
        ]


@contextlib.contextmanager
def actors_log(now: Callable[[], float]) -> Iterator[ActorsLog]:
    """Capture the ``actors`` log, every level, while the block runs."""
    handler = ActorsLog(now)
    logger = logging.getLogger("actors")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
