"""Fault injection: a journal that fails commits drives a 3-level tree through restarts.

A wrapper journal fails chosen commits with ``JournalWriteError`` before they reach the
store (every Nth commit of an actor, a burst of consecutive ones, or every commit while
the "connection" is down). Each failure crashes the actor whose commit it was (a driver
failure); its supervisor restarts it, with its siblings as the strategy says. The tree:
an ``Org`` (top level) hires ``Team``s, each hiring ``Worker``s with the policy under
test; every message goes Org -> Team -> Worker and back as asks. Checked: which actors
restarted and in what order, and that every acknowledged message counts exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator

import attrs
import pytest

from actors import Actor, ActorSystem, Backoff, Context, Strategy, Supervision, handler, query
from actors.testing import VirtualClock
from journal import Commit, JournalWriteError
from journal.memory import MemoryJournal
from snapshots.memory import MemorySnapshotStore

from ._support import ActorsLog, actors_log, until


class FaultyJournal(MemoryJournal):
    """A memory journal whose commits fail while ``fails`` says so (nothing is written)."""

    def __init__(self) -> None:
        super().__init__()
        self.fails: Callable[[Commit], bool] = lambda _: False
        self.failed: list[str] = []
        self.down = False
        """While True, every commit fails (a lost connection)."""

    async def commit(self, commit: Commit) -> int:
        if self.down or self.fails(commit):
            self.failed.append(commit.stream)
            raise JournalWriteError(commit.stream, "injected failure")
        return await super().commit(commit)


def every_nth(stream: str, n: int) -> Callable[[Commit], bool]:
    """Fail every ``n``-th commit of ``stream``."""
    seen = 0

    def fails(commit: Commit) -> bool:
        nonlocal seen
        if commit.stream != stream:
            return False
        seen += 1
        return seen % n == 0

    return fails


def burst(stream: str, start: int, length: int) -> Callable[[Commit], bool]:
    """Fail ``length`` consecutive commits of ``stream`` from its ``start``-th on."""
    seen = 0

    def fails(commit: Commit) -> bool:
        nonlocal seen
        if commit.stream != stream:
            return False
        seen += 1
        return start <= seen < start + length

    return fails


@attrs.frozen
class Job:
    team: str
    worker: str
    n: int


@attrs.frozen
class Task:
    worker: str
    n: int


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Staff:
    teams: tuple[str, ...]
    workers: tuple[str, ...]
    policy: Supervision


@attrs.frozen
class Hire:
    workers: tuple[str, ...]
    policy: Supervision


class Worker(Actor, name="faults.Worker"):
    total: int = 0
    count: int = 0

    @handler
    async def add(self, ctx: Context, msg: Add) -> int:
        self.total += msg.n
        self.count += 1
        return self.total

    @query
    def state(self) -> tuple[int, int]:
        return self.total, self.count


class Team(Actor, name="faults.Team"):
    handled: int = 0

    @handler
    async def hire(self, ctx: Context, msg: Hire) -> None:
        for worker in msg.workers:
            await ctx.spawn(Worker, worker, supervision=msg.policy)

    @handler
    async def task(self, ctx: Context, msg: Task) -> int:
        total: int = await ctx.get(Worker, msg.worker).ask(Add(msg.n))
        self.handled += 1
        return total


class Org(Actor, name="faults.Org"):
    handled: int = 0

    @handler
    async def staff(self, ctx: Context, msg: Staff) -> None:
        for team in msg.teams:
            ref = await ctx.spawn(Team, team, supervision=msg.policy)
            await ref.ask(Hire(tuple(f"{team}-{w}" for w in msg.workers), msg.policy))

    @handler
    async def job(self, ctx: Context, msg: Job) -> int:
        total: int = await ctx.get(Team, msg.team).ask(Task(f"{msg.team}-{msg.worker}", msg.n))
        self.handled += 1
        return total


@pytest.fixture
def restarts() -> Iterator[ActorsLog]:
    with actors_log(time.monotonic) as captured:
        yield captured


TEAMS = ("t1", "t2")
WORKERS = ("a", "b", "c")


def policy(strategy: Strategy, max_restarts: int = 10) -> Supervision:
    return Supervision(
        strategy=strategy,
        max_restarts=max_restarts,
        backoff=Backoff(initial=0.05, max=0.4, jitter=0.0),
    )


@contextlib.asynccontextmanager
async def staffed(
    journal: FaultyJournal, strategy: Strategy, **options: int
) -> AsyncIterator[ActorSystem]:
    """A running system whose org has hired the teams and workers, under ``strategy``."""
    async with ActorSystem(
        journal=journal,
        snapshots=MemorySnapshotStore(),
        clock=VirtualClock(),
        actors=[Org, Team, Worker],
        supervision=policy(Strategy.ONE_FOR_ONE, 10),
    ) as system:
        await system.get(Org, "org").ask(Staff(TEAMS, WORKERS, policy(strategy, **options)))
        yield system


async def run_jobs(system: ActorSystem, jobs: list[Job], batch: str = "") -> dict[str, int]:
    """Send every job through the tree; return the last total acknowledged per worker."""
    acked: dict[str, int] = {}
    org = system.get(Org, "org")
    for number, job in enumerate(jobs):
        acked[f"{job.team}-{job.worker}"] = await org.ask(job, id=f"job-{batch}{number}")
    return acked


async def assert_nothing_lost(system: ActorSystem, jobs: list[Job], acked: dict[str, int]) -> None:
    for team in TEAMS:
        for worker in WORKERS:
            worker_id = f"{team}-{worker}"
            mine = [j.n for j in jobs if f"{j.team}-{j.worker}" == worker_id]
            state = await system.get(Worker, worker_id).query(Worker.state)
            assert state == (sum(mine), len(mine)), worker_id  # each job counted once
            if mine:
                assert acked[worker_id] == sum(mine)


def jobs_for(*targets: tuple[str, str], rounds: int = 4) -> list[Job]:
    return [Job(team, worker, n) for n in range(1, rounds + 1) for team, worker in targets]


@pytest.mark.parametrize(
    ("strategy", "order"),
    [
        (Strategy.ONE_FOR_ONE, ["t1-b"]),
        (Strategy.ONE_FOR_ALL, ["t1-a", "t1-b", "t1-c"]),
        (Strategy.REST_FOR_ONE, ["t1-b", "t1-c"]),
    ],
)
async def test_every_nth_failed_commit_restarts_the_strategys_group_in_spawn_order(
    restarts: ActorsLog, strategy: Strategy, order: list[str]
) -> None:
    journal = FaultyJournal()
    async with staffed(journal, strategy) as system:
        jobs = jobs_for(("t1", "a"), ("t1", "b"), ("t1", "c"), ("t2", "b"))
        journal.fails = every_nth("t1-b", 2)

        acked = await run_jobs(system, jobs)

        failures = journal.failed.count("t1-b")
        assert failures >= 2
        assert restarts.restarts() == order * failures  # one group restart per failure
        await assert_nothing_lost(system, jobs, acked)


async def test_a_failing_team_is_restarted_with_its_workers_beneath_it(
    restarts: ActorsLog,
) -> None:
    journal = FaultyJournal()
    async with staffed(journal, Strategy.ONE_FOR_ONE) as system:
        jobs = jobs_for(("t1", "a"), ("t1", "c"), ("t2", "a"))
        journal.fails = every_nth("t1", 4)

        acked = await run_jobs(system, jobs)

        failures = journal.failed.count("t1")
        assert failures >= 2
        # The team comes back first, then each live worker under it, in spawn order.
        live_workers = [w for w in restarts.restarts() if w.startswith("t1-")]
        assert restarts.restarts().count("t1") == failures
        assert restarts.restarts()[0] == "t1"
        assert all(w in {"t1-a", "t1-b", "t1-c"} for w in live_workers)
        assert "t2" not in restarts.restarts()  # another team is left alone
        await assert_nothing_lost(system, jobs, acked)


async def test_a_burst_past_a_workers_budget_escalates_to_its_team(restarts: ActorsLog) -> None:
    journal = FaultyJournal()
    async with staffed(journal, Strategy.ONE_FOR_ONE, max_restarts=2) as system:
        jobs = jobs_for(("t1", "b"), ("t2", "a"), rounds=3)
        journal.fails = burst("t1-b", start=2, length=3)  # 3 crashes: one past the budget

        acked = await run_jobs(system, jobs)

        assert journal.failed == ["t1-b"] * 3
        # t1-b restarts twice; the third crash fails its team, which is rebuilt (with a
        # fresh budget) and brings t1-b back with it.
        assert restarts.restarts()[:2] == ["t1-b", "t1-b"]
        assert "t1" in restarts.restarts()[2:]
        assert "org" not in restarts.restarts()
        await assert_nothing_lost(system, jobs, acked)


async def test_a_lost_connection_crashes_whoever_commits_and_nothing_acknowledged_is_lost(
    restarts: ActorsLog,
) -> None:
    journal = FaultyJournal()
    async with staffed(journal, Strategy.ONE_FOR_ALL) as system:
        before = jobs_for(("t1", "a"), ("t2", "c"), rounds=2)
        acked = await run_jobs(system, before)
        journal.down = True
        org = system.get(Org, "org")
        pending = asyncio.ensure_future(org.ask(Job("t1", "b", 100), id="during-the-outage"))
        await until(lambda: bool(journal.failed), "a commit failed")
        assert not pending.done()  # the message waits in the inbox, not lost
        journal.down = False

        assert await pending == 100
        after = jobs_for(("t1", "b"), ("t2", "c"), rounds=2)
        acked |= await run_jobs(system, after, batch="after-")
        acked["t1-b"] = 100 + 1 + 2
        every = [*before, Job("t1", "b", 100), *after]
        await assert_nothing_lost(system, every, acked)
        assert "org" in restarts.restarts()
