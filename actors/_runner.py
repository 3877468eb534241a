"""The driver of one live actor: inputs in, one atomic commit per activation, then act.

Theory of operation. Inputs (an activity's outcome, a fired timer, a signal, a cancel)
queue up on the runner; messages wait in its mailbox (a copy of its inbox) until the
engine wants them. They are handled one at a time: the engine activates on the input
and returns the commands the code issued; the runner commits, in one ``Commit``, the
input, those commands, the inbox entry the input consumed, the messages the commands
send to other actors (the outbox), the wakeups to schedule or cancel and the status.
Only after the commit is durable does it act: start activities, arm timers, wake the
receivers, answer the caller. A crash between commit and action loses nothing: replay
re-derives the same commands, and the host redoes what they ask.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from journal import Commit, Message, Outgoing

from ._activities import execute
from ._actor import is_signal
from ._endings import bury_mail, discard
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
    Mail,
    MessageReceived,
    Replied,
    ReplyReceived,
    SignalReceived,
    Started,
    Terminated,
    TimerCancelled,
    TimerFired,
    TimerStarted,
    TurnAborted,
)
from ._exceptions import ActorError, ActorNotRunningError
from ._failures import failure_info
from ._mail import (
    STOP_KEY,
    outgoing,
    stop_requests,
)
from ._recovery import StreamMeta, engine_from, successor_snapshot
from ._replay import Engine, Outcome
from ._status import Status
from ._supervision import Crash, RestartType

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("actors")

Item = Input | AttemptFailed | Terminated
Entry = tuple["Item | _Drop | _Dead", "asyncio.Future[None] | None", "str | None"]
"""An input, the future of the caller waiting for its commit, the inbox key it consumes."""


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


def status_of(engine: Engine) -> Status:
    """The stream status an engine's state means."""
    outcome = engine.outcome
    if engine.terminated:
        return Status.TERMINATED
    if isinstance(outcome, Completed):
        return Status.COMPLETED
    if isinstance(outcome, Failed):
        return Status.FAILED
    if isinstance(outcome, Cancelled):
        return Status.CANCELLED
    return Status.IDLE if engine.quiescent else Status.RUNNING


class Runner:
    """Owns a live actor's engine, its inputs, its mailbox and the host work it asked for."""

    def __init__(
        self, system: ActorSystem, actor_id: str, type_name: str, engine: Engine, seq: int
    ) -> None:
        self.system = system
        self.actor_id = actor_id
        self.type_name = type_name
        self.engine = engine
        self.seq = seq
        self.snapshot_seq = 0
        """The seq of the newest snapshot of this actor."""
        self.last_active = time.monotonic()
        self.done: asyncio.Future[tuple[Status, Outcome | None]] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue: deque[Entry] = deque()
        self.mail: dict[str, tuple[Message, Mail]] = {}
        """The inbox entries not taken yet, by key, in commit order."""
        self._wake = _Wake()
        self._stopping = False
        self._handling = False  # an input is between the queue and its commit
        self._stored_status: Status | None = None  # as last committed: unchanged is not rewritten
        self._work: dict[int, asyncio.Task[None]] = {}  # timer and activity tasks by cmd
        self.metadata: bytes | None = None  # written with the first commit only
        self.first_consume: str | None = None  # the spawn message the first commit takes
        self.gated = True
        """Closed to direct delivery until the system opens it (see ``ActorSystem._start``)."""
        self.meta = StreamMeta(type=type_name)
        """Its stream's metadata: its parent (None: the root), the parent's policy for
        it, its place among its siblings and its spawn arguments."""
        self.retry: deque[MessageReceived] = deque()
        """Messages whose turns were rolled back: handled again before the mailbox."""
        self.driver: asyncio.Task[None] | None = None
        """The task running ``run``."""

    @property
    def status(self) -> Status:
        """The actor's status as far as this runner has committed."""
        return status_of(self.engine)

    @property
    def passivatable(self) -> bool:
        """Whether dropping this runner loses nothing: all it waits for is durable."""
        return (
            not self._queue
            and not self._handling
            and not self.engine.activities
            and not self._stopping
            and not self.done.done()
            and self._next_mail() is None  # no reply, signal or wanted message waiting
        )

    def submit(self, item: Item, ack: asyncio.Future[None] | None = None) -> None:
        """Queue an input (or note) for the actor; ``ack`` resolves once it is committed."""
        if self._stopping:  # passivated: what it waited for wakes a new runner instead
            _settle(ack, ActorNotRunningError(self.actor_id, "passivated"))
            return
        self._queue.append((item, ack, None))
        self.system.busy += 1
        self._wake.set()

    def add_mail(self, messages: list[Message], mails: Sequence[Mail] | None = None) -> None:
        """Put inbox messages in the mailbox (each once); they wait until wanted.

        ``mails`` are the messages' data already decoded (by their sender), in order.
        """
        decode = self.system.codec.decode
        for i, message in enumerate(messages):
            if message.key not in self.mail:
                mail = decode(message.data) if mails is None else mails[i]
                assert isinstance(mail, Mail)
                self.mail[message.key] = (message, mail)
        if self.mail:
            self._wake.set()

    def stop(self) -> None:
        """Stop driving (passivation): host work is cancelled, nothing is lost."""
        self._stopping = True
        self._stop_work()
        self._wake.set()

    async def run(self) -> None:
        """Handle inputs and wanted messages until the actor ends or is passivated."""
        while not self.done.done() and not self._stopping:
            if not self._wake.is_set():
                await self._wake.waiter()
            self._wake.clear()
            while not self.done.done() and not self._stopping:
                if self._queue:
                    item, ack, consume = self._queue.popleft()
                    self.system.busy -= 1
                elif (found := self._next_mail()) is not None:
                    item, ack, consume = found
                else:
                    break
                self.last_active = time.monotonic()
                self._handling = True  # passivation and the virtual clock wait for it
                self.system.busy += 1
                try:
                    refusal = self._refusal(item)
                    if refusal is None:
                        await self._handle(item, consume)
                except Crashed as crashed:
                    _settle(ack, None)  # the input is committed; the crash is the actor's
                    self._report(crashed.crash)
                    return
                except Exception as error:  # the driver failed: a journal write, a bug here
                    _settle(ack, error)
                    logger.exception("actor %r failed to handle %s", self.actor_id, item)
                    self._report(Crash(source="driver", failure=failure_info(error)))
                    return
                finally:
                    self._handling = False
                    self.system.busy -= 1
                _settle(ack, refusal)
        if self.done.done():
            self._fail(self._take_queue())
            await bury_mail(self)

    def _report(self, crash: Crash) -> None:
        """Hand the crash to the supervisor, unless this runner is being stopped.

        A supervisor that stopped it (to restart a group) rebuilds the actor from the
        journal anyway, and takes its queued inputs.
        """
        if not self._stopping:
            self.system._supervisor.crashed(self, crash, self._take_queue())

    def _take_queue(self) -> list[tuple[Item, asyncio.Future[None] | None]]:
        taken = [(i, ack) for i, ack, _ in self._queue if not isinstance(i, _Drop | _Dead)]
        self._queue.clear()
        self.system.busy -= len(taken)
        return taken

    def _fail(self, items: list[tuple[Item, asyncio.Future[None] | None]]) -> None:
        """Refuse ``items``: the actor has ended."""
        for _, ack in items:
            _settle(ack, ActorNotRunningError(self.actor_id, self.status.value))

    def _refusal(self, item: Item | _Drop | _Dead) -> ActorError | None:
        """Return why ``item`` is refused before it changes anything, if it is."""
        engine = self.engine
        if isinstance(item, AttemptFailed | Terminated | _Drop | _Dead):
            return None
        if isinstance(item, SignalReceived) and not is_signal(
            getattr(type(engine.actor), item.name, None)
        ):
            return ActorError(f"{self.type_name!r} has no signal {item.name!r}")
        if isinstance(item, SignalReceived | CancelRequested) and not engine.accepts(item):
            return ActorNotRunningError(self.actor_id, self.status.value)
        return None

    # The mailbox --------------------------------------------------------------------

    def _next_mail(self) -> Entry | None:
        """The first mailbox entry the engine takes now, as an input; None if none."""
        now = self.system.clock.now()
        stop = self._stop_entry(now)
        if stop is not None:  # its parent ended: before anything else
            return stop
        if self.retry:
            again = self.retry[0]
            if self.engine.accepts(again):
                self.retry.popleft()
                return (attrs.evolve(again, time=now), None, None)
        for key, (_, mail) in self.mail.items():  # read-only scan: no copy per message
            item = self._input_for(key, mail, now)
            if item is not None:
                return (item, None, key)
        return None

    def _input_for(  # noqa: PLR0911 - one answer per kind of inbox entry
        self, key: str, mail: Mail, now: float
    ) -> Input | _Drop | _Dead | None:
        """What inbox entry ``key`` means now: an input, a drop, a death, or a wait."""
        if mail.kind == "reply":
            result = None if mail.failure else mail.body
            original = key.removeprefix("reply/")
            return ReplyReceived(time=now, key=original, result=result, failure=mail.failure)
        if mail.kind == "signal":
            return SignalReceived(time=now, name=mail.name, args=mail.body)
        if mail.kind == "spawn":
            return _Drop()  # the actor exists: a repeated spawn is a no-op
        if mail.kind == "watch":
            return None  # answered when the actor ends
        if mail.target_type and mail.target_type != self.type_name:
            return _Dead(
                f"sent to a {mail.target_type!r} but actor {self.actor_id!r} is a "
                f"{self.type_name!r}"
            )
        mailbox = self.engine.mailbox
        body = mailbox.decode(mail.body)
        if mailbox.wants(body):
            return MessageReceived(time=now, key=key, message=mail.body, reply_to=mail.reply_to)
        if mailbox.refuses(body):
            return _Dead(f"{self.type_name!r} has no handler for {type(body).__qualname__}")
        return None  # it waits for a receive of its type (selective receive)

    # Activations --------------------------------------------------------------------

    async def _handle(self, item: Item | _Drop | _Dead, consume: str | None = None) -> None:
        engine = self.engine
        if isinstance(item, _Drop | _Dead):
            assert consume is not None
            await discard(self, consume, item.reason if isinstance(item, _Dead) else None)
            return
        if consume is not None:
            self.mail.pop(consume, None)
        if isinstance(item, AttemptFailed):
            engine.note(item)
            await self.commit([item], consume=consume)
            return
        if isinstance(item, Terminated):
            engine.note(item)
            await self.commit([item], consume=consume, status=Status.TERMINATED)
            self._stop_work()
            self._finish()
            return
        if not engine.accepts(item):
            if consume is not None:  # a late reply, or a message no longer wanted
                await self.commit([], consume=consume)
            return  # a late duplicate (an outcome or a firing whose command is settled)
        commands = engine.activate(item)
        if engine.crash is not None:
            await self._commit_crash(item, commands, consume)
            raise Crashed(engine.crash)
        again = self.successor()
        status = self.status if again is None else Status.RUNNING
        await self.commit(
            [item, *commands], commands=commands, fired=item, consume=consume, status=status
        )
        self._act(commands)
        outcome = engine.outcome
        if again is not None:
            await self._continue_as_new(again)
        elif outcome is not None:
            self._finish()
        elif (
            engine.quiescent
            and not self.retry
            and self.seq - self.snapshot_seq >= self.system.snapshot_every
        ):
            await self.system._snapshot(self)

    async def _commit_crash(
        self, item: Input, commands: list[Command], consume: str | None
    ) -> None:
        """Commit the activation in which workflow code raised; nothing is acted on.

        A handler of a message-driven actor rolls its turn back: the input and a
        ``TurnAborted`` note are committed (so replay skips the turn) with the turn's
        timers cancelled, and the commands are dropped. Otherwise the activation is
        committed as it is, so a replay reaches the same point (and the same crash).
        """
        engine = self.engine
        crash = engine.crash
        assert crash is not None
        if crash.source == "handler" and not engine.has_run:
            assert crash.key is not None
            aborted = TurnAborted(
                time=item.time, key=crash.key, failure=crash.failure, next_cmd=engine.next_cmd
            )
            await self.commit(
                [item, aborted],
                consume=consume,
                cancel=self.timer_keys(),
                status=Status.RUNNING,
            )
        else:
            await self.commit(
                [item, *commands],
                commands=commands,
                fired=item,
                consume=consume,
                status=Status.RUNNING,
            )

    async def commit(
        self,
        events: list[HistoryEvent],
        *,
        commands: list[Command] = (),  # type: ignore[assignment]
        fired: Item | None = None,
        consume: str | None = None,
        send: list[Outgoing] = (),  # type: ignore[assignment]
        status: Status | None = None,
        cancel: list[str] = (),  # type: ignore[assignment]
    ) -> None:
        encode = self.system.codec.encode
        schedule = {timer_key(c.cmd): c.fire_at for c in commands if isinstance(c, TimerStarted)}
        cancel = [*cancel, *(timer_key(c.cmd) for c in commands if isinstance(c, TimerCancelled))]
        if isinstance(fired, TimerFired):
            cancel.append(timer_key(fired.cmd))
        consumed = [k for k in (self.first_consume, consume) if k is not None]
        sends = [*outgoing(self.actor_id, commands, encode), *send]
        if status is not None and status.ended and self.engine.children:
            reason = f"its parent {self.actor_id!r} is {status.value}"
            sends += stop_requests(self.engine.children[::-1], reason, encode)
        commit = Commit(
            stream=self.actor_id,
            expected_seq=self.seq,
            events=[encode(e) for e in events],
            consume=consumed,
            send=sends,
            schedule=schedule,
            cancel=cancel,
            status=None if status is None or status is self._stored_status else status.value,
            metadata=self.metadata,
        )
        self.seq = await self.system.journal.commit(commit)
        if status is not None:
            self._stored_status = status
        self.metadata = None
        self.first_consume = None
        for out in sends:
            message = Message(stream=out.stream, key=out.key, position=0, data=out.data)
            self.system.deliver(out.stream, [message])
        for command in commands:
            if isinstance(command, Replied) and command.reply_to is None:
                self.system._replied(self.actor_id, command)

    # Supervision --------------------------------------------------------------------

    def _stop_entry(self, now: float) -> Entry | None:
        """Its parent's stop request, as the input that terminates it, if one waits."""
        stop = self.mail.get(STOP_KEY)
        if stop is None:
            return None
        return (Terminated(time=now, reason=stop[1].name), None, STOP_KEY)

    async def take_stop(self) -> bool:
        """Terminate the actor if its parent's stop request waits; return whether it did.

        For an actor rebuilt with a crash pending, which takes no other input.
        """
        stop = self._stop_entry(self.system.clock.now())
        if stop is None:
            return False
        item, _, key = stop
        await self._handle(item, key)
        return True

    def resume(self) -> None:
        """Start the host work a rebuilt engine is waiting for: activities and timers."""
        settled = {
            item.cmd
            for item, _, _ in self._queue
            if isinstance(item, ActivityCompleted | ActivityFailed)
        }
        for pending in self.engine.activities.values():
            if pending.cmd not in settled:  # an outcome already waiting needs no rerun
                pending.attempts = self.engine.attempts(pending.cmd)
                self._start_activity(pending)
        for cmd, handle in self.engine.timers.items():
            self._arm(cmd, handle.when())
        if self.retry:
            self._wake.set()

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
        if self._stopping:
            return

        async def fire() -> None:
            await self.system.clock.sleep_until(fire_at)
            self.submit(TimerFired(time=self.system.clock.now(), cmd=cmd))

        self.system._spawn_work(self, cmd, fire())

    def next_timer(self) -> float | None:
        """When the earliest pending timer is due, if any."""
        return min((h.when() for h in self.engine.timers.values()), default=None)

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

    def timer_keys(self) -> list[str]:
        """The wakeup keys of the engine's pending timers."""
        return [timer_key(cmd) for cmd in self.engine.timers]

    def end(self) -> None:
        """The actor has ended (its end is committed): settle its waiters and inputs."""
        self._finish()
        self._fail(self._take_queue())

    def _finish(self) -> None:
        self._stop_work()
        if not self.done.done():
            self.done.set_result((self.status, self.engine.outcome))
        self.system._finished(self)

    def successor(self) -> ContinuedAsNew | None:
        """How the next run starts, if the run just ended and another one follows.

        After continue-as-new, from its arguments and state; after a ``PERMANENT``
        actor's run completed or was cancelled, from its spawn arguments and a fresh
        state.
        """
        outcome = self.engine.outcome
        if isinstance(outcome, ContinuedAsNew):
            return outcome
        policy, args = self.meta.supervision, self.meta.args
        if (
            policy is not None
            and policy.restart is RestartType.PERMANENT
            and isinstance(outcome, Completed | Cancelled)
            and not self.engine.terminated
            and args is not None
        ):
            logger.info(
                "permanent actor %r ended (%s); starting a new run",
                self.actor_id,
                type(outcome).__name__.lower(),
                extra={"actor_id": self.actor_id},
            )
            fresh = self.system.codec.encode(type(self.engine.actor)())
            return ContinuedAsNew(args=args, state=fresh)
        return None

    async def next_run(self, outcome: ContinuedAsNew) -> Started:
        """Snapshot the state the next run starts from, switch to its engine.

        Returns:
            The next run's first input.
        """
        self._stop_work()
        saved = successor_snapshot(self.engine, outcome)
        await self.system._save_snapshot(self, saved)
        self.engine = engine_from(self.actor_id, saved, self.system.codec)
        return Started(time=self.system.clock.now(), args=outcome.args, run=self.engine.run)

    async def _continue_as_new(self, outcome: ContinuedAsNew) -> None:
        await self._handle(await self.next_run(outcome))


class Crashed(Exception):
    """Workflow code raised (the activation is committed): the supervisor takes over."""

    def __init__(self, crash: Crash) -> None:
        super().__init__(crash)
        self.crash = crash


class _Wake:
    """A wake-up flag with one waiter, like ``asyncio.Event`` but cheaper to wait on.

    A runner spends most of its life waiting, and what a wait allocates stays alive,
    walked by every collection of the cyclic GC, until the actor has work.
    ``Event.wait`` adds a coroutine to the future that any wait needs; this does not.
    """

    __slots__ = ("_set", "_waiter")

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        """Whether ``set`` was called since the last ``clear``."""
        return self._set

    def set(self) -> None:
        """Raise the flag and wake the waiter, if any."""
        self._set = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Lower the flag."""
        self._set = False

    def waiter(self) -> asyncio.Future[None]:
        """A future resolved at the next ``set``."""
        waiter = self._waiter
        if waiter is None or waiter.done():  # done: cancelled with the task that waited
            waiter = self._waiter = asyncio.get_running_loop().create_future()
        return waiter


class _Drop:
    """A mailbox entry consumed without effect (a repeated spawn request)."""


class _Dead:
    """A mailbox entry that becomes a dead letter."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
