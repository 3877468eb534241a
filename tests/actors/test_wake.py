"""The runner's wake-up flag: a set is never lost, and each wait ends at the next set."""

from __future__ import annotations

import asyncio
import contextlib

from actors._runner import _Wake


async def test_a_set_before_the_wait_is_kept_until_cleared() -> None:
    wake = _Wake()
    wake.set()
    assert wake.is_set()
    wake.clear()
    assert not wake.is_set()


async def test_a_waiter_is_resolved_by_the_next_set_and_not_reused() -> None:
    wake = _Wake()
    waiter = wake.waiter()
    assert wake.waiter() is waiter
    assert not waiter.done()
    wake.set()
    assert waiter.done()
    assert wake.is_set()
    wake.clear()
    assert wake.waiter() is not waiter


async def test_a_waiter_cancelled_with_its_task_is_replaced() -> None:
    wake = _Wake()
    task = asyncio.create_task(_wait(wake))
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    fresh = wake.waiter()
    assert not fresh.done()
    wake.set()
    assert fresh.done()


async def _wait(wake: _Wake) -> None:
    await wake.waiter()
