"""Running activities on the host: attempts, timeouts, retries, ``activity_info()``."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from journal import CodecError

from ._actor import is_async
from ._events import ActivityCompleted, ActivityFailed, AttemptFailed
from ._failures import failure_info
from ._replay import PendingActivity

if TYPE_CHECKING:
    from ._runner import Runner


@attrs.frozen(kw_only=True)
class ActivityInfo:
    """What an activity may know about the call it serves."""

    actor_id: str
    """The actor whose workflow called the activity."""
    command: int
    """The call's command number in that actor's history."""
    attempt: int
    """1 for the first attempt, 2 for the first retry..."""
    name: str
    """The activity's name as journaled."""
    idempotency_key: str
    """``"<actor id>/<command>"``: the same across retries and crashes; pass it to
    external systems so that a repeated attempt has no repeated effect."""


_current: contextvars.ContextVar[ActivityInfo] = contextvars.ContextVar("perdure_activity")


def activity_info() -> ActivityInfo:
    """Return the running activity's info.

    Raises:
        RuntimeError: not called from inside an activity.
    """
    try:
        return _current.get()
    except LookupError:
        msg = "activity_info() is only available inside an activity run by ctx.activity()"
        raise RuntimeError(msg) from None


async def _call(fn: Callable[..., Any], args: tuple[Any, ...], info: ActivityInfo) -> Any:
    token = _current.set(info)
    try:
        if is_async(fn):
            return await fn(*args)
        return await asyncio.to_thread(fn, *args)  # copies the context: info included
    finally:
        _current.reset(token)


async def execute(runner: Runner, pending: PendingActivity) -> None:
    """Run ``pending`` to its final outcome and hand each fact to ``runner``.

    Failed attempts that will be retried are journaled as notes, so the attempt count
    survives a crash; the final outcome becomes the actor's next input.
    """
    options = pending.options
    clock = runner.system.clock
    codec = runner.system.codec
    attempt = pending.attempts
    while True:
        attempt += 1
        info = ActivityInfo(
            actor_id=runner.actor_id,
            command=pending.cmd,
            attempt=attempt,
            name=options.name,
            idempotency_key=f"{runner.actor_id}/{pending.cmd}",
        )
        runner.system.busy += 1
        in_flight = runner.system.in_flight
        task = asyncio.current_task()
        assert task is not None
        in_flight.add(task)
        try:
            limit = anyio.fail_after(options.timeout) if options.timeout else nullcontext()
            with limit:
                value = await _call(pending.fn, pending.args, info)
            result = codec.encode(value)
        except Exception as error:  # noqa: BLE001 - every failure is the activity's outcome
            failure = failure_info(error)
            pending.error = error
            if not options.retry.retries(error, attempt) or isinstance(error, CodecError):
                runner.submit(
                    ActivityFailed(
                        time=clock.now(), cmd=pending.cmd, attempts=attempt, failure=failure
                    )
                )
                return
            runner.submit(
                AttemptFailed(time=clock.now(), cmd=pending.cmd, attempt=attempt, failure=failure)
            )
        else:
            runner.submit(ActivityCompleted(time=clock.now(), cmd=pending.cmd, result=result))
            return
        finally:
            runner.system.busy -= 1
            in_flight.discard(task)
        await clock.sleep_until(clock.now() + options.retry.delay(attempt))
