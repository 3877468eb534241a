"""Tests for activities (retries, timeouts, threads, ``activity_info()``) and timers.

Every system runs on a `VirtualClock`: backoff delays and durable timers of hours pass
at once while a test awaits `ref.result()`. Attempts are counted in module-level lists
that the activities append to, so a count that survives a restart shows that the
journal noted the failed attempts.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from actors import (
    ActivityError,
    ActivityInfo,
    Actor,
    ActorFailed,
    ActorSystem,
    Context,
    Retry,
    activity,
    activity_info,
    signal,
)
from actors.testing import VirtualClock

from ._support import Stores, settle

infos: list[ActivityInfo] = []
"""The `activity_info()` of every attempt, in order."""
moments: list[float] = []
"""The virtual time at which each attempt began."""
threads: list[threading.Thread] = []
"""The thread each sync activity ran in."""


@pytest.fixture(autouse=True)
def _clear_records() -> Iterator[None]:
    for records in (infos, moments, threads):
        records.clear()
    yield
    for records in (infos, moments, threads):
        records.clear()


def attempts() -> list[int]:
    return [info.attempt for info in infos]


# Activities --------------------------------------------------------------------------

CLOCK: list[VirtualClock] = []
"""The clock of the running test, for activities that note when they ran."""


@activity(retry=Retry(max_attempts=5, initial=10.0, backoff=3.0))
async def flaky(fail_times: int) -> str:
    info = activity_info()
    infos.append(info)
    moments.append(CLOCK[0].now())
    if info.attempt <= fail_times:
        msg = f"attempt {info.attempt} lost the connection"
        raise ConnectionError(msg)
    return f"ok on attempt {info.attempt}"


@activity(retry=Retry(max_attempts=5, initial=1.0, non_retryable=(PermissionError,)))
async def forbidden() -> str:
    infos.append(activity_info())
    msg = "card blocked"
    raise PermissionError(msg)


@activity(retry=Retry(max_attempts=3, non_retryable=(ValueError,)))
async def refuse() -> str:
    infos.append(activity_info())
    msg = "declined"
    raise ValueError(msg)


@activity(retry=Retry(max_attempts=3, initial=1.0))
async def always_down() -> str:
    infos.append(activity_info())
    msg = "service down"
    raise ConnectionError(msg)


@activity(retry=Retry(max_attempts=2, initial=0.0), timeout=timedelta(milliseconds=50))
async def hangs_first(answer: str) -> str:
    info = activity_info()
    infos.append(info)
    if info.attempt == 1:
        await asyncio.Event().wait()  # never set: only the timeout ends this attempt
    return answer


@activity(retry=Retry(max_attempts=1), timeout=0.05)
async def hangs() -> str:
    infos.append(activity_info())
    await asyncio.Event().wait()
    return "never"


def sync_work(text: str) -> int:
    infos.append(activity_info())
    threads.append(threading.current_thread())
    return len(text)


@activity(retry=Retry(max_attempts=4, initial=3600.0))
async def unreliable(fail_times: int) -> str:
    info = activity_info()
    infos.append(info)
    if info.attempt <= fail_times:
        msg = "try later"
        raise ConnectionError(msg)
    return info.idempotency_key


async def unencodable() -> object:
    infos.append(activity_info())
    return object()


async def describe() -> str:
    info = activity_info()
    infos.append(info)
    return info.name


# Actors ------------------------------------------------------------------------------


class CallsFlaky(Actor):
    async def run(self, ctx: Context, fail_times: int) -> str:
        return await ctx.activity(flaky, fail_times)


class CallsForbidden(Actor):
    async def run(self, ctx: Context) -> str:
        try:
            return await ctx.activity(forbidden)
        except ActivityError as error:
            return f"gave up after {error.attempts}: {error.failure[0].type}"


class KeepsCause(Actor):
    async def run(self, ctx: Context) -> str:
        try:
            return await ctx.activity(forbidden)
        except ActivityError as error:
            return repr(error.__cause__)


class ActivityFails(Actor):
    async def run(self, ctx: Context, wrap: bool) -> None:
        try:
            _: str = await ctx.activity(refuse)
        except ActivityError as error:
            if wrap:
                msg = "payment step failed"
                raise LookupError(msg) from error
            raise


class Fallback(Actor):
    async def run(self, ctx: Context) -> str:
        try:
            return await ctx.activity(always_down)
        except ActivityError as error:
            assert error.name == "always_down"
            return f"fallback after {error.attempts}: {error.failure[0].message}"


class CallsHangsFirst(Actor):
    async def run(self, ctx: Context) -> str:
        return await ctx.activity(hangs_first, "second time lucky")


class CallsHangs(Actor):
    async def run(self, ctx: Context) -> str:
        try:
            return await ctx.activity(hangs)
        except ActivityError as error:
            return error.failure[0].type


class CallsSync(Actor):
    async def run(self, ctx: Context, text: str) -> int:
        return await ctx.activity(sync_work, text)


class Described(Actor):
    async def run(self, ctx: Context) -> list[str]:
        first: str = await ctx.activity(describe)
        await ctx.sleep(60)
        second: str = await ctx.activity(describe)
        return [first, second]


class CallsUnreliable(Actor):
    async def run(self, ctx: Context) -> str:
        return await ctx.activity(unreliable, 2)


class CallsUnencodable(Actor):
    async def run(self, ctx: Context) -> str:
        try:
            _: object = await ctx.activity(unencodable, retry=Retry(max_attempts=3, initial=0.0))
        except ActivityError as error:
            return f"{error.attempts}: {error.failure[0].type}"
        return "stored"


class Sleeper(Actor):
    async def run(self, ctx: Context, hours: int) -> float:
        before = ctx.now()
        await ctx.sleep(timedelta(hours=hours))
        after = ctx.now()
        _: str = await ctx.activity(describe)
        return (after - before).total_seconds()


class Waiter(Actor):
    """Waits up to a day for `approve`."""

    approved: bool = False

    async def run(self, ctx: Context) -> str:
        if await ctx.wait_until(lambda: self.approved, timeout=timedelta(days=1)):
            return "approved"
        return "expired"

    @signal
    def approve(self) -> None:
        self.approved = True


class Stamps(Actor):
    async def run(self, ctx: Context) -> list[datetime]:
        start = ctx.now()
        await ctx.sleep(timedelta(minutes=5))
        return [start, ctx.now()]


@pytest.fixture(autouse=True)
def _clock(stores: Stores) -> Iterator[None]:
    CLOCK[:] = [stores.clock]
    yield
    CLOCK.clear()


# Retries -----------------------------------------------------------------------------


async def test_a_failing_activity_is_retried_with_exponential_backoff(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(CallsFlaky, "flaky-1", 2)

    assert await ref.result() == "ok on attempt 3"
    assert attempts() == [1, 2, 3]
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert gaps == [10.0, 30.0]


async def test_a_non_retryable_error_fails_the_activity_at_the_first_attempt(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(CallsForbidden, "forbidden-1")

    assert await ref.result() == "gave up after 1: PermissionError"
    assert attempts() == [1]


async def test_an_activity_error_raised_in_this_process_has_the_original_error_as_cause(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(KeepsCause, "cause-1")

    assert await ref.result() == "PermissionError('card blocked')"


async def test_an_activity_out_of_attempts_raises_activity_error_the_workflow_can_catch(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Fallback, "fallback-1")

    assert await ref.result() == "fallback after 3: service down"
    assert attempts() == [1, 2, 3]


async def test_an_attempt_that_exceeds_its_timeout_is_retried(system: ActorSystem) -> None:
    ref = await system.spawn(CallsHangsFirst, "hangs-1")

    assert await ref.result() == "second time lucky"
    assert attempts() == [1, 2]


async def test_an_activity_timing_out_on_its_last_attempt_fails_with_timeout_error(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(CallsHangs, "hangs-1")

    assert await ref.result() == "TimeoutError"
    assert attempts() == [1]


async def test_a_sync_activity_runs_in_a_worker_thread(system: ActorSystem) -> None:
    ref = await system.spawn(CallsSync, "sync-1", "four")

    assert await ref.result() == 4
    assert threads
    assert threads[0] is not threading.main_thread()
    assert infos[0].actor_id == "sync-1"


async def test_an_activity_result_the_codec_cannot_encode_fails_that_call_at_once(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(CallsUnencodable, "unencodable-1")

    assert await ref.result() == "1: journal._exceptions.EncodeError"
    assert attempts() == [1]


async def test_an_uncaught_activity_error_fails_the_actor_with_the_original_error_in_its_chain(
    system: ActorSystem,
) -> None:
    bare = await system.spawn(ActivityFails, "bare", False)
    wrapped = await system.spawn(ActivityFails, "wrapped", True)

    with pytest.raises(ActorFailed) as bare_error:
        await bare.result()
    with pytest.raises(ActorFailed) as wrapped_error:
        await wrapped.result()

    failure = bare_error.value.failure
    assert [info.type for info in failure] == ["actors._exceptions.ActivityError", "ValueError"]
    assert failure[0].message == "activity 'refuse' failed after 1 attempt(s): ValueError: declined"
    assert failure[1].message == "declined"
    assert "in refuse" in failure[1].traceback
    failure = wrapped_error.value.failure
    assert [info.type for info in failure] == [
        "LookupError",
        "actors._exceptions.ActivityError",
        "ValueError",
    ]
    assert wrapped_error.value.error_message == "payment step failed"


async def test_an_activity_failing_every_attempt_fails_an_uncatching_actor_with_the_last_error(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(CallsFlaky, "flaky-1", 9)

    with pytest.raises(ActorFailed) as caught:
        await ref.result()

    assert caught.value.failure[1].type == "ConnectionError"
    assert caught.value.failure[1].message == "attempt 5 lost the connection"
    assert attempts() == [1, 2, 3, 4, 5]


# activity_info() ---------------------------------------------------------------------


async def test_activity_info_names_the_actor_command_attempt_and_idempotency_key(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Described, "described-1")

    assert await ref.result() == ["describe", "describe"]
    first, second = infos
    assert (first.actor_id, first.command, first.attempt) == ("described-1", 1, 1)
    assert first.idempotency_key == "described-1/1"
    # the timer between them took command 2
    assert (second.command, second.idempotency_key) == (3, "described-1/3")


async def test_the_idempotency_key_is_the_same_for_every_retry(system: ActorSystem) -> None:
    ref = await system.spawn(CallsFlaky, "flaky-1", 3)

    await ref.result()

    assert attempts() == [1, 2, 3, 4]
    assert {info.idempotency_key for info in infos} == {"flaky-1/1"}
    assert {info.command for info in infos} == {1}


async def test_attempts_continue_with_the_same_key_after_a_restart_during_retries(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(CallsUnreliable, "unreliable-1")
        await settle(system)
    assert attempts() == [1]

    async with stores.system(CallsUnreliable) as system:
        assert await system.get(CallsUnreliable, "unreliable-1").result() == "unreliable-1/1"

    async with stores.system(CallsUnreliable) as system:
        assert await system.get(CallsUnreliable, "unreliable-1").result() == "unreliable-1/1"
    assert attempts() == [1, 2, 3]
    assert {info.idempotency_key for info in infos} == {"unreliable-1/1"}


def test_activity_info_outside_an_activity_raises_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="inside an activity"):
        activity_info()


async def test_activity_info_in_workflow_code_raises_runtime_error(system: ActorSystem) -> None:
    class AsksInfo(Actor):
        async def run(self, ctx: Context) -> str:
            try:
                activity_info()
            except RuntimeError as error:
                return str(error)
            return "no error"

    ref = await system.spawn(AsksInfo, "asks-1")

    assert "inside an activity" in await ref.result()


# Timers ------------------------------------------------------------------------------


async def test_a_five_hour_sleep_completes_and_moves_now_by_five_hours(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Sleeper, "sleeper-1", 5)

    assert await ref.result() == timedelta(hours=5).total_seconds()
    assert len(infos) == 1


async def test_workflow_now_is_a_utc_datetime_taken_from_the_history(
    stores: Stores, system: ActorSystem
) -> None:
    start = datetime.fromtimestamp(stores.clock.now(), UTC)
    ref = await system.spawn(Stamps, "stamps-1")

    before, after = await ref.result()

    assert before == start
    assert before.utcoffset() == timedelta(0)
    assert after - before == timedelta(minutes=5)


async def test_a_durable_sleep_fires_after_a_restart_once_its_time_has_come(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(Sleeper, "sleeper-1", 5)
        await settle(system)
    await stores.clock.advance(timedelta(hours=6).total_seconds())

    async with stores.system(Sleeper) as system:
        slept = await system.get(Sleeper, "sleeper-1").result()

    assert slept >= timedelta(hours=5).total_seconds()
    assert len(infos) == 1


async def test_a_durable_sleep_pending_at_a_restart_fires_when_the_result_is_awaited(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        await system.spawn(Sleeper, "sleeper-1", 5)
        await settle(system)

    async with stores.system(Sleeper) as system:
        assert await system.get(Sleeper, "sleeper-1").result() == 5 * 3600.0
    assert len(infos) == 1


async def test_wait_until_returns_false_when_its_durable_timeout_expires(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Waiter, "waiter-1")

    assert await ref.result() == "expired"


async def test_a_signal_before_the_timeout_makes_wait_until_return_true(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Waiter, "waiter-1")
    await settle(system)

    await ref.signal(Waiter.approve)

    assert await ref.result() == "approved"


async def test_leaving_the_system_does_not_wait_out_the_grace_period_for_a_durable_timer(
    stores: Stores,
) -> None:
    system = ActorSystem(
        journal=stores.journal, snapshots=stores.snapshots, clock=stores.clock, grace=3600
    )
    await system.__aenter__()
    await system.spawn(Sleeper, "sleeper-1", 5)
    await settle(system)

    assert await leaves_promptly(system), "leaving waited for a timer due in 5 hours"

    async with stores.system(Sleeper) as system:
        assert await system.get(Sleeper, "sleeper-1").result() == 5 * 3600.0


async def test_leaving_the_system_does_not_wait_out_the_grace_period_for_a_retry_backoff(
    stores: Stores,
) -> None:
    system = ActorSystem(
        journal=stores.journal, snapshots=stores.snapshots, clock=stores.clock, grace=3600
    )
    await system.__aenter__()
    await system.spawn(CallsUnreliable, "unreliable-1")
    await settle(system)

    assert await leaves_promptly(system), "leaving waited for a retry due in an hour"

    async with stores.system(CallsUnreliable) as system:
        assert await system.get(CallsUnreliable, "unreliable-1").result() == "unreliable-1/1"
    assert attempts() == [1, 2, 3]


async def leaves_promptly(system: ActorSystem) -> bool:
    """Leave ``system``; tell whether it left before a hang guard of one second."""
    leaving = asyncio.create_task(system.__aexit__(None, None, None))
    done, _ = await asyncio.wait({leaving}, timeout=1)  # a hang guard, not a measurement
    if not done:
        leaving.cancel()
    return bool(done)
