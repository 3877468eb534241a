"""The sans-IO replay engine, fed histories directly: no journal, no system, no host loop.

Every test is a plain function: ``Engine.activate`` makes the actor's deterministic loop
the running loop only while it runs, so no host loop is needed. The engine never runs an
activity; a test plays the host and feeds its outcome back (``ActivityCompleted``).
``Recording`` keeps a live run's history as the runner commits it (each input, then the
commands its activation returned), so a scenario can check that its history replays.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors._actor import Actor, signal
from actors._context import Context
from actors._events import (
    ALL_EVENTS,
    INPUTS,
    NOTES,
    ActivityCompleted,
    ActivityFailed,
    ActivityScheduled,
    AttemptFailed,
    Cancelled,
    CancelRequested,
    Command,
    Completed,
    ContinuedAsNew,
    Failed,
    GaveUp,
    HistoryEvent,
    Input,
    Note,
    Patched,
    SignalReceived,
    Started,
    Terminated,
    TimerCancelled,
    TimerFired,
    TimerStarted,
)
from actors._exceptions import ActivityError, ErrorInfo, NondeterminismError
from actors._replay import Engine, split_activations
from journal.codec import Codec

CODEC = Codec()
for _event_type in ALL_EVENTS:
    CODEC.register(_event_type, name=f"perdure.{_event_type.__name__}")
NOTHING = "nothing (the code waited for input)"
NO_FURTHER = "no further command (the code waited for input)"
CHARGE = "activity 'charge'"
BOOM = ErrorInfo(type="OSError", message="card network down", traceback="Traceback ...")
A_TIMER = TimerStarted(cmd=2, fire_at=200.0)
CHARGE_1 = ActivityScheduled(cmd=1, name="charge")
REFUND_1 = ActivityScheduled(cmd=1, name="refund")


class Recording(Engine):
    """An engine that keeps its history: each input, then the commands after it."""

    def __init__(self, actor: Actor, actor_id: str = "a") -> None:
        CODEC.register(type(actor), name=f"test:{type(actor).__actor_name__}")
        super().__init__(actor_id=actor_id, actor=actor, codec=CODEC, now=100.0)
        self.initial_state = CODEC.encode(actor)
        self.history: list[tuple[int, HistoryEvent]] = []

    def activate(
        self, event: Input, *, seq: int = 0, recorded: Sequence[Command] | None = None
    ) -> list[Command]:
        if recorded is None:  # live: the input goes after the history so far
            seq = len(self.history) + 1
        returned = super().activate(event, seq=seq, recorded=recorded)
        after = returned if recorded is None else recorded
        self.history.append((seq, event))
        self.history.extend((seq + i, c) for i, c in enumerate(after, start=1))
        return returned

    def note(self, event: Note | Terminated) -> None:
        super().note(event)
        self.history.append((len(self.history) + 1, event))


engine_for = Recording


def started(*args: object, time: float = 100.0) -> Started:
    return Started(time=time, args=CODEC.encode(list(args)))


def completed(cmd: int, result: object, *, time: float = 101.0) -> ActivityCompleted:
    return ActivityCompleted(time=time, cmd=cmd, result=CODEC.encode(result))


def signalled(name: str, *args: object, time: float = 101.0) -> SignalReceived:
    return SignalReceived(time=time, name=name, args=CODEC.encode(list(args)))


def result_of(engine: Engine) -> object:
    assert isinstance(engine.outcome, Completed), engine.outcome
    return CODEC.decode(engine.outcome.result)


def assert_refused(
    engine: Engine, *events: Input, raises: type[Exception] = ValueError, match: str = ""
) -> None:
    """Each event is refused, and refusing it changes nothing (h11's rule)."""

    def state() -> tuple[object, ...]:
        activities, timers = sorted(engine.activities), sorted(engine.timers)
        return (engine.next_cmd, activities, timers, engine.outcome, CODEC.encode(engine.actor))

    before = state()
    for event in events:
        assert not engine.accepts(event)
        with pytest.raises(raises, match=match or f"cannot take {type(event).__name__} now"):
            engine.activate(event)
        assert state() == before


def replay(history: Sequence[tuple[int, HistoryEvent]], engine: Engine) -> Engine:
    """Replay a history into a fresh engine, as recovery does; replay returns nothing."""
    for seq, event, commands in split_activations(history):
        if isinstance(event, INPUTS):
            assert engine.activate(event, seq=seq, recorded=commands) == []
        else:
            assert isinstance(event, NOTES)
            engine.note(event)
    return engine


def assert_replays(live: Recording) -> None:
    """Replay ``live``'s history into a fresh engine: same state, outcome and numbering."""
    actor = CODEC.decode(live.initial_state)
    assert isinstance(actor, Actor)
    fresh = replay(live.history, Engine(actor_id=live.actor_id, actor=actor, codec=CODEC))
    assert fresh.actor == live.actor
    assert (fresh.outcome, fresh.next_cmd) == (live.outcome, live.next_cmd)
    assert fresh.crash == live.crash  # a raise in workflow code recurs in replay


# Activities: the engine only reads their names; tests play the host.


def charge(amount: int) -> str:
    return f"charged {amount}"


def refund(amount: int) -> str:
    return f"refunded {amount}"


def double(x: int) -> int:
    return 2 * x


class Charger(Actor, name="Charger"):
    async def run(self, ctx: Context, amount: int) -> str:
        return await ctx.activity(charge, amount)


class Approval(Actor, name="Approval"):
    approved: bool = False

    @signal
    def approve(self) -> None:
        self.approved = True

    @signal
    def reject(self, reason: str) -> None:
        raise ValueError(reason)

    async def run(self, ctx: Context, timeout: float | None) -> str | bool:
        if timeout is not None:
            return await ctx.wait_until(lambda: self.approved, timeout=timeout)
        await ctx.wait_until(lambda: self.approved)
        return await ctx.activity(charge, 10)


# Live runs.


class Errand(Actor, name="Errand"):
    async def run(self, ctx: Context, amount: int) -> list[object]:
        receipt, doubled = await asyncio.gather(
            ctx.activity(charge, amount), ctx.activity(double, amount)
        )
        await ctx.sleep(timedelta(seconds=5))
        await asyncio.sleep(2.5)
        await asyncio.sleep(0)  # already due: no durable timer
        return [receipt, doubled, ctx.now()]


def test_live_run_issues_numbered_activities_timers_and_completion() -> None:
    engine = engine_for(Errand())

    assert engine.activate(started(7)) == [CHARGE_1, ActivityScheduled(cmd=2, name="double")]
    new = [(p.cmd, p.fn, p.args) for p in engine.take_new_activities()]
    assert new == [(1, charge, (7,)), (2, double, (7,))]
    assert engine.take_new_activities() == []
    assert engine.activate(completed(2, 14, time=101.0)) == []
    assert engine.activate(completed(1, "charged 7", time=102.0)) == [
        TimerStarted(cmd=3, fire_at=107.0)
    ]
    assert engine.activate(TimerFired(time=107.5, cmd=3)) == [TimerStarted(cmd=4, fire_at=110.0)]
    commands = engine.activate(TimerFired(time=110.0, cmd=4))

    result = ["charged 7", 14, datetime.fromtimestamp(110.0, UTC)]
    assert commands == [Completed(result=CODEC.encode(result))]
    assert engine.outcome == commands[0]
    assert engine.next_cmd == 5
    assert_replays(engine)


class Clock(Actor, name="Clock"):
    times: list[float] = attrs.field(factory=list)

    async def run(self, ctx: Context) -> None:
        self.times.append(ctx.now().timestamp())
        for _ in range(2):
            await ctx.activity(double, 1)
            self.times.append(ctx.now().timestamp())


def test_now_is_the_time_of_the_input_being_handled_and_never_goes_back() -> None:
    engine = engine_for(Clock())
    engine.activate(started(time=100.0))
    engine.activate(completed(1, 2, time=103.5))
    engine.activate(completed(2, 2, time=90.0))  # a host clock stepping back

    assert engine.actor == Clock(times=[100.0, 103.5, 103.5])
    assert_replays(engine)


class Dice(Actor, name="Dice"):
    async def run(self, ctx: Context) -> list[object]:
        return [ctx.random(), ctx.random(), ctx.uuid4()]


def test_random_and_uuid4_depend_only_on_the_actor_id() -> None:
    def roll(actor_id: str) -> list[object]:
        engine = engine_for(Dice(), actor_id=actor_id)
        engine.activate(started())
        result = result_of(engine)
        assert isinstance(result, list)
        return result

    first, again, other = roll("order/1"), roll("order/1"), roll("order/2")

    assert first == again
    assert first[0] != first[1]
    assert isinstance(first[2], UUID)
    assert first[2].version == 4
    assert all(a != b for a, b in zip(first, other, strict=True))


# The key property: replaying a recorded history reaches the same state and outcome.


class Gatherer(Actor, name="Gatherer"):
    signals: int = 0
    log: list[str] = attrs.field(factory=list)

    @signal
    def poke(self, note: str) -> None:
        self.signals += 1
        self.log.append(f"signal {note}")

    async def run(self, ctx: Context, branches: int) -> list[object]:
        results = await asyncio.gather(*(self._branch(ctx, i) for i in range(branches)))
        self.log.append(f"done after {self.signals} signals, uuid {ctx.uuid4()}")
        return [*results, ctx.random()]

    async def _branch(self, ctx: Context, i: int) -> int:
        try:
            first = await ctx.activity(double, i)
        except ActivityError as error:
            self.log.append(f"branch {i} failed: {error}")
            first = -1
        self.log.append(f"branch {i} got {first} at {ctx.now().timestamp()}")
        await ctx.sleep(i + 1)
        return await ctx.activity(double, first)  # a failure here fails the run


def run_gatherer(data: st.DataObject, branches: int) -> Recording:
    """Drive a Gatherer live through an interleaving the test draws, to its end."""
    engine = engine_for(Gatherer(), actor_id="gatherer")
    time = 100.0
    engine.activate(started(branches, time=time))
    signals, failures = 0, data.draw(st.integers(0, 2), label="activity failures")
    while engine.outcome is None and engine.crash is None:  # a raise is a crash
        options: list[tuple[str, int]] = [("complete", c) for c in sorted(engine.activities)]
        options += [("fail", c) for c in sorted(engine.activities)] if failures else []
        options += [("fire", c) for c in sorted(engine.timers)]
        options += [("signal", signals)] if signals < 4 else []
        kind, number = data.draw(st.sampled_from(options))
        time += 1.0
        if kind == "complete":
            pending = engine.activities[number]
            engine.activate(completed(number, pending.fn(*pending.args), time=time))
        elif kind == "fail":
            failures -= 1
            engine.activate(ActivityFailed(time=time, cmd=number, attempts=3, failure=(BOOM,)))
        elif kind == "fire":
            time = max(time, engine.timers[number].when())
            engine.activate(TimerFired(time=time, cmd=number))
        else:
            signals += 1
            engine.activate(signalled("poke", f"s{number}", time=time))
    return engine


@settings(max_examples=100, deadline=None)
@given(data=st.data(), branches=st.integers(1, 4))
def test_replaying_a_recorded_history_reaches_the_same_state_and_outcome(
    data: st.DataObject, branches: int
) -> None:
    live = run_gatherer(data, branches)
    stored = [(seq, CODEC.decode(CODEC.encode(event))) for seq, event in live.history]
    assert stored == live.history  # stored and read back, as recovery reads it
    assert_replays(live)

    # A crash after any activation: replay up to there, then the rest runs live again.
    groups = split_activations(live.history)
    crash = data.draw(st.integers(0, len(groups)), label="activations before the crash")
    size = sum(1 + len(commands) for _, _, commands in groups[:crash])
    recovered = engine_for(Gatherer(), actor_id="gatherer")
    replay(live.history[:size], recovered)
    for _, event, commands in groups[crash:]:
        assert isinstance(event, INPUTS)
        assert recovered.activate(event) == commands
    assert (recovered.actor, recovered.outcome) == (live.actor, live.outcome)
    assert recovered.crash == live.crash
    assert recovered.history == live.history


# Determinism errors.


def replay_error(
    actor: Actor, recorded: list[Command], *, seq: int = 1
) -> tuple[Engine, NondeterminismError]:
    engine = engine_for(actor, actor_id="order/1")
    with pytest.raises(NondeterminismError) as caught:
        engine.activate(started(5), seq=seq, recorded=recorded)
    return engine, caught.value


@pytest.mark.parametrize(
    ("actor", "recorded", "event", "expected", "got"),
    [
        (Charger(), [REFUND_1], 11, "activity 'refund'", CHARGE),
        (Approval(), [CHARGE_1], 11, CHARGE, "a timer"),
        (Charger(), [], 11, NO_FURTHER, CHARGE),
        # The unmatched timer is the second command after the input at event 10.
        (Charger(), [CHARGE_1, A_TIMER], 12, "a timer", NOTHING),
    ],
    ids=["activity renamed", "timer for an activity", "more commands", "fewer commands"],
)
def test_replay_that_issues_other_commands_raises_nondeterminism_error(
    actor: Actor, recorded: list[Command], event: int, expected: str, got: str
) -> None:
    _, error = replay_error(actor, recorded, seq=10)

    assert error.actor_id == "order/1"
    assert (error.event, error.expected, error.got) == (event, expected, got)
    message = str(error)
    for part in ("'order/1'", f"event {event}", expected, got, "ctx.patched"):
        assert part in message


class Swallower(Actor, name="Swallower"):
    swallowed: str = ""

    async def run(self, ctx: Context, amount: int) -> str:
        try:
            return await ctx.activity(charge, amount)
        except Exception as error:  # the broad catch under test
            self.swallowed = type(error).__name__
            return "swallowed"


def test_nondeterminism_escapes_a_broad_except_and_the_engine_takes_no_more_input() -> None:
    engine, error = replay_error(Swallower(), [REFUND_1])

    assert engine.actor == Swallower(swallowed="NondeterminismError")
    assert (error.expected, error.got) == ("activity 'refund'", "activity 'charge'")
    # Every later input gets the same error: the engine is done for until new code.
    assert_refused(
        engine,
        completed(1, "charged 5"),
        signalled("x"),
        CancelRequested(time=102.0),
        raises=NondeterminismError,
        match="replayed activity 'charge'",
    )
    assert engine.outcome is None  # suspended, not failed: the run has no outcome


# Signals.


def test_a_signal_wakes_wait_until_in_the_same_activation() -> None:
    engine = engine_for(Approval())
    assert engine.activate(started(None)) == []

    assert engine.activate(signalled("approve")) == [CHARGE_1]
    assert_replays(engine)


def test_a_signal_method_that_raises_crashes_the_run_until_the_supervisor_gives_up() -> None:
    engine = engine_for(Approval())
    engine.activate(started(30.0))

    commands = engine.activate(signalled("reject", "over budget"))

    assert commands == []  # a crash issues nothing: the supervisor decides
    assert engine.outcome is None
    assert engine.crash is not None
    assert engine.crash.source == "signal"
    (failure,) = engine.crash.failure
    assert (failure.type, failure.message) == ("ValueError", "over budget")
    assert "in reject" in failure.traceback
    assert not engine.accepts(signalled("approve"))
    assert_replays(engine)

    engine.note(GaveUp(time=102.0, failure=engine.crash.failure))
    after: tuple[object, object] = (engine.outcome, engine.crash)  # not the narrowed types
    assert after == (Failed(failure=(failure,)), None)
    assert_replays(engine)


class Ledger(Actor, name="Ledger"):
    log: list[str] = attrs.field(factory=list)

    @signal
    def note(self, text: str) -> None:
        self.log.append(text)

    async def run(self, ctx: Context) -> list[str]:
        for i in range(3):
            self.log.append(f"activity {await ctx.activity(double, i)}")
        return self.log


def test_signals_between_activity_completions_are_seen_in_order() -> None:
    engine = engine_for(Ledger())
    inputs: list[Input] = [
        started(),
        signalled("note", "a"),
        completed(1, 0),
        signalled("note", "b"),
        signalled("note", "c"),
        completed(2, 2),
        completed(3, 4),
    ]
    for event in inputs:
        engine.activate(event)

    log = ["a", "activity 0", "b", "c", "activity 2", "activity 4"]
    assert result_of(engine) == log
    assert_replays(engine)


# Cancellation.


class Cancellable(Actor, name="Cancellable"):
    log: list[str] = attrs.field(factory=list)

    async def run(self, ctx: Context, cleanup: str) -> str:
        try:
            self.log.append("charging")
            await ctx.activity(charge, 10)
            self.log.append("sleeping")
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.log.append(f"cancelled at {ctx.now().timestamp()}")
            if cleanup == "none":
                raise
            await ctx.activity(refund, 10)
            if cleanup == "reraise":
                raise
        return "released"


def test_cancel_raises_cancelled_error_at_the_current_await() -> None:
    engine = engine_for(Cancellable())
    engine.activate(started("none"))

    assert engine.activate(CancelRequested(time=105.0)) == [Cancelled()]
    assert engine.actor == Cancellable(log=["charging", "cancelled at 105.0"])
    assert engine.outcome == Cancelled()
    assert_replays(engine)


@pytest.mark.parametrize(
    ("cleanup", "outcome"),
    [("return", Completed(result=CODEC.encode("released"))), ("reraise", Cancelled())],
)
def test_a_workflow_that_catches_cancel_cleans_up_then_returns_or_reraises(
    cleanup: str, outcome: Command
) -> None:
    engine = engine_for(Cancellable())
    engine.activate(started(cleanup))
    engine.activate(completed(1, "charged 10"))

    assert engine.activate(CancelRequested(time=105.0)) == [
        TimerCancelled(cmd=2),
        ActivityScheduled(cmd=3, name="refund"),
    ]
    assert engine.activate(completed(3, "refunded 10", time=106.0)) == [outcome]
    assert engine.actor == Cancellable(log=["charging", "sleeping", "cancelled at 105.0"])
    assert_replays(engine)


class Background(Actor, name="Background"):
    ticks: int = 0

    async def run(self, ctx: Context) -> str:
        ticker = asyncio.get_running_loop().create_task(self._tick())
        receipt = await ctx.activity(charge, 1)
        assert not ticker.done()
        return receipt

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(10)
            self.ticks += 1


def test_timers_still_pending_when_the_run_ends_are_cancelled() -> None:
    engine = engine_for(Background())
    assert engine.activate(started()) == [
        CHARGE_1,
        TimerStarted(cmd=2, fire_at=110.0),
    ]

    assert engine.activate(completed(1, "charged 1")) == [
        Completed(result=CODEC.encode("charged 1")),
        TimerCancelled(cmd=2),
    ]
    assert engine.timers == {}
    assert_replays(engine)


# wait_until with a timeout.


def test_wait_until_with_a_timeout_returns_false_when_its_timer_fires() -> None:
    engine = engine_for(Approval())
    assert engine.activate(started(30.0)) == [TimerStarted(cmd=1, fire_at=130.0)]

    assert engine.activate(TimerFired(time=130.0, cmd=1)) == [Completed(result=CODEC.encode(False))]
    assert_replays(engine)


def test_wait_until_satisfied_before_its_timeout_cancels_the_timer() -> None:
    engine = engine_for(Approval())
    engine.activate(started(30.0))

    assert engine.activate(signalled("approve", time=110.0)) == [
        TimerCancelled(cmd=1),
        Completed(result=CODEC.encode(True)),
    ]
    assert not engine.accepts(TimerFired(time=130.0, cmd=1))
    assert_replays(engine)


# continue_as_new.


class Counter(Actor, name="Counter"):
    count: int = 0

    async def run(self, ctx: Context, left: int) -> str:
        try:
            self.count += await ctx.activity(double, 1)
            await ctx.continue_as_new(left - 1)
        except Exception:  # must not catch continue-as-new
            return "swallowed"


def test_continue_as_new_ends_the_run_with_its_arguments_and_state() -> None:
    engine = engine_for(Counter(count=5))
    engine.activate(started(3))

    (command,) = engine.activate(completed(1, 2))

    assert isinstance(command, ContinuedAsNew)
    assert engine.outcome == command
    assert CODEC.decode(command.args) == [2]
    assert CODEC.decode(command.state) == Counter(count=7)
    assert not engine.accepts(signalled("anything"))
    assert_replays(engine)


# ctx.patched.


class Versioned(Actor, name="Versioned"):
    path: str = ""

    async def run(self, ctx: Context) -> str:
        if ctx.patched("refund-first"):
            self.path = "new"
            return await ctx.activity(refund, 1)
        self.path = "old"
        return await ctx.activity(charge, 1)


def test_patched_live_records_a_marker_and_returns_true() -> None:
    engine = engine_for(Versioned())

    assert engine.activate(started()) == [
        Patched(change_id="refund-first"),
        REFUND_1,
    ]
    assert engine.actor == Versioned(path="new")
    assert_replays(engine)


@pytest.mark.parametrize(
    ("recorded", "path"),
    [
        ([CHARGE_1], "old"),
        ([Patched(change_id="refund-first"), REFUND_1], "new"),
        ([Patched(change_id="gone"), Patched(change_id="refund-first"), REFUND_1], "new"),
    ],
    ids=["before the change", "after it", "after it and a change whose patched() is gone"],
)
def test_patched_in_replay_follows_the_marker_in_the_history(
    recorded: list[Command], path: str
) -> None:
    engine = engine_for(Versioned())

    assert engine.activate(started(), seq=1, recorded=recorded) == []

    assert engine.actor == Versioned(path=path)
    assert engine.activate(completed(1, "done")) == [Completed(result=CODEC.encode("done"))]


@pytest.mark.parametrize(
    "recorded",
    [
        [Patched(change_id="gone"), CHARGE_1],
        [CHARGE_1, Patched(change_id="gone")],
    ],
    ids=["before a command", "at the end of the activation"],
)
def test_a_recorded_marker_whose_patched_call_was_removed_is_skipped(
    recorded: list[Command],
) -> None:
    engine = engine_for(Charger())

    assert engine.activate(started(1), seq=1, recorded=recorded) == []
    done = [Completed(result=CODEC.encode("charged 1"))]
    assert engine.activate(completed(1, "charged 1"), seq=4, recorded=done) == []


# Failures.


class PaymentDeclinedError(Exception):
    pass


class Declined(Actor, name="Declined"):
    cards: dict[str, str] = attrs.field(factory=dict)

    async def run(self, ctx: Context) -> str:
        try:
            return self.cards["card"]
        except KeyError as error:
            msg = "no card on file"
            raise PaymentDeclinedError(msg) from error


def test_an_exception_in_run_fails_it_with_the_cause_chain() -> None:
    engine = engine_for(Declined())

    assert engine.activate(started()) == []

    assert engine.crash is not None
    assert engine.crash.source == "run"
    outer, cause = engine.crash.failure
    name = f"{PaymentDeclinedError.__module__}.PaymentDeclinedError"
    assert (outer.type, outer.message) == (name, "no card on file")
    assert outer.traceback.startswith("Traceback (most recent call last):")
    assert "in run" in outer.traceback
    assert "raise PaymentDeclinedError(msg) from error" in outer.traceback
    assert (cause.type, cause.message) == ("KeyError", "'card'")
    assert "The above exception" not in outer.traceback  # one entry per exception
    assert_replays(engine)


class Careful(Actor, name="Careful"):
    seen: str = ""

    async def run(self, ctx: Context, catch: bool) -> str:
        try:
            return await ctx.activity(charge, 1)
        except ActivityError as error:
            if not catch:
                raise
            self.seen = f"{error.name}/{error.attempts}/{error.failure == (BOOM,)}"
            return str(error)


def test_a_failed_activity_raises_activity_error_in_workflow_code() -> None:
    engine = engine_for(Careful())
    engine.activate(started(True))

    engine.activate(ActivityFailed(time=101.0, cmd=1, attempts=3, failure=(BOOM,)))

    assert engine.actor == Careful(seen="charge/3/True")
    message = "activity 'charge' failed after 3 attempt(s): OSError: card network down"
    assert result_of(engine) == message
    assert_replays(engine)


def test_an_uncaught_activity_failure_fails_the_run_with_the_activity_chain() -> None:
    engine = engine_for(Careful())
    engine.activate(started(False))

    assert engine.activate(ActivityFailed(time=101.0, cmd=1, attempts=3, failure=(BOOM,))) == []

    assert engine.crash is not None
    chain = [info.type for info in engine.crash.failure]
    assert chain == ["actors._exceptions.ActivityError", "OSError"]
    assert engine.crash.failure[1] == BOOM
    assert_replays(engine)


def test_failed_attempts_noted_in_the_history_are_reported_with_the_activity() -> None:
    engine = engine_for(Charger())
    engine.activate(started(1))
    engine.note(AttemptFailed(time=101.0, cmd=1, attempt=2, failure=(BOOM,)))

    (pending,) = engine.take_new_activities()

    assert (pending.cmd, pending.attempts, engine.attempts(1), engine.attempts(9)) == (1, 2, 2, 0)
    assert_replays(engine)


# What the engine accepts.


def test_an_input_the_run_does_not_expect_is_refused_and_changes_nothing() -> None:
    engine = engine_for(Errand())
    assert_refused(engine, signalled("x"), CancelRequested(time=101.0), completed(1, "x"))
    engine.activate(started(1))
    engine.activate(completed(1, "x"))
    engine.activate(completed(2, 2))
    engine.activate(TimerFired(time=105.0, cmd=3))

    assert_refused(
        engine,
        started(1),
        completed(1, "again"),  # settled already
        completed(9, "unknown"),  # never scheduled
        TimerFired(time=106.0, cmd=3),  # fired already
        TimerFired(time=106.0, cmd=9),
    )


def test_nothing_is_accepted_after_the_outcome() -> None:
    engine = engine_for(Background())
    engine.activate(started())
    engine.activate(completed(1, "charged 1"))
    assert engine.outcome is not None

    assert_refused(
        engine,
        started(),
        completed(1, "x"),
        ActivityFailed(time=102.0, cmd=1, attempts=1, failure=(BOOM,)),
        TimerFired(time=110.0, cmd=2),
        signalled("x"),
        CancelRequested(time=102.0),
    )


def test_nothing_is_accepted_once_the_history_notes_termination() -> None:
    engine = engine_for(Charger())
    engine.activate(started(1))

    engine.note(Terminated(time=102.0, reason="operator"))

    assert engine.terminated
    assert_refused(engine, completed(1, "charged 1"), CancelRequested(time=103.0))


# split_activations.


def test_split_activations_groups_each_input_or_note_with_the_commands_after_it() -> None:
    start, note = started(), AttemptFailed(time=101.0, cmd=1, attempt=1, failure=(BOOM,))
    done, end = completed(1, "x"), Completed(result=CODEC.encode("x"))
    scheduled, timer = CHARGE_1, TimerStarted(cmd=2, fire_at=9.0)
    events: list[HistoryEvent] = [start, scheduled, timer, note, done, end]
    history = list(enumerate(events, start=4))

    groups = [(4, start, [scheduled, timer]), (7, note, []), (8, done, [end])]
    assert split_activations(history) == groups
    assert split_activations([]) == []


def test_split_activations_rejects_a_history_that_begins_with_a_command() -> None:
    history: list[tuple[int, HistoryEvent]] = [(3, CHARGE_1)]

    with pytest.raises(ValueError, match=r"cannot begin with ActivityScheduled \(event 3\)"):
        split_activations(history)


# The core is pure: importing it loads no I/O library.

# `actors/__init__` imports the system (anyio, the journal backends), so the probe puts a
# bare package with the same __path__ in its place: what it measures is exactly what the
# named modules import. asyncio itself loads socket, ssl, selectors, subprocess and
# threading; the core may add none of those.
_PROBE = """
import importlib.util, json, sys, types
import asyncio
IO = {
    "anyio", "aiosqlite", "sqlite3", "_sqlite3", "asyncpg", "psycopg", "sniffio", "socket",
    "ssl", "select", "selectors", "subprocess", "threading", "concurrent.futures",
    "multiprocessing", "http.client", "urllib.request",
}
HOST = {
    "actors._system", "actors._runner", "actors._activities", "actors._clock", "actors._ref",
    "actors.testing", "journal.memory", "journal.sqlite", "journal._sqlite_writer",
}
by_asyncio = IO & set(sys.modules)
spec = importlib.util.find_spec("actors")
package = types.ModuleType("actors")
package.__path__ = list(spec.submodule_search_locations)
sys.modules["actors"] = package
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = set(sys.modules)
print(json.dumps({"io": sorted((IO & loaded) - by_asyncio), "host": sorted(HOST & loaded)}))
"""


def probe_imports(*modules: str) -> dict[str, list[str]]:
    command = [sys.executable, "-c", _PROBE, *modules]
    run = subprocess.run(command, capture_output=True, text=True, check=True)
    report: dict[str, list[str]] = json.loads(run.stdout)
    return report


def test_importing_the_replay_core_loads_no_io_library() -> None:
    report = probe_imports("actors._replay", "actors._loop", "actors._events")

    assert report == {"io": [], "host": []}


def test_the_import_probe_sees_what_a_host_module_loads() -> None:
    report = probe_imports("actors._runner")

    assert "anyio" in report["io"]
    assert "actors._runner" in report["host"]
