"""Tests for the host side: spawning, results, status, recovery, signals, cancel.

Every system runs on a `VirtualClock`, so timers of hours fire at once while a test
awaits `ref.result()`, and nothing here sleeps real time to order events. Exactly-once
is shown with module-level counters of activity calls that do not move across a
restart (the system is left and a new one opened on the same stores).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from actors import (
    Actor,
    ActorCancelled,
    ActorError,
    ActorFailed,
    ActorNotFoundError,
    ActorNotRunningError,
    ActorRef,
    ActorSystem,
    ActorTerminated,
    ActorTypeError,
    Context,
    NondeterminismError,
    Status,
    query,
    signal,
)
from actors.testing import VirtualClock
from journal import EncodeError

from ._support import Stores, last_seq, settle

calls: list[str] = []
"""Every call of `record`, in order: the exactly-once counter."""


async def record(step: str) -> str:
    calls.append(step)
    return step.upper()


@pytest.fixture(autouse=True)
def _clear_calls() -> Iterator[None]:
    calls.clear()
    yield
    calls.clear()


# Actors ------------------------------------------------------------------------------


class Once(Actor):
    async def run(self, ctx: Context, step: str) -> str:
        return await ctx.activity(record, step)


class Other(Actor):
    async def run(self, ctx: Context, step: str) -> str:
        return step


class Gate(Actor):
    """Records a step, waits for `open`, records another step; answers queries."""

    opened_by: str = ""
    steps: list[str] = attrs.Factory(list)

    async def run(self, ctx: Context, name: str) -> str:
        before: str = await ctx.activity(record, f"{name} before")
        self.steps.append(before)
        await ctx.wait_until(lambda: self.opened_by != "")
        after: str = await ctx.activity(record, f"{name} after")
        self.steps.append(after)
        return f"{name} opened by {self.opened_by}"

    @signal
    def open(self, by: str) -> None:
        self.opened_by = by

    @signal
    def explode(self) -> None:
        msg = "signal refused"
        raise RuntimeError(msg)

    @query
    def get_steps(self) -> list[str]:
        return self.steps

    @query
    def step(self, index: int) -> str:
        return self.steps[index]

    def not_a_signal(self, by: str) -> None:
        self.opened_by = by


class Napper(Actor):
    """Records a step, sleeps an hour on a durable timer, records another."""

    async def run(self, ctx: Context) -> str:
        _: str = await ctx.activity(record, "nap before")
        await ctx.sleep(timedelta(hours=1))
        _ = await ctx.activity(record, "nap after")
        return "rested"


class Fails(Actor):
    async def run(self, ctx: Context) -> None:
        msg = "no stock for order 42"
        raise ValueError(msg)


class Tidy(Actor):
    """Waits for a signal; when cancelled, runs a cleanup activity and returns."""

    go: bool = False

    async def run(self, ctx: Context) -> str:
        try:
            await ctx.wait_until(lambda: self.go)
        except asyncio.CancelledError:
            step: str = await ctx.activity(record, "cleanup")
            return f"cleaned up ({step})"
        return "finished"

    @signal
    def start(self) -> None:
        self.go = True


class Counter(Actor):
    """Continues as new for five runs, waiting for `resume` in the third."""

    seen: list[int] = attrs.Factory(list)
    resumed: bool = False

    async def run(self, ctx: Context, n: int) -> list[int]:
        self.seen.append(n)
        _: str = await ctx.activity(record, f"run {n}")
        if n == 3:
            await ctx.wait_until(lambda: self.resumed)
        if n < 5:
            await ctx.continue_as_new(n + 1)
        return self.seen

    @signal
    def resume(self) -> None:
        self.resumed = True

    @query
    def query_seen(self) -> list[int]:
        return self.seen


class SameV1(Actor, name="Same"):
    go: bool = False

    async def run(self, ctx: Context) -> str:
        _: str = await ctx.activity(record, "v1 step")
        await ctx.wait_until(lambda: self.go)
        return "v1 done"

    @signal
    def start(self) -> None:
        self.go = True


class SameV2(Actor, name="Same"):
    go: bool = False

    async def run(self, ctx: Context) -> str:
        _: int = await ctx.activity(host_work)
        return "v2 done"

    @signal
    def start(self) -> None:
        self.go = True


def host_work() -> int:
    return 1


class UsesThread(Actor):
    async def run(self, ctx: Context) -> int:
        return await asyncio.to_thread(host_work)


host_futures: list[asyncio.Future[int]] = []


class AwaitsHostFuture(Actor):
    async def run(self, ctx: Context) -> int:
        return await host_futures[0]


# Spawning ----------------------------------------------------------------------------


async def test_spawn_returns_a_ref_to_the_new_actor(system: ActorSystem) -> None:
    ref = await system.spawn(Once, "once-1", "a")

    assert isinstance(ref, ActorRef)
    assert ref.actor_id == "once-1"
    assert ref.actor_type is Once
    assert await ref.result() == "A"


async def test_spawning_an_existing_id_returns_the_same_actor_without_running_it_again(
    system: ActorSystem,
) -> None:
    first = await system.spawn(Gate, "gate-1", "g")
    again = await system.spawn(Gate, "gate-1", "other args")
    await settle(system)
    await again.signal(Gate.open, "alice")

    assert await first.result() == "g opened by alice"
    after = await system.spawn(Gate, "gate-1", "g")
    assert await after.result() == "g opened by alice"
    assert calls == ["g before", "g after"]


async def test_spawning_an_id_of_another_type_raises_actor_type_error_naming_both(
    system: ActorSystem,
) -> None:
    await system.spawn(Gate, "taken", "g")
    with pytest.raises(ActorTypeError, match=r"'Gate'.*'Other'") as running:
        await system.spawn(Other, "taken", "x")
    await system.spawn(Once, "done", "a")
    await system.get(Once, "done").result()
    with pytest.raises(ActorTypeError, match=r"'Once'.*'Other'") as ended:
        await system.spawn(Other, "done", "x")

    assert (running.value.expected, running.value.actual) == ("Other", "Gate")
    assert (ended.value.expected, ended.value.actual) == ("Other", "Once")


async def test_spawn_with_the_wrong_number_of_arguments_raises_type_error_and_stores_nothing(
    system: ActorSystem,
) -> None:
    with pytest.raises(TypeError):
        await system.spawn(Once, "once-1")
    with pytest.raises(TypeError):
        await system.spawn(Once, "once-1", "a", "b")

    assert await system.journal.info("once-1") is None
    assert calls == []


async def test_spawn_with_an_argument_the_codec_cannot_encode_raises_and_stores_nothing(
    system: ActorSystem,
) -> None:
    with pytest.raises(EncodeError):
        await system.spawn(Once, "once-1", object())

    assert await system.journal.info("once-1") is None
    assert calls == []


async def test_spawn_outside_the_running_system_raises_actor_error_and_stores_nothing(
    stores: Stores,
) -> None:
    system = stores.system()

    with pytest.raises(ActorError, match="async with"):
        await system.spawn(Once, "once-1", "a")

    assert await stores.journal.info("once-1") is None
    assert calls == []


# Results -----------------------------------------------------------------------------


async def test_result_returns_the_value_run_returned(system: ActorSystem) -> None:
    ref = await system.spawn(Once, "once-1", "payload")

    assert await ref.result() == "PAYLOAD"
    assert await ref.result() == "PAYLOAD"  # the stored outcome, read again


async def test_result_of_a_run_that_raised_gives_actor_failed_with_type_message_and_traceback(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Fails, "fails-1")

    with pytest.raises(ActorFailed) as caught:
        await ref.result()

    error = caught.value
    assert not isinstance(error, ActorCancelled)
    assert error.actor_id == "fails-1"
    assert error.type == "ValueError"
    assert error.error_message == "no stock for order 42"
    assert "in run" in error.traceback
    assert "ValueError: no stock for order 42" in error.traceback
    assert "no stock for order 42" in str(error)


async def test_result_of_a_cancelled_actor_raises_actor_cancelled(system: ActorSystem) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)
    await ref.cancel()

    with pytest.raises(ActorCancelled) as caught:
        await ref.result()

    assert isinstance(caught.value, ActorFailed)
    assert caught.value.actor_id == "gate-1"


async def test_result_of_a_terminated_actor_raises_actor_terminated(system: ActorSystem) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)
    await ref.terminate("operator said so")

    with pytest.raises(ActorTerminated) as caught:
        await ref.result()

    assert isinstance(caught.value, ActorFailed)
    assert calls == ["g before"]


async def test_result_with_a_timeout_raises_timeout_error_while_the_actor_waits(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")

    with pytest.raises(TimeoutError):
        await ref.result(timeout=timedelta(milliseconds=50))

    assert await ref.status() is Status.RUNNING


# Status ------------------------------------------------------------------------------


async def test_status_is_running_while_the_actor_waits_and_completed_once_it_returned(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)
    assert await ref.status() is Status.RUNNING

    await ref.signal(Gate.open, "alice")
    await ref.result()

    assert await ref.status() is Status.COMPLETED


async def test_status_is_failed_cancelled_or_terminated_as_the_actor_ended(
    system: ActorSystem,
) -> None:
    failed = await system.spawn(Fails, "failed")
    cancelled = await system.spawn(Gate, "cancelled", "c")
    terminated = await system.spawn(Gate, "terminated", "t")
    await settle(system)
    await cancelled.cancel()
    await terminated.terminate()
    for ref in (failed, cancelled, terminated):
        with pytest.raises(ActorFailed):
            await ref.result()

    assert await failed.status() is Status.FAILED
    assert await cancelled.status() is Status.CANCELLED
    assert await terminated.status() is Status.TERMINATED


async def test_get_names_an_unknown_id_without_io_and_status_then_raises_not_found(
    system: ActorSystem,
) -> None:
    ref = system.get(Gate, "nobody")

    assert ref.actor_id == "nobody"
    with pytest.raises(ActorNotFoundError, match="nobody"):
        await ref.status()
    with pytest.raises(ActorNotFoundError):
        await ref.result()


async def test_query_of_an_unknown_id_raises_not_found(system: ActorSystem) -> None:
    ref = system.get(Gate, "nobody")

    with pytest.raises(ActorNotFoundError):
        await ref.query(Gate.get_steps)


# Recovery ----------------------------------------------------------------------------


async def test_an_actor_waiting_on_a_signal_resumes_after_a_restart_without_rerunning_steps(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(Gate, "gate-1", "g")
        await settle(system)
    assert calls == ["g before"]

    async with stores.system(Gate) as system:
        ref = system.get(Gate, "gate-1")
        assert await ref.query(Gate.get_steps) == ["G BEFORE"]
        await ref.signal(Gate.open, "alice")
        assert await ref.result() == "g opened by alice"

    async with stores.system(Gate) as system:
        assert await system.get(Gate, "gate-1").result() == "g opened by alice"
    assert calls == ["g before", "g after"]


async def test_an_actor_waiting_on_a_timer_resumes_after_a_restart_without_rerunning_steps(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(Napper, "napper-1")
        await settle(system)

    async with stores.system(Napper) as system:
        assert await system.get(Napper, "napper-1").result() == "rested"

    assert calls == ["nap before", "nap after"]


async def test_actors_resume_after_a_restart_on_sqlite_files(tmp_path: Path) -> None:
    clock = VirtualClock()
    path = tmp_path / "app.db"
    async with ActorSystem.open(path, clock=clock) as system:
        await system.spawn(Gate, "gate-1", "g")
        await system.spawn(Napper, "napper-1")
        await settle(system)
    assert sorted(calls) == ["g before", "nap before"]

    async with ActorSystem.open(path, actors=[Gate, Napper], clock=clock) as system:
        gate = system.get(Gate, "gate-1")
        await gate.signal(Gate.open, "alice")
        assert await gate.result() == "g opened by alice"
        assert await system.get(Napper, "napper-1").result() == "rested"

    async with ActorSystem.open(f"sqlite:///{path}", actors=[Gate], clock=clock) as system:
        assert await system.get(Gate, "gate-1").status() is Status.COMPLETED
        assert await system.get(Gate, "gate-1").query(Gate.get_steps) == ["G BEFORE", "G AFTER"]
    assert sorted(calls) == ["g after", "g before", "nap after", "nap before"]


async def test_an_actor_of_an_unregistered_type_stays_put_while_the_others_go_on(
    stores: Stores, caplog: pytest.LogCaptureFixture
) -> None:
    async with stores.system() as system:
        await system.spawn(Gate, "gate-1", "g")
        await system.spawn(Tidy, "tidy-1")
        await settle(system)

    with caplog.at_level(logging.ERROR, logger="actors"):
        async with stores.system(Gate) as system:
            gate = system.get(Gate, "gate-1")
            await gate.signal(Gate.open, "alice")
            assert await gate.result() == "g opened by alice"
            assert await system.get(Tidy, "tidy-1").status() is Status.RUNNING

    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("'Tidy'" in message and "'tidy-1'" in message for message in errors)
    assert calls == ["g before", "g after"]


async def test_spawning_an_unrecovered_actor_again_with_its_type_resumes_it(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(Gate, "gate-1", "g")
        await settle(system)

    async with stores.system() as system:
        ref = await system.spawn(Gate, "gate-1", "g")
        await ref.signal(Gate.open, "carol")
        assert await ref.result() == "g opened by carol"

    assert calls == ["g before", "g after"]


# Signals and queries -----------------------------------------------------------------


async def test_a_signal_wakes_the_workflow_waiting_on_its_condition(system: ActorSystem) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")

    await ref.signal(Gate.open, "alice")

    assert await ref.result() == "g opened by alice"
    assert await ref.query(Gate.get_steps) == ["G BEFORE", "G AFTER"]


async def test_signal_with_a_method_that_is_not_a_signal_of_the_type_raises_actor_error(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)
    seq = await last_seq(system, "gate-1")

    with pytest.raises(ActorError, match="not a @signal"):
        await ref.signal(Gate.not_a_signal, "alice")
    with pytest.raises(ActorError, match="not a @signal"):
        await ref.signal(Gate.get_steps)
    with pytest.raises(ActorError, match="not a @signal"):
        await ref.signal(Tidy.start)

    assert await last_seq(system, "gate-1") == seq
    assert await ref.status() is Status.RUNNING


async def test_signal_with_the_wrong_number_of_arguments_raises_type_error_at_the_call(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)
    seq = await last_seq(system, "gate-1")

    with pytest.raises(TypeError):
        await ref.signal(Gate.open)
    with pytest.raises(TypeError):
        await ref.signal(Gate.open, "alice", "bob")
    with pytest.raises(EncodeError):
        await ref.signal(Gate.open, object())

    assert await last_seq(system, "gate-1") == seq


async def test_a_signal_through_a_ref_of_another_type_is_refused_and_the_actor_goes_on(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)
    seq = await last_seq(system, "gate-1")

    with pytest.raises(ActorTypeError, match=r"'Gate'.*'Tidy'"):
        await system.get(Tidy, "gate-1").signal(Tidy.start)

    assert await last_seq(system, "gate-1") == seq
    await ref.signal(Gate.open, "alice")
    assert await ref.result() == "g opened by alice"


async def test_a_query_through_a_ref_of_another_type_raises_actor_type_error(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Once, "once-1", "a")
    await ref.result()

    with pytest.raises(ActorTypeError, match=r"'Once'.*'Gate'"):
        await system.get(Gate, "once-1").query(Gate.get_steps)


async def test_a_signal_that_raises_fails_the_actor(system: ActorSystem) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)

    await ref.signal(Gate.explode)

    with pytest.raises(ActorFailed) as caught:
        await ref.result()
    assert caught.value.type == "RuntimeError"
    assert caught.value.error_message == "signal refused"


async def test_query_returns_the_state_without_journaling_anything(system: ActorSystem) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)
    seq = await last_seq(system, "gate-1")

    assert await ref.query(Gate.get_steps) == ["G BEFORE"]
    assert await ref.query(Gate.step, 0) == "G BEFORE"

    assert await last_seq(system, "gate-1") == seq


async def test_query_with_a_method_that_is_not_a_query_or_wrong_arguments_fails_at_the_call(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)

    with pytest.raises(ActorError, match="not a @query"):
        await ref.query(Gate.open, "alice")
    with pytest.raises(TypeError):
        await ref.query(Gate.step)


async def test_signal_or_cancel_to_a_completed_actor_raises_actor_not_running(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Once, "once-1", "a")
    await ref.result()
    gate = await system.spawn(Gate, "gate-1", "g")
    await gate.signal(Gate.open, "alice")
    await gate.result()

    with pytest.raises(ActorNotRunningError, match="completed"):
        await gate.signal(Gate.open, "bob")
    with pytest.raises(ActorNotRunningError):
        await ref.cancel()
    with pytest.raises(ActorNotRunningError):
        await ref.terminate()


# Cancel ------------------------------------------------------------------------------


async def test_a_cancelled_workflow_that_catches_cancellation_cleans_up_and_completes(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Tidy, "tidy-1")
    await settle(system)

    await ref.cancel()

    assert await ref.result() == "cleaned up (CLEANUP)"
    assert await ref.status() is Status.COMPLETED
    assert calls == ["cleanup"]


async def test_a_cancelled_workflow_that_does_not_catch_cancellation_ends_cancelled(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Gate, "gate-1", "g")
    await settle(system)

    await ref.cancel()

    with pytest.raises(ActorCancelled):
        await ref.result()
    assert await ref.status() is Status.CANCELLED
    assert calls == ["g before"]


async def test_a_cancelled_actor_stays_cancelled_after_a_restart(stores: Stores) -> None:
    async with stores.system() as system:
        ref = await system.spawn(Tidy, "tidy-1")
        await settle(system)
        await ref.cancel()
        assert await ref.result() == "cleaned up (CLEANUP)"

    async with stores.system(Tidy) as system:
        assert await system.get(Tidy, "tidy-1").result() == "cleaned up (CLEANUP)"
    assert calls == ["cleanup"]


# Continue-as-new ---------------------------------------------------------------------


async def test_continue_as_new_keeps_the_state_across_runs_and_saves_a_snapshot(
    stores: Stores, system: ActorSystem
) -> None:
    ref = await system.spawn(Counter, "counter-1", 1)
    await settle(system)
    await ref.signal(Counter.resume)

    assert await ref.result() == [1, 2, 3, 4, 5]
    assert calls == ["run 1", "run 2", "run 3", "run 4", "run 5"]
    assert await stores.snapshots.latest("counter-1") is not None


async def test_continue_as_new_resumes_in_the_right_run_after_a_restart(stores: Stores) -> None:
    async with stores.system() as system:
        await system.spawn(Counter, "counter-1", 1)
        await settle(system)
        assert await system.get(Counter, "counter-1").query(Counter.query_seen) == [1, 2, 3]
    assert await stores.snapshots.latest("counter-1") is not None

    async with stores.system(Counter) as system:
        ref = system.get(Counter, "counter-1")
        assert await ref.query(Counter.query_seen) == [1, 2, 3]
        await ref.signal(Counter.resume)
        assert await ref.result() == [1, 2, 3, 4, 5]

    async with stores.system(Counter) as system:
        assert await system.get(Counter, "counter-1").result() == [1, 2, 3, 4, 5]
    assert calls == ["run 1", "run 2", "run 3", "run 4", "run 5"]


# Nondeterminism ----------------------------------------------------------------------


async def test_changed_code_suspends_the_actor_with_nondeterminism_and_writes_nothing(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(SameV1, "same-1")
        await settle(system)
        seq = await last_seq(system, "same-1")

    async with stores.system(SameV2) as system:
        ref = system.get(SameV2, "same-1")
        assert await ref.status() is Status.SUSPENDED
        with pytest.raises(NondeterminismError, match="same-1") as caught:
            await ref.result()
        with pytest.raises(ActorNotRunningError):
            await ref.signal(SameV2.start)
        await settle(system)
        assert await last_seq(system, "same-1") == seq

    error = caught.value
    assert (error.actor_id, error.event) == ("same-1", 2)
    assert (error.expected, error.got) == ("activity 'record'", "activity 'host_work'")
    assert calls == ["v1 step"]


async def test_a_suspended_actor_resumes_once_code_that_replays_is_deployed(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(SameV1, "same-1")
        await settle(system)
    async with stores.system(SameV2) as system:
        assert await system.get(SameV2, "same-1").status() is Status.SUSPENDED

    async with stores.system(SameV1) as system:
        ref = system.get(SameV1, "same-1")
        await ref.signal(SameV1.start)
        assert await ref.result() == "v1 done"
    assert calls == ["v1 step"]


# Sandbox -----------------------------------------------------------------------------


async def test_workflow_code_using_a_thread_fails_with_a_sandbox_error(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(UsesThread, "thread-1")

    with pytest.raises(ActorFailed) as caught:
        await ref.result()

    assert "WorkflowSandboxError" in caught.value.type
    assert "activity" in caught.value.error_message


async def test_workflow_code_awaiting_a_host_future_fails_with_a_sandbox_error(
    system: ActorSystem,
) -> None:
    host_future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    host_futures[:] = [host_future]
    try:
        ref = await system.spawn(AwaitsHostFuture, "future-1")
        with pytest.raises(ActorFailed) as caught:
            await ref.result()
    finally:
        host_futures.clear()

    assert "WorkflowSandboxError" in caught.value.type
    assert not host_future.done()
    host_future.set_result(1)  # the host loop can still use its own future
    assert await host_future == 1
