"""Tests for passivation, reactivation and snapshots of actors.

An idle actor leaves memory (the keeper passivates it past ``max_active`` or after
``idle_timeout``) and comes back, rebuilt from its newest snapshot and the journal
after it, when a message, a query or one of its timers reaches it. Every system runs
on a `VirtualClock` over memory stores; a restart is a new system on the same stores.
Background work (an eviction, an activation) is awaited by polling observable state
for a bounded number of loop turns, never by sleeping real time to order events; the
one test of ``idle_timeout``, which the keeper measures in real seconds, polls with
short real sleeps. Exactly-once is a list of activity calls that does not grow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

import attrs
import pytest

from actors import Actor, Context, Status, handler, query
from actors._events import Mail
from journal import Commit, Event, Message
from journal.memory import MemoryJournal

from ._support import Stores, calls, last_seq, settle, step, until


@attrs.frozen(kw_only=True)
class Add:
    n: int


@attrs.frozen(kw_only=True)
class Go:
    pass


@attrs.frozen(kw_only=True)
class Deposit:
    amount: int


class Ledger(Actor):
    """Message-driven: each message runs one activity, so handling is countable."""

    total: int = 0

    @handler
    async def add(self, ctx: Context, msg: Add) -> int:
        await ctx.activity(step, f"add {msg.n}")
        self.total += msg.n
        return self.total

    @query
    def get_total(self) -> int:
        return self.total


class Tally(Actor):
    """Message-driven without activities: two events a message, cheap to repeat."""

    total: int = 0

    @handler
    async def add(self, ctx: Context, msg: Add) -> int:
        self.total += msg.n
        return self.total

    @query
    def get_total(self) -> int:
        return self.total


class Sleeper(Actor):
    """A workflow that sleeps two hours on a durable timer between two steps."""

    async def run(self, ctx: Context, name: str) -> str:
        await ctx.activity(step, f"{name} before")
        await ctx.sleep(timedelta(hours=2))
        await ctx.activity(step, f"{name} after")
        return f"{name} woke"


class GoThenSleep(Actor):
    """Waits for Go, then sleeps two hours: the Go commit starts the timer."""

    async def run(self, ctx: Context) -> str:
        await ctx.receive(Go)
        await ctx.sleep(timedelta(hours=2))
        return "woke"


class AcctV1(Actor, name="Acct"):
    balance: int = 0

    @handler
    async def deposit(self, ctx: Context, msg: Deposit) -> int:
        self.balance += msg.amount
        return self.balance

    @query
    def get_balance(self) -> int:
        return self.balance


class AcctRetyped(Actor, name="Acct"):
    """Today's class: the balance became text, so the old snapshot no longer structures."""

    balance: str = "0"

    @handler
    async def deposit(self, ctx: Context, msg: Deposit) -> str:
        self.balance = str(int(self.balance) + msg.amount)
        return self.balance

    @query
    def get_balance(self) -> str:
        return self.balance


class AcctRenamed(Actor, name="Acct"):
    """Today's class: the field was renamed, with a default."""

    funds: int = 0

    @handler
    async def deposit(self, ctx: Context, msg: Deposit) -> int:
        self.funds += msg.amount
        return self.funds

    @query
    def get_funds(self) -> int:
        return self.funds


class CountingJournal(MemoryJournal):
    """Remembers each read: where it started and how many events it returned."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, int, int]] = []

    async def read(
        self, stream: str, after_seq: int = 0, limit: int | None = None
    ) -> Sequence[Event]:
        events = await super().read(stream, after_seq, limit)
        self.reads.append((stream, after_seq, len(events)))
        return events


class GatedJournal(MemoryJournal):
    """A journal whose commits wait at a gate, as a real disk write would."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()

    async def commit(self, commit: Commit) -> int:
        self.waiting.set()
        await self.gate.wait()
        return await super().commit(commit)


# Passivation and reactivation --------------------------------------------------------


async def test_past_max_active_idle_actors_leave_memory_and_come_back_with_their_state(
    stores: Stores,
) -> None:
    async with stores.system(max_active=5) as system:
        for i in range(20):
            assert await system.get(Ledger, f"l{i}").ask(Add(n=i)) == i
        await until(lambda: len(system._runners) <= 5, "eviction down to max_active")

        for i in range(20):
            assert await system.get(Ledger, f"l{i}").query(Ledger.get_total) == i
        await until(lambda: len(system._runners) <= 5, "eviction after the queries")
        assert await system.get(Ledger, "l0").ask(Add(n=100)) == 100
    assert calls == [*(f"add {i}" for i in range(20)), "add 100"]


async def test_a_message_for_a_passivated_actor_reactivates_it_and_is_handled_once(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        ledger = system.get(Ledger, "l")
        assert await ledger.ask(Add(n=1)) == 1
        assert await system._keeper.passivate(system._runners["l"])
        assert "l" not in system._runners

        await ledger.tell(Add(n=2))
        await until(lambda: "l" in system._runners, "reactivation by the message")
        assert await ledger.ask(Add(n=3)) == 6
        await settle(system)
    assert calls == ["add 1", "add 2", "add 3"]


async def test_a_query_reactivates_a_passivated_actor_without_journaling(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        ledger = system.get(Ledger, "l")
        assert await ledger.ask(Add(n=4)) == 4
        before = await last_seq(system, "l")
        assert await system._keeper.passivate(system._runners["l"])

        assert await ledger.query(Ledger.get_total) == 4
        assert "l" in system._runners
        assert await last_seq(system, "l") == before


async def test_spawned_actors_count_toward_max_active(stores: Stores) -> None:
    async with stores.system(max_active=2) as system:
        for i in range(6):
            await system.spawn(Sleeper, f"s{i}", f"s{i}")
            await settle(system)  # it waits on its timer now: it may be passivated
        await until(lambda: len(system._runners) <= 2, "eviction down to max_active")
        for i in range(6):
            assert await system.get(Sleeper, f"s{i}").status() is Status.RUNNING


async def test_an_idle_actor_is_passivated_after_idle_timeout(stores: Stores) -> None:
    async with stores.system(idle_timeout=0.02) as system:
        assert await system.get(Ledger, "l").ask(Add(n=1)) == 1
        for _ in range(200):  # the keeper measures idleness in real seconds
            if "l" not in system._runners:
                break
            await asyncio.sleep(0.01)
        assert "l" not in system._runners
        assert await system.get(Ledger, "l").query(Ledger.get_total) == 1


# Timers of passivated actors ---------------------------------------------------------


async def test_a_passivated_sleeping_workflow_is_woken_by_its_timer(stores: Stores) -> None:
    async with stores.system() as system:
        sleeper = await system.spawn(Sleeper, "s", "s")
        await settle(system)
        assert await system._keeper.passivate(system._runners["s"])
        assert "s" not in system._runners

        assert await sleeper.result() == "s woke"
    assert calls == ["s before", "s after"]


async def test_a_workflow_evicted_past_max_active_is_woken_by_its_timer(stores: Stores) -> None:
    async with stores.system(max_active=1) as system:
        sleeper = await system.spawn(Sleeper, "s", "s")
        await settle(system)
        assert await system.get(Ledger, "l").ask(Add(n=1)) == 1  # a second actor activates
        await until(lambda: "s" not in system._runners, "the sleeper evicted")

        assert await sleeper.result() == "s woke"
        assert await system.get(Ledger, "l").query(Ledger.get_total) == 1
    assert calls == ["s before", "add 1", "s after"]


async def test_a_passivated_sleeping_workflow_is_woken_by_its_timer_after_a_restart(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(Sleeper, "s", "s")
        await settle(system)
        assert await system._keeper.passivate(system._runners["s"])
    async with stores.system(Sleeper) as system:
        assert await system.get(Sleeper, "s").result() == "s woke"
    assert calls == ["s before", "s after"]


async def test_an_actor_whose_commit_is_in_flight_is_not_dropped_with_work_still_to_arm(
    stores: Stores,
) -> None:
    journal = stores.journal = GatedJournal()
    async with stores.system() as system:
        ref = await system.spawn(GoThenSleep, "g")
        journal.gate.clear()
        journal.waiting.clear()
        await ref.tell(Go())
        await journal.waiting.wait()  # the Go activation is being committed
        await system._keeper.passivate(system._runners["g"])
        journal.gate.set()

        assert await ref.result() == "woke"
        # A runner dropped mid-commit still arms the timer the commit started; its
        # firing is queued on the dropped runner, counted as work forever, and the
        # virtual clock (which moves only when the system is idle) stops.
        await until(lambda: system.busy == 0, "the system idle again")


# Snapshots ---------------------------------------------------------------------------


async def test_snapshots_are_taken_every_n_events_and_recovery_replays_only_the_tail(
    stores: Stores,
) -> None:
    journal = stores.journal = CountingJournal()
    async with stores.system(snapshot_every=10) as system:
        tally = system.get(Tally, "t")
        for _ in range(35):
            await tally.ask(Add(n=1))
        await tally.ask(Add(n=2))  # events after the newest snapshot
        last = await last_seq(system, "t")
        saved = sorted(s.seq for s in await stores.snapshots.all("t"))
    # Started, then a MessageReceived and a Replied per message: 1 + 2 * 36 = 73 events.
    # A snapshot follows once 10 events have piled up since the last one (from seq 11).
    assert last == 73
    # The store keeps the newest three: 51, 61 and 71.
    assert saved == [51, 61, 71]
    newest = saved[-1]

    journal.reads.clear()
    async with stores.system(Tally, snapshot_every=10) as system:
        assert await system.get(Tally, "t").query(Tally.get_total) == 37
    replayed = [(after, count) for stream, after, count in journal.reads if stream == "t"]
    assert replayed[0] == (newest, last - newest)


async def test_passivation_snapshots_an_actor_with_a_long_history(stores: Stores) -> None:
    async with stores.system() as system:  # snapshot_every is 200: none while handling
        tally = system.get(Tally, "t")
        for _ in range(15):
            await tally.ask(Add(n=1))
        assert await stores.snapshots.latest("t") is None
        assert await system._keeper.passivate(system._runners["t"])

        snapshot = await stores.snapshots.latest("t")
        assert snapshot is not None
        assert snapshot.seq == await last_seq(system, "t")
        assert await tally.ask(Add(n=1)) == 16


async def test_a_snapshot_that_no_longer_structures_is_skipped_for_a_full_replay(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    async with stores.system(snapshot_every=2) as system:
        for _ in range(3):
            await system.get(AcctV1, "a").ask(Deposit(amount=10))
    assert await stores.snapshots.latest("a") is not None

    with caplog.at_level(logging.WARNING, logger="actors"):
        async with stores.system(AcctRetyped, snapshot_every=2) as system:
            acct = system.get(AcctRetyped, "a")
            assert await acct.query(AcctRetyped.get_balance) == "30"
            assert await acct.ask(Deposit(amount=5)) == "35"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("snapshot" in r.getMessage() and "'a'" in r.getMessage() for r in warnings)


async def test_a_snapshot_of_a_class_whose_field_was_renamed_is_not_used(
    stores: Stores,
) -> None:
    async with stores.system(snapshot_every=2) as system:
        for _ in range(3):
            await system.get(AcctV1, "a").ask(Deposit(amount=10))
    assert await stores.snapshots.latest("a") is not None

    async with stores.system(AcctRenamed, snapshot_every=2) as system:
        # A full replay gives 30; the old snapshot {"balance": 30} must not be taken
        # for AcctRenamed(funds=0) with only the tail replayed onto it.
        assert await system.get(AcctRenamed, "a").query(AcctRenamed.get_funds) == 30


async def test_an_actor_holding_mail_it_would_take_now_is_not_passivated(stores: Stores) -> None:
    # White-box: a reply already in the in-memory mailbox but not yet taken (the runner
    # has not run since) must keep the actor in memory: nothing else would wake it.
    async with stores.system() as system:
        assert await system.get(Ledger, "l").ask(Add(n=1)) == 1
        runner = system._runners["l"]

        def droppable() -> bool:
            return runner.passivatable

        assert droppable()
        reply = Mail(kind="reply", target_type="", body=system.codec.encode(5))
        data = system.codec.encode(reply)
        runner.add_mail([Message(stream="l", key="reply/act:l/9", position=0, data=data)])
        assert not droppable()
        assert not await system._keeper.passivate(runner)
        assert system._runners["l"] is runner
        runner.mail.clear()  # never committed to the inbox: take it back before it runs


@pytest.fixture
def stores() -> Stores:
    return Stores(messages=(Go,))  # only ever received, named in no signature
