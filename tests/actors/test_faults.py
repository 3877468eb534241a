"""Journal write failures: the caller sees the error, the actor is rebuilt from its journal.

A wrapper journal fails chosen commits with ``JournalWriteError`` before they reach the
store (as a full disk would). The actor's in-memory state was already ahead of the
journal, so the runtime must rebuild it from what was committed: nothing half-written
is visible, an activity whose outcome was not committed runs again (at least once),
and a signal whose commit failed is not applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import attrs
import pytest

from actors import Actor, ActorError, ActorSystem, Context, query, signal
from actors.testing import VirtualClock
from journal import Commit, JournalWriteError
from journal.memory import MemoryJournal
from snapshots.memory import MemorySnapshotStore

runs: list[int] = []


async def work(step: int) -> int:
    runs.append(step)
    return step * 10


class FailingJournal(MemoryJournal):
    """A memory journal whose commits fail while ``fail`` says so."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: Callable[[Commit], bool] = lambda _: False
        self.failures = 0

    async def commit(self, commit: Commit) -> int:
        if self.fail(commit):
            self.failures += 1
            raise JournalWriteError(commit.stream, "disk full (injected)")
        return await super().commit(commit)


class Steps(Actor, name="faults.Steps"):
    total: int = 0
    notes: list[str] = attrs.Factory(list)

    async def run(self, ctx: Context) -> int:
        for step in range(1, 4):
            self.total += await ctx.activity(work, step)
        await ctx.wait_until(lambda: "go" in self.notes)
        return self.total

    @signal
    def note(self, text: str) -> None:
        self.notes.append(text)

    @query
    def seen(self) -> list[str]:
        return list(self.notes)


@pytest.fixture(autouse=True)
def _reset_runs() -> None:
    runs.clear()


async def test_a_failed_commit_of_an_activity_outcome_reruns_that_activity_only() -> None:
    journal = FailingJournal()
    completions = 0

    def fail_second_completion(commit: Commit) -> bool:
        nonlocal completions
        if any(b"ActivityCompleted" in e for e in commit.events):
            completions += 1
            return completions == 2  # step 2's outcome is lost once
        return False

    journal.fail = fail_second_completion
    async with ActorSystem(
        journal=journal, snapshots=MemorySnapshotStore(), clock=VirtualClock()
    ) as system:
        ref = await system.spawn(Steps, "s1")
        await ref.signal(Steps.note, "go")
        assert await ref.result() == 60
    assert journal.failures == 1
    assert runs == [1, 2, 2, 3]  # step 2 ran again, steps 1 and 3 once
    history = [e.data for e in await journal.read("s1")]
    assert sum(b"ActivityCompleted" in e for e in history) == 3


async def test_a_signal_whose_commit_fails_raises_and_is_not_applied() -> None:
    journal = FailingJournal()
    journal.fail = lambda commit: any(b"SignalReceived" in e for e in commit.events)
    async with ActorSystem(
        journal=journal, snapshots=MemorySnapshotStore(), clock=VirtualClock()
    ) as system:
        ref = await system.spawn(Steps, "s2")
        with pytest.raises(JournalWriteError, match="disk full"):
            await ref.signal(Steps.note, "lost")
        journal.fail = lambda _: False
        for _ in range(100):  # the actor is rebuilt from its journal in the background
            if "s2" in system._runners and not system._runners["s2"].done.done():
                break
            await asyncio.sleep(0.01)
        assert await ref.query(Steps.seen) == []  # the failed signal left no trace
        await ref.signal(Steps.note, "go")
        assert await ref.result() == 60
    assert sorted(runs) == [1, 2, 3]


class Shared(Actor, name="faults.Shared"):
    items: list[str] = []  # noqa: RUF012 - the mistake under test


async def test_a_mutable_default_shared_by_every_instance_is_refused() -> None:
    async with ActorSystem(
        journal=MemoryJournal(), snapshots=MemorySnapshotStore(), clock=VirtualClock()
    ) as system:
        with pytest.raises(ActorError, match=r"items.*attrs\.Factory"):
            await system.spawn(Shared, "x")
        assert await system.journal.info("x") is None
