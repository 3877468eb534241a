"""The host tasks of one system: started here, cancelled and awaited when it stops.

Structured concurrency without a task group per start: anyio's ``start_soon`` cost
about 100 us per task on this project's machine, and the runtime starts a task per
activity and per timer. A ``TaskSet`` keeps the guarantee that matters (no task
outlives the system that started it) with plain asyncio tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from ._exceptions import ActorError

logger = logging.getLogger("actors")


class TaskSet:
    """A set of tasks that ``close()`` cancels and awaits."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = True

    def start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` as a task of this set.

        Raises:
            ActorError: the set is closed (the system is not running).
        """
        if not self._open:
            work.close()
            msg = "the ActorSystem is not running: use it inside `async with`"
            raise ActorError(msg)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a host task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Refuse new tasks, cancel the running ones and wait until they have ended."""
        self._open = False
        while self._tasks:
            tasks = set(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
