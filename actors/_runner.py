"""The driver of one live actor: inputs in, one atomic commit per activation, then act.

Theory of operation. Inputs (an activity's outcome, a fired timer, a signal, a cancel)
queue up on the runner and are handled one at a time: the engine activates on the
input and returns the commands the code issued; the runner commits the input and
those commands in one ``Commit`` (with the wakeups to schedule or cancel and the new
status); only after the commit is durable does it act: start activities, arm timers,
answer the caller whose signal it was, resolve ``result()``. A crash between commit
and action loses nothing: replay re-derives the same commands, and the host redoes
what they ask (pending activities run, pending timers are re-armed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from journal import Commit

from ._activities import execute
from ._actor import is_signal
from ._events import (
    ActivityCompleted,
    ActivityFailed,
    AttemptFailed,
    Cancelled,
    CancelRequested,
    Command,
    Completed,
    ContinuedAsNew,
    Failed,
    HistoryEvent,
    Input,
    SignalReceived,
    Started,
    Terminated,
    TimerCancelled,
    TimerFired,
    TimerStarted,
)
from ._exceptions import ActorError, ActorNotRunningError
from ._replay import Engine, Outcome
from ._status import Status

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("actors")

Item = Input | AttemptFailed | Terminated


def _settle(ack: asyncio.Future[None] | None, error: BaseException | None) -> None:
    if ack is None or ack.done():
        return
    if error is None:
        ack.set_result(None)
    else:
        ack.set_exception(error)


def timer_key(cmd: int) -> str:
    """The wakeup key of timer command ``cmd``."""
    return f"t{cmd}"


def status_of(outcome: Outcome | None, terminated: bool) -> Status:
    """The stream status that an engine's outcome means."""
    if terminated:
        return Status.TERMINATED
    if isinstance(outcome, Completed):
        return Status.COMPLETED
    if isinstance(outcome, Failed):
        return Status.FAILED
    if isinstance(outcome, Cancelled):
        return Status.CANCELLED
    return Status.RUNNING


class Runner:
    """Owns a live actor's engine, its queue of inputs and the host work it asked for."""

    def __init__(
        self, system: ActorSystem, actor_id: str, type_name: str, engine: Engine, seq: int
    ) -> None:
        self.system = system
        self.actor_id = actor_id
        self.type_name = type_name
        self.engine = engine
        self.seq = seq
        self.done: asyncio.Future[tuple[Status, Outcome | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue: deque[tuple[Item, asyncio.Future[None] | None]] = deque()
        self._wake = asyncio.Event()
        self._work: dict[int, asyncio.Task[None]] = {}  # timer and activity tasks by cmd
        self.metadata: bytes | None = None  # written with the first commit only

    @property
    def status(self) -> Status:
        """The actor's status as far as this runner has committed."""
        return status_of(self.engine.outcome, self.engine.terminated)

    def submit(self, item: Item, ack: asyncio.Future[None] | None = None) -> None:
        """Queue an input (or note) for the actor; ``ack`` resolves once it is committed."""
        self._queue.append((item, ack))
        self.system.busy += 1
        self._wake.set()

    async def run(self) -> None:
        """Handle queued inputs until the actor ends (or the system stops)."""
        while not self.done.done():
            await self._wake.wait()
            self._wake.clear()
            while self._queue and not self.done.done():
                item, ack = self._queue.popleft()
                try:
                    refusal = self._refusal(item)
                    if refusal is None:
                        await self._handle(item)
                except Exception as error:
                    self.system.busy -= 1
                    _settle(ack, error)
                    logger.exception("actor %r failed to handle %s", self.actor_id, item)
                    await self.system._restart(self, error, self._take_queue())
                    return
                self.system.busy -= 1
                _settle(ack, refusal)
        self._fail_queue()

    def _take_queue(self) -> list[tuple[Item, asyncio.Future[None] | None]]:
        taken = list(self._queue)
        self._queue.clear()
        self.system.busy -= len(taken)
        return taken

    def _refusal(self, item: Item) -> ActorError | None:
        """Return why ``item`` is refused before it changes anything, if it is."""
        engine = self.engine
        if isinstance(item, AttemptFailed | Terminated):
            return None
        if isinstance(item, SignalReceived) and not is_signal(
            getattr(type(engine.actor), item.name, None)
        ):
            return ActorError(f"{self.type_name!r} has no signal {item.name!r}")
        if isinstance(item, SignalReceived | CancelRequested) and not engine.accepts(item):
            return ActorNotRunningError(self.actor_id, self.status.value)
        return None

    def _fail_queue(self) -> None:
        self._fail(self._take_queue())

    def _fail(self, items: list[tuple[Item, asyncio.Future[None] | None]]) -> None:
        """Refuse ``items``: the actor has ended."""
        for _, ack in items:
            _settle(ack, ActorNotRunningError(self.actor_id, self.status.value))

    async def _handle(self, item: Item) -> None:
        engine = self.engine
        if isinstance(item, AttemptFailed):
            engine.note(item)
            await self._commit([item])
            return
        if isinstance(item, Terminated):
            engine.note(item)
            await self._commit([item], status=Status.TERMINATED)
            self._stop_work()
            self._finish()
            return
        if not engine.accepts(item):
            return  # a late duplicate (an outcome or a firing whose command is settled)
        commands = engine.activate(item)
        status = status_of(engine.outcome, engine.terminated)
        await self._commit([item, *commands], commands=commands, fired=item, status=status)
        self._act(commands)
        outcome = engine.outcome
        if isinstance(outcome, ContinuedAsNew):
            await self._continue_as_new(outcome)
        elif outcome is not None:
            self._finish()

    async def _commit(
        self,
        events: list[HistoryEvent],
        *,
        commands: list[Command] = (),  # type: ignore[assignment]
        fired: Item | None = None,
        status: Status | None = None,
    ) -> None:
        encode = self.system.codec.encode
        schedule = {timer_key(c.cmd): c.fire_at for c in commands if isinstance(c, TimerStarted)}
        cancel = [timer_key(c.cmd) for c in commands if isinstance(c, TimerCancelled)]
        if isinstance(fired, TimerFired):
            cancel.append(timer_key(fired.cmd))
        commit = Commit(
            stream=self.actor_id,
            expected_seq=self.seq,
            events=[encode(e) for e in events],
            schedule=schedule,
            cancel=cancel,
            status=None if status is None else status.value,
            metadata=self.metadata,
        )
        self.seq = await self.system.journal.commit(commit)
        self.metadata = None

    def resume(self) -> None:
        """Start the host work a rebuilt engine is waiting for: activities and timers."""
        settled = {
            item.cmd
            for item, _ in self._queue
            if isinstance(item, ActivityCompleted | ActivityFailed)
        }
        for pending in self.engine.activities.values():
            if pending.cmd not in settled:  # an outcome already waiting needs no rerun
                pending.attempts = self.engine.attempts(pending.cmd)
                self._start_activity(pending)
        for cmd, handle in self.engine.timers.items():
            self._arm(cmd, handle.when())

    def _act(self, commands: list[Command]) -> None:
        for pending in self.engine.take_new_activities():
            self._start_activity(pending)
        for command in commands:
            if isinstance(command, TimerStarted):
                self._arm(command.cmd, command.fire_at)
            elif isinstance(command, TimerCancelled):
                task = self._work.pop(command.cmd, None)
                if task is not None:
                    task.cancel()

    def _start_activity(self, pending: Any) -> None:
        self.system._spawn_work(self, pending.cmd, execute(self, pending))

    def _arm(self, cmd: int, fire_at: float) -> None:
        async def fire() -> None:
            await self.system.clock.sleep_until(fire_at)
            self.submit(TimerFired(time=self.system.clock.now(), cmd=cmd))

        self.system._spawn_work(self, cmd, fire())

    def track(self, cmd: int, task: asyncio.Task[None]) -> None:
        """Remember the host task serving command ``cmd`` until it ends."""
        self._work[cmd] = task
        task.add_done_callback(
            lambda t: self._work.pop(cmd, None) if self._work.get(cmd) is t else None
        )

    def _stop_work(self) -> None:
        for task in self._work.values():
            task.cancel()
        self._work.clear()

    def _finish(self) -> None:
        self._stop_work()
        if not self.done.done():
            self.done.set_result((self.status, self.engine.outcome))

    async def _continue_as_new(self, outcome: ContinuedAsNew) -> None:
        self._stop_work()
        await self.system._save_snapshot(self, outcome)
        self.engine = self.system._successor(self.engine, outcome)
        started = Started(time=self.system.clock.now(), args=outcome.args, run=self.engine.run)
        await self._handle(started)
