"""Supervision: crashes restart actors from their journal, per their supervisor's policy.

Each test builds a small tree, makes chosen actors crash (an exception escaping
workflow code), and checks what the supervisors did: which actors restarted and in
which order (read from the ``actors`` log, whose records carry structured fields),
what state they came back with, and what became of the tree when a budget ran out.
The virtual clock makes every backoff take no real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from actors import (
    Actor,
    ActorFailed,
    ActorSystem,
    Backoff,
    Context,
    OnPoison,
    Rejected,
    RestartType,
    Status,
    Strategy,
    Supervision,
    Terminated,
    WorkflowRef,
    handler,
    query,
    signal,
)
from actors._supervision import RestartWindow

from ._support import ActorsLog, Stores, actors_log, calls, settle, step, until

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

crashes_left: dict[str, int] = {}
"""Per worker id: how many more handler turns crash (process memory, not state)."""


@pytest.fixture(autouse=True)
def _reset() -> None:
    crashes_left.clear()


@attrs.frozen
class Work:
    n: int


@attrs.frozen
class Fault:
    text: str


class Worker(Actor, name="sup.Worker"):
    """Counts work; a turn crashes while ``crashes_left`` says so (a transient fault)."""

    total: int = 0
    seen: list[int] = attrs.Factory(list)

    @handler
    async def work(self, ctx: Context, msg: Work) -> int:
        self.seen.append(msg.n)  # rolled back if the turn crashes
        await ctx.activity(step, f"{ctx.actor_id} work {msg.n}")
        if crashes_left.get(ctx.actor_id, 0) > 0:
            crashes_left[ctx.actor_id] -= 1
            msg_text = f"{ctx.actor_id} hiccup"
            raise RuntimeError(msg_text)
        self.total += msg.n
        return self.total

    @handler
    async def fault(self, ctx: Context, msg: Fault) -> None:
        raise ValueError(msg.text)

    @signal
    def add(self, n: int) -> None:
        self.total += n

    @query
    def state(self) -> tuple[int, list[int]]:
        return self.total, list(self.seen)


class Team(Actor, name="sup.Team"):
    """A supervisor: spawns workers with one policy, forwards work, lives on messages."""

    members: list[str] = attrs.Factory(list)

    @handler
    async def hire(self, ctx: Context, msg: Hire) -> list[str]:
        for worker_id in msg.ids:
            await ctx.spawn(Worker, worker_id, supervision=msg.policy)
            self.members.append(worker_id)
        return list(self.members)

    @handler
    async def forward(self, ctx: Context, msg: Forward) -> int:
        result: int = await ctx.get(Worker, msg.to).ask(Work(msg.n))
        return result


@attrs.frozen
class Hire:
    ids: tuple[str, ...]
    policy: Supervision | None = None


@attrs.frozen
class Forward:
    to: str
    n: int


class Failing(Actor, name="sup.Failing"):
    """A workflow whose run raises after a step: a deterministic bug."""

    async def run(self, ctx: Context) -> str:
        await ctx.activity(step, f"{ctx.actor_id} step")
        msg = "the ledger does not balance"
        raise ArithmeticError(msg)


class Steady(Actor, name="sup.Steady"):
    """A workflow that sleeps, then returns."""

    async def run(self, ctx: Context, value: int) -> int:
        await ctx.sleep(10)
        return value


class Root(Actor, name="sup.Root"):
    """A workflow with children: waits for each child's result."""

    results: list[str] = attrs.Factory(list)

    async def run(self, ctx: Context, policy: Supervision | None) -> list[str]:
        good = await ctx.spawn(Steady, "good", 7, supervision=policy)
        bad = await ctx.spawn(Failing, "bad", supervision=policy)
        for child in (good, bad):
            try:
                self.results.append(f"{child.actor_id}={await child.result()}")
            except ActorFailed as error:
                self.results.append(f"{child.actor_id} failed: {error.error_message}")
        return self.results


@pytest.fixture
def log(stores: Stores) -> Iterator[ActorsLog]:
    with actors_log(stores.clock.now) as captured:
        yield captured


def fast(**options: Any) -> Supervision:
    return Supervision(backoff=Backoff(initial=0.5, max=4.0, jitter=0.0), **options)


# Handler turns: rollback, retry, poison messages --------------------------------------


async def test_a_crashed_handler_turn_is_rolled_back_and_the_message_handled_again(
    system: ActorSystem, log: ActorsLog
) -> None:
    worker = system.get(Worker, "w")
    crashes_left["w"] = 2  # a transient fault: the third try succeeds

    assert await worker.ask(Work(5)) == 5

    assert await worker.query(Worker.state) == (5, [5])  # the crashed turns left nothing
    assert calls == ["w work 5"] * 3  # the retried turn ran its activity anew
    assert [c["attempt"] for c in log.crashes()] == [1, 2]
    assert {c["source"] for c in log.crashes()} == {"handler"}
    assert await system.dead_letters() == []


async def test_a_signal_applied_during_a_turn_that_crashes_is_kept(
    stores: Stores, log: ActorsLog
) -> None:
    class Slow(Actor, name="sup.Slow"):
        total: int = 0
        log: list[str] = attrs.Factory(list)

        @handler
        async def work(self, ctx: Context, msg: Work) -> int:
            self.log.append(f"start {msg.n}")
            await ctx.sleep(5)  # a signal arrives meanwhile
            if crashes_left.get(ctx.actor_id, 0) > 0:
                crashes_left[ctx.actor_id] -= 1
                text = "hiccup"
                raise RuntimeError(text)
            self.total += msg.n
            return self.total

        @signal
        def add(self, n: int) -> None:
            self.total += n
            self.log.append(f"signal {n}")

        @query
        def state(self) -> tuple[int, list[str]]:
            return self.total, list(self.log)

    crashes_left["s"] = 1
    async with stores.system(Slow) as system:
        ref = system.get(Slow, "s")
        await ref.tell(Work(10))
        await settle(system)
        await ref.signal(Slow.add, 100)

        assert await ref.ask(Work(1)) == 111

        total, entries = await ref.query(Slow.state)
        assert total == 111
        assert entries == ["signal 100", "start 10", "start 1"]


async def test_a_poison_message_goes_to_dead_letters_and_the_actor_goes_on(
    stores: Stores, log: ActorsLog
) -> None:
    async with stores.system(supervision=fast(max_restarts=2)) as system:
        worker = system.get(Worker, "w")
        await worker.ask(Work(1))

        with pytest.raises(ActorFailed) as failed:
            await worker.ask(Fault("bad input"))

        assert (failed.value.type, failed.value.error_message) == ("ValueError", "bad input")
        assert await worker.ask(Work(2)) == 3
        [letter] = await system.dead_letters()
        assert letter.message == Fault("bad input")
        assert "more than 2 times" in letter.reason
        assert [c["attempt"] for c in log.crashes()] == [1, 2]
        assert [c["delay"] for c in log.crashes()] == [0.5, 1.0]
    async with stores.system(Worker) as system:  # dropped for good: not retried
        assert await system.get(Worker, "w").query(Worker.state) == (3, [1, 2])


async def test_on_poison_fail_fails_a_top_level_actor_instead(stores: Stores) -> None:
    async with stores.system(supervision=fast(max_restarts=1, on_poison=OnPoison.FAIL)) as system:
        worker = system.get(Worker, "w")
        await worker.ask(Work(0))
        await worker.tell(Fault("bad input"))
        await worker.tell(Work(1))

        with pytest.raises(ActorFailed, match="bad input"):
            await worker.result()
        assert await worker.status() is Status.FAILED
        letters = await system.dead_letters()
        # The message that crashed it (its asker gets the error), then its mailbox.
        assert [letter.message for letter in letters] == [Fault("bad input"), Work(1)]


async def _ended(ref: Any) -> bool:
    status: Status = await ref.status()
    return status.ended


# Crashes in run: replay to the same point, then give up -------------------------------


async def test_a_crash_in_run_recurs_until_the_budget_is_spent_then_the_actor_fails(
    stores: Stores, log: ActorsLog
) -> None:
    async with stores.system(supervision=fast(max_restarts=3)) as system:
        ref = await system.spawn(Failing, "f")

        with pytest.raises(ActorFailed) as failed:
            await ref.result()

        assert failed.value.type == "ArithmeticError"
        assert await ref.status() is Status.FAILED
        assert calls == ["f step"]  # replay never ran the completed step again
        crashes = log.crashes()
        assert [(c["actor_id"], c["attempt"], c["source"]) for c in crashes] == [
            ("f", 1, "run"),
            ("f", 2, "run"),
            ("f", 3, "run"),
        ]
        assert [c["delay"] for c in crashes] == [0.5, 1.0, 2.0]
        assert "ArithmeticError: the ledger does not balance" in crashes[0]["error"]
    async with stores.system(Failing) as system:  # durably failed: nothing runs again
        with pytest.raises(ActorFailed, match="does not balance"):
            await system.get(Failing, "f").result()
    assert calls == ["f step"]


async def test_backoff_doubles_up_to_its_cap_and_jitter_stays_within_its_fraction() -> None:
    import random  # noqa: PLC0415 - only this test draws

    backoff = Backoff(initial=0.1, max=0.5, jitter=0.2)
    rng = random.Random(7)
    for attempt, base in enumerate([0.1, 0.2, 0.4, 0.5, 0.5], start=1):
        delay = backoff.delay(attempt, rng)
        assert base * 0.8 <= delay <= base * 1.2
    exact = Backoff(initial=0.1, max=0.5, jitter=0.0)
    assert [exact.delay(n, rng) for n in (1, 2, 3, 4)] == [0.1, 0.2, 0.4, 0.5]


@pytest.mark.parametrize(
    "options",
    [{"max_restarts": -1}, {"period": -1.0}],
)
def test_a_bad_supervision_policy_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="negative"):
        Supervision(**options)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2.0)


# Trees: children, results, watching, stopping -----------------------------------------


async def test_a_temporary_child_fails_at_its_first_crash_and_its_parent_gets_the_error(
    stores: Stores, log: ActorsLog
) -> None:
    async with stores.system() as system:
        root = await system.spawn(Root, "root", fast(restart=RestartType.TEMPORARY))

        assert await root.result() == ["good=7", "bad failed: the ledger does not balance"]
        assert log.crashes() == []  # never restarted
        assert await system.get(Failing, "bad").status() is Status.FAILED


async def test_a_child_past_its_budget_escalates_until_the_root_gives_up(
    stores: Stores, log: ActorsLog
) -> None:
    async with stores.system(supervision=fast(max_restarts=1)) as system:
        root = await system.spawn(Root, "root", fast(max_restarts=2))

        with pytest.raises(ActorFailed) as failed:
            await root.result()

        assert failed.value.type == "actors.ChildFailed"
        assert [info.type for info in failed.value.failure] == [
            "actors.ChildFailed",
            "ArithmeticError",
        ]
        restarted = [(c["actor_id"], c["attempt"]) for c in log.crashes()]
        # bad: 2 restarts, then root restarts (a fresh budget for its children), bad
        # crashes twice more, and the root's own budget (1) is spent.
        assert restarted == [("bad", 1), ("bad", 2), ("root", 1), ("bad", 1), ("bad", 2)]
        assert await system.get(Failing, "bad").status() is Status.TERMINATED
        assert await system.get(Steady, "good").status() is Status.TERMINATED
        assert calls == ["bad step"]  # no restart re-ran a completed activity


class Watcher(Actor, name="sup.Watcher"):
    """Watches a child and reports how it ended."""

    async def run(self, ctx: Context, fail: bool) -> str:
        child: WorkflowRef[Actor]
        if fail:
            child = await ctx.spawn(Failing, "w-child", supervision=fast(max_restarts=0))
        else:
            child = await ctx.spawn(Steady, "w-child", 3)
        ctx.watch(child)
        ended = await ctx.receive(Terminated)
        late = ctx.get(Steady, "w-child")
        ctx.watch(late)  # already ended: the notice comes at once
        again = await ctx.receive(Terminated)
        return f"{ended.actor_id} {ended.status} {ended.reason!r} / {again.status}"


@pytest.mark.parametrize(
    ("fail", "expected"),
    [
        (False, "w-child completed '' / completed"),
        (True, "w-child failed 'the ledger does not balance' / failed"),
    ],
)
async def test_watch_delivers_terminated_when_the_watched_actor_ends(
    stores: Stores, fail: bool, expected: str
) -> None:
    async with stores.system() as system:
        ref = await system.spawn(Watcher, "watcher", fail)
        if fail:  # the child fails at its first crash; escalation fails its parent...
            with pytest.raises(ActorFailed, match="ChildFailed"):
                await ref.result()
            return
        assert await ref.result() == expected


async def test_a_childs_result_is_replayed_after_the_parent_restarts(stores: Stores) -> None:
    async with stores.system() as system:
        await system.spawn(Root, "root", fast(restart=RestartType.TEMPORARY))
        await settle(system)  # root waits for good's result; good sleeps
        assert await system.get(Steady, "good").status() is Status.RUNNING
    async with stores.system(Root, Steady, Failing) as system:
        root = system.get(Root, "root")
        assert await root.result() == ["good=7", "bad failed: the ledger does not balance"]
    watches = [m for m in await stores.journal.pending("good") if m.key.startswith("act:root")]
    assert watches == []  # the watch was answered (consumed), not left waiting
    assert calls == ["bad step"]


class Parent(Actor, name="sup.Parent"):
    async def run(self, ctx: Context) -> str:
        for name in ("c1", "c2", "c3"):
            await ctx.spawn(Steady, name, 1)
        await ctx.sleep(1)
        return "done before the children"


async def test_a_parent_that_ends_stops_its_children(stores: Stores) -> None:
    async with stores.system() as system:
        parent = await system.spawn(Parent, "p")

        assert await parent.result() == "done before the children"

        for name in ("c1", "c2", "c3"):
            child = system.get(Steady, name)
            await until(lambda c=child: _ended(c), f"{name} stopped")  # type: ignore[misc]
            assert await child.status() is Status.TERMINATED
            with pytest.raises(ActorFailed, match="terminated"):
                await child.result()


# Strategies -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "restarted"),
    [
        (Strategy.ONE_FOR_ONE, ["b"]),
        (Strategy.ONE_FOR_ALL, ["a", "b", "c"]),
        (Strategy.REST_FOR_ONE, ["b", "c"]),
    ],
)
async def test_each_strategy_restarts_its_siblings_in_spawn_order(
    stores: Stores, log: ActorsLog, strategy: Strategy, restarted: list[str]
) -> None:
    async with stores.system() as system:
        team = system.get(Team, "team")
        await team.ask(Hire(("a", "b", "c"), fast(strategy=strategy)))
        for worker_id in ("a", "b", "c"):
            await team.ask(Forward(worker_id, 1))
        crashes_left["b"] = 1

        assert await team.ask(Forward("b", 10)) == 11

        assert log.restarts() == restarted
        for worker_id, total in (("a", 1), ("b", 11), ("c", 1)):
            state = await system.get(Worker, worker_id).query(Worker.state)
            assert state[0] == total  # nothing committed was lost by the restarts


# Rejected: failing on purpose is not a crash -----------------------------------------


class Strict(Actor, name="sup.Strict"):
    balance: int = 0
    refusals: int = 0

    @handler
    async def withdraw(self, ctx: Context, msg: Work) -> int:
        if msg.n > self.balance:
            self.refusals += 1  # kept: a rejection is a normal end of the turn
            text = f"cannot withdraw {msg.n} from {self.balance}"
            raise InsufficientFundsError(text)
        self.balance -= msg.n
        return self.balance

    @signal
    def fund(self, n: int) -> None:
        self.balance += n

    @query
    def state(self) -> tuple[int, int]:
        return self.balance, self.refusals


class InsufficientFundsError(Rejected):
    pass


class Refuser(Actor, name="sup.Refuser"):
    async def run(self, ctx: Context) -> str:
        await ctx.activity(step, "refuser step")
        text = "the order was cancelled by the customer"
        raise Rejected(text)


async def test_a_rejection_from_a_handler_answers_at_once_without_a_restart(
    system: ActorSystem, log: ActorsLog
) -> None:
    account = system.get(Strict, "acct")
    assert await account.ask(Work(0)) == 0  # creates it
    await account.signal(Strict.fund, 5)

    with pytest.raises(ActorFailed) as failed:
        await account.ask(Work(9))

    assert failed.value.type.endswith("InsufficientFundsError")
    assert failed.value.error_message == "cannot withdraw 9 from 5"
    assert await account.ask(Work(2)) == 3
    assert await account.query(Strict.state) == (3, 1)
    assert log.crashes() == []
    assert await system.dead_letters() == []


async def test_a_rejection_from_run_fails_the_actor_at_once(
    system: ActorSystem, log: ActorsLog
) -> None:
    ref = await system.spawn(Refuser, "r")

    with pytest.raises(ActorFailed, match="cancelled by the customer"):
        await ref.result()

    assert log.crashes() == []
    assert calls == ["refuser step"]


class Ticker(Actor, name="sup.Ticker"):
    ticks: int = 0

    async def run(self, ctx: Context, label: str) -> int:
        self.ticks += 1  # a fresh state each run: always 1 at the end
        await ctx.sleep(1)
        await ctx.activity(step, f"{label} tick")
        return self.ticks

    @query
    def count(self) -> int:
        return self.ticks


class Keeper(Actor, name="sup.Keeper"):
    async def run(self, ctx: Context) -> str:
        await ctx.spawn(Ticker, "ticker", "t", supervision=fast(restart=RestartType.PERMANENT))
        await ctx.sleep(3600)
        return "done"


async def test_a_permanent_child_starts_a_new_run_whenever_its_run_ends(
    stores: Stores, log: ActorsLog
) -> None:
    async with stores.system() as system:
        await system.spawn(Keeper, "keeper")
        ticker = system.get(Ticker, "ticker")
        for _ in range(3):
            await settle(system)
            await stores.clock.advance(1.0)
        await settle(system)
        assert calls == ["t tick"] * 3  # one per run, each run from a fresh state
        assert await ticker.status() is Status.RUNNING
        assert await ticker.query(Ticker.count) == 1  # not 4: each run starts afresh
    async with stores.system(Keeper, Ticker) as system:  # the next run goes on
        await settle(system)
        await stores.clock.advance(1.0)
        await settle(system)
        assert calls == ["t tick"] * 4
        ticker = system.get(Ticker, "ticker")
        await ticker.terminate()
        await stores.clock.advance(5.0)
        await settle(system)
        assert await ticker.status() is Status.TERMINATED
        assert calls == ["t tick"] * 4


def test_a_window_shared_by_children_of_different_periods_forgets_nothing_too_early() -> None:
    window = RestartWindow()
    long = Supervision(max_restarts=2, period=1.0)
    short = Supervision(max_restarts=1, period=0.25)

    assert window.allow(0.0, short) == 1
    assert window.allow(0.35, short) == 1  # only 0.35 is within the short period...
    assert window.allow(0.4, long) is None  # ...but 0.0 and 0.35 both count for the long
    window = RestartWindow()
    assert window.allow(0.0, short) == 1
    assert window.allow(0.35, long) == 2  # 0.0 is within the long period
    assert window.allow(0.35, short) is None  # 0.35 is within the short one
    assert window.allow(0.45, long) is None  # 0.0 and 0.35 still count for the long one
    assert window.allow(1.2, long) == 2  # 0.0 has left the long period; 0.35 has not
