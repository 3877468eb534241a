"""The deterministic core: one actor's history in, commands out. No I/O, no clock.

Theory of operation. An ``Engine`` owns one run of one actor: its state object, the
``DeterministicLoop`` its workflow code runs on and every command that code has issued.
The driver hands it one *input* at a time (``activate``); the engine applies it
(resolve an activity's future, fire a timer, call a signal method, cancel the run),
runs the loop until it is quiet, re-checks ``wait_until`` conditions, and returns the
commands the code issued meanwhile. Live execution and replay go through the very same
``activate``: replay passes the commands the history recorded after that input, and
every command the code issues is checked against them instead of being returned.

Invariants:

1. Commands are numbered in the order the code issues them; replay reproduces the
   numbers, so an input names its command (``cmd``) unambiguously.
2. Nothing here reads a clock or draws from the OS: ``now`` is the input's time (never
   moving backwards) and randomness is seeded from the actor id and run number.
3. A replayed command whose kind or name differs from the record is a
   ``NondeterminismError``: it is raised out of ``activate`` even if workflow code
   caught it, and the engine must then be dropped.
4. Once the run has an outcome (completed, failed, cancelled, continued as new) the
   engine accepts no further input.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from journal import CodecError
from journal.codec import Codec

from ._actor import ActivityOptions, Actor, is_signal
from ._context import Context, ContinueAsNew
from ._events import (
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
    HistoryEvent,
    Input,
    MessageDropped,
    MessageReceived,
    Note,
    Patched,
    ReplyReceived,
    SignalReceived,
    Started,
    Terminated,
    TimerCancelled,
    TimerFired,
    TimerStarted,
    TurnAborted,
    describe,
    same_command,
)
from ._exceptions import ActivityError, NondeterminismError, Rejected
from ._failures import failure_info
from ._loop import DeterministicLoop
from ._messages import Mailbox
from ._supervision import Crash

Outcome = Completed | Failed | Cancelled | ContinuedAsNew


@attrs.define(eq=False)
class PendingActivity:
    """An activity workflow code is waiting for."""

    cmd: int
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    options: ActivityOptions
    future: asyncio.Future[Any]
    attempts: int = 0
    """Attempts already made and failed (from the history's notes)."""
    error: BaseException | None = None
    """The last attempt's error, when it failed in this process."""


class Engine:
    """Runs one run of one actor's workflow code, input by input."""

    def __init__(
        self,
        *,
        actor_id: str,
        actor: Actor,
        codec: Codec,
        run: int = 1,
        next_cmd: int = 1,
        now: float = 0.0,
        started: bool = False,
        children: list[str] | None = None,
    ) -> None:
        self.actor_id = actor_id
        self.actor = actor
        self.codec = codec
        self.run = run
        self.now = now
        self.loop = DeterministicLoop(self, start_time=now)
        self.context = Context._create(self)
        self.random = random.Random(f"{actor_id}/{run}")
        self.outcome: Outcome | None = None
        self.terminated = False
        self.activities: dict[int, PendingActivity] = {}
        self.new_activities: list[PendingActivity] = []
        self.timers: dict[int, asyncio.TimerHandle] = {}
        self._timer_cmds: dict[int, int] = {}  # id(handle) -> cmd
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[bool]]] = []
        self._patches: dict[str, bool] = {}
        self._next_cmd = next_cmd
        self._main: asyncio.Task[Any] | None = None
        self._issued: list[Command] = []
        self._recorded: deque[Command] | None = None
        self._event_no = 0
        self._error: NondeterminismError | None = None
        self._attempts: dict[int, int] = {}
        self.has_run = type(actor).run is not Actor.run
        """Whether the actor has a workflow body; without one it lives on messages."""
        self.started = started
        """Whether the run began (a snapshot of a message-driven actor says so too)."""
        self.crash: Crash | None = None
        """Set when an exception escaped workflow code: the supervisor decides next."""
        self.children: list[str] = children or []
        """The actors this run's code spawned, in spawn order."""
        self.mailbox = Mailbox(self)

    # The driver's side ----------------------------------------------------------

    @property
    def next_cmd(self) -> int:
        """The number the next command will get."""
        return self._next_cmd

    @property
    def replaying(self) -> bool:
        """Whether the current activation replays recorded commands."""
        return self._recorded is not None

    def accepts(self, event: Input) -> bool:
        """Whether ``event`` still means something to this run (not a duplicate)."""
        if self.ended or self._error is not None or self.crash is not None:
            return False
        if isinstance(event, Started):
            return not self.started
        if isinstance(event, ActivityCompleted | ActivityFailed):
            accepted = event.cmd in self.activities
        elif isinstance(event, TimerFired):
            accepted = event.cmd in self.timers
        elif isinstance(event, ReplyReceived):
            accepted = event.key in self.mailbox.pending_asks()
        elif isinstance(event, MessageReceived):
            accepted = self.started and self.mailbox.wants(self.mailbox.decode(event.message))
        else:
            accepted = self.started
        return accepted

    def activate(
        self, event: Input, *, seq: int = 0, recorded: Sequence[Command] | None = None
    ) -> list[Command]:
        """Apply one input, run the code until it waits, return the commands it issued.

        Args:
            event: the input.
            seq: the input's event number in the stream (for error reports).
            recorded: for replay, the commands the history holds after ``event``; the
                code's commands are checked against them and nothing is returned.

        Raises:
            NondeterminismError: replayed code issued other commands than recorded.
        """
        if self._error is not None:
            raise self._error
        if not self.accepts(event):
            msg = f"actor {self.actor_id!r} cannot take {type(event).__name__} now"
            raise ValueError(msg)
        self._issued = []
        self._recorded = None if recorded is None else deque(recorded)
        self._event_no = seq
        self.now = max(self.now, event.time)
        self.loop.set_time(self.now)
        try:
            self._apply(event)
            self._run()
            self._check_leftover()
        except NondeterminismError:
            pass  # recorded in self._error, raised below whatever the code did with it
        finally:
            self._recorded = None
        if self._error is not None:
            raise self._error
        return self._issued

    def _check_leftover(self) -> None:
        recorded = self._recorded
        if self._error is not None or not recorded:
            return
        for offset, command in enumerate(recorded, 1):
            if not isinstance(command, Patched):
                self._event_no += offset
                self._mismatch(describe(command), "nothing (the code waited for input)")

    @property
    def ended(self) -> bool:
        """Whether the run has an outcome or was terminated."""
        return self.outcome is not None or self.terminated

    def note(self, event: Note | Terminated) -> None:
        """Take a host fact from the history (see ``_events``'s notes)."""
        if isinstance(event, Terminated):
            self.terminated = True
        elif isinstance(event, AttemptFailed):
            self._attempts[event.cmd] = event.attempt
        elif isinstance(event, TurnAborted):
            self._next_cmd = max(self._next_cmd, event.next_cmd)
        elif isinstance(event, MessageDropped):
            if self.crash is not None and self.crash.key == event.key:
                self.crash = None  # the handler's turn ends here; the run goes on
                self.mailbox.handling = False
        else:
            self.outcome = Failed(failure=event.failure)
            self.crash = None
            self.timers.clear()  # the runner cancels every wakeup with this note
            self._timer_cmds.clear()

    def crashed(self, crash: Crash) -> None:
        """Record that workflow code raised: the engine takes no more input."""
        if self.crash is None and self.outcome is None:
            self.crash = crash

    def attempts(self, cmd: int) -> int:
        """Failed attempts recorded for activity ``cmd``."""
        return self._attempts.get(cmd, 0)

    def take_new_activities(self) -> list[PendingActivity]:
        """Return (and forget) the activities scheduled since the last call."""
        new, self.new_activities = self.new_activities, []
        for pending in new:
            pending.attempts = self.attempts(pending.cmd)
        return new

    @property
    def quiescent(self) -> bool:
        """Whether the state alone says everything about the future (snapshot-safe).

        True for a message-driven actor between messages, with nothing in flight.
        """
        return (
            not self.has_run
            and self.started
            and not self.mailbox.handling
            and not self.activities
            and not self.timers
            and not self.mailbox.pending_asks()
            and self._error is None
            and self.crash is None
        )

    def query(self, method: Callable[..., Any], args: Sequence[Any]) -> Any:
        """Answer a query from the current state."""
        return method(self.actor, *args)

    # Inputs ----------------------------------------------------------------------

    def _apply(self, event: Input) -> None:
        if isinstance(event, Started):
            self._start(event)
        elif isinstance(event, MessageReceived):
            self.mailbox.deliver(event)
        elif isinstance(event, ReplyReceived):
            self.mailbox.reply(event)
        elif isinstance(event, CancelRequested):
            self._cancel()
        elif isinstance(event, ActivityCompleted):
            pending = self.activities.pop(event.cmd)
            if not pending.future.done():
                pending.future.set_result(self.codec.decode(event.result))
        elif isinstance(event, ActivityFailed):
            pending = self.activities.pop(event.cmd)
            if not pending.future.done():
                error = ActivityError(pending.options.name, event.attempts, event.failure)
                error.__cause__ = pending.error
                pending.future.set_exception(error)
        elif isinstance(event, TimerFired):
            handle = self.timers.pop(event.cmd)
            self._timer_cmds.pop(id(handle), None)
            self.loop.fire_timer(handle)
        else:
            assert isinstance(event, SignalReceived)
            self._signal(event)

    def _start(self, event: Started) -> None:
        self.started = True
        if self.has_run:
            args = self.codec.decode(event.args)
            assert isinstance(args, list)
            self._main = self.loop.create_task(self.actor.run(self.context, *args))
            self._main.add_done_callback(self._on_main_done)

    def _cancel(self) -> None:
        if self._main is not None:
            self._main.cancel()
        else:  # a message-driven actor has no run to cancel: it ends
            self._finish(Cancelled())

    def _signal(self, event: SignalReceived) -> None:
        method = getattr(type(self.actor), event.name, None)
        if not is_signal(method):
            self._mismatch(f"signal {event.name!r}", "a type without that signal")
            return
        args = self.codec.decode(event.args)
        assert isinstance(args, list)
        assert method is not None
        try:
            method(self.actor, *args)
        except Exception as error:  # noqa: BLE001 - a failing signal crashes the actor
            self.crashed(Crash(source="signal", failure=failure_info(error)))

    def _run(self) -> None:
        while True:
            self.loop.run_until_quiescent()
            if self.outcome is not None or self._error is not None or self.crash is not None:
                return
            woke = False
            for predicate, future in list(self._conditions):
                if future.done():
                    self._conditions.remove((predicate, future))
                    continue
                try:
                    met = predicate()
                except Exception as error:  # noqa: BLE001 - raised where the code waits
                    future.set_exception(error)
                    met = True
                if met:
                    if not future.done():
                        future.set_result(True)
                    self._conditions.remove((predicate, future))
                    woke = True
            if not woke:
                return

    def _on_main_done(self, task: asyncio.Task[Any]) -> None:
        if self.outcome is not None or self._error is not None or self.crash is not None:
            return
        if task.cancelled():
            self._finish(Cancelled())
            return
        error = task.exception()
        if isinstance(error, ContinueAsNew):
            try:
                self._finish(
                    ContinuedAsNew(
                        args=self.codec.encode(list(error.args)),
                        state=self.codec.encode(self.actor),
                    )
                )
            except CodecError as encode_error:  # bad arguments fail the run
                self._finish(Failed(failure=failure_info(encode_error)))
        elif isinstance(error, Rejected):  # a deliberate failure: no restart
            self._finish(Failed(failure=failure_info(error)))
        elif error is not None:
            self.crashed(Crash(source="run", failure=failure_info(error)))
        else:
            try:
                self._finish(Completed(result=self.codec.encode(task.result())))
            except CodecError as encode_error:  # an unencodable result fails the run
                self._finish(Failed(failure=failure_info(encode_error)))

    def _finish(self, outcome: Outcome) -> None:
        self.outcome = outcome
        self.issue(outcome)
        for handle in list(self.timers.values()):
            handle.cancel()  # reported to timer_cancelled: their wakeups go too

    # Commands (called by Context and by the loop) ---------------------------------

    def issue(self, command: Command) -> None:
        """Record a command: returned when live, checked against the history in replay."""
        recorded = self._recorded
        if recorded is None:
            self._issued.append(command)
            return
        self._event_no += 1
        while recorded and isinstance(recorded[0], Patched) and recorded[0] != command:
            recorded.popleft()  # a marker whose patched() call was removed from the code
            self._event_no += 1
        if not recorded:
            self._mismatch("no further command (the code waited for input)", describe(command))
        elif not same_command(recorded[0], command):
            self._mismatch(describe(recorded[0]), describe(command))
        else:
            recorded.popleft()

    def _mismatch(self, expected: str, got: str) -> None:
        if self._error is None:
            self._error = NondeterminismError(self.actor_id, self._event_no, expected, got)
        raise self._error

    def next_command(self) -> int:
        """Take the next command number."""
        cmd = self._next_cmd
        self._next_cmd += 1
        return cmd

    def schedule_activity(
        self, fn: Callable[..., Any], args: tuple[Any, ...], options: ActivityOptions
    ) -> asyncio.Future[Any]:
        """Issue an activity command; return the future its outcome resolves."""
        cmd = self.next_command()
        self.issue(ActivityScheduled(cmd=cmd, name=options.name))
        future: asyncio.Future[Any] = self.loop.create_future()
        pending = PendingActivity(cmd=cmd, fn=fn, args=args, options=options, future=future)
        self.activities[cmd] = pending
        if self._recorded is None:  # replayed calls wait for their recorded outcome
            self.new_activities.append(pending)
        return future

    def patched(self, change_id: str) -> bool:
        """Whether code after change ``change_id`` runs here (see ``Context.patched``)."""
        known = self._patches.get(change_id)
        if known is not None:
            return known
        recorded = self._recorded
        if recorded is None:
            self.issue(Patched(change_id=change_id))
            result = True
        else:
            markers = itertools.takewhile(lambda c: isinstance(c, Patched), recorded)
            result = Patched(change_id=change_id) in markers
            if result:
                self.issue(Patched(change_id=change_id))
        self._patches[change_id] = result
        return result

    def wait_until(self, predicate: Callable[[], bool]) -> asyncio.Future[bool]:
        """Return a future resolved once ``predicate()`` holds after some input."""
        future: asyncio.Future[bool] = self.loop.create_future()
        self._conditions.append((predicate, future))
        return future

    # TimerSink --------------------------------------------------------------------

    def timer_started(self, handle: asyncio.TimerHandle) -> None:
        """Issue a timer command for a timer the loop was asked to start."""
        cmd = self.next_command()
        self.issue(TimerStarted(cmd=cmd, fire_at=handle.when()))
        self.timers[cmd] = handle
        self._timer_cmds[id(handle)] = cmd

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """Issue a cancellation for a timer that was cancelled before it fired."""
        cmd = self._timer_cmds.pop(id(handle), None)
        if cmd is not None:
            del self.timers[cmd]
            self.issue(TimerCancelled(cmd=cmd))


def split_activations(
    events: Sequence[tuple[int, HistoryEvent]],
) -> list[tuple[int, HistoryEvent, list[Command]]]:
    """Group a history into (seq, input or note, commands recorded after it)."""
    groups: list[tuple[int, HistoryEvent, list[Command]]] = []
    for seq, event in events:
        if isinstance(event, (*INPUTS, *NOTES)):
            groups.append((seq, event, []))
        elif groups:
            groups[-1][2].append(event)
        else:
            msg = f"a history cannot begin with {type(event).__name__} (event {seq})"
            raise ValueError(msg)
    return groups
