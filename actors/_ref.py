"""``ActorRef``: a handle on one actor, by id; what callers outside workflow code use."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

import attrs

from journal import Message

from ._actor import Actor, is_query, is_signal, seconds
from ._events import (
    CancelRequested,
    Completed,
    ContinuedAsNew,
    Failed,
    GaveUp,
    Mail,
    Replied,
    SignalReceived,
    Terminated,
)
from ._exceptions import (
    ActorCancelled,
    ActorError,
    ActorFailed,
    ActorNotFoundError,
    ActorNotRunningError,
    ActorTerminated,
)
from ._mail import DEAD_LETTERS, DeadLetterRecord, failure_reply
from ._recovery import rebuild
from ._status import Status

if TYPE_CHECKING:
    from ._replay import Outcome
    from ._runner import Runner
    from ._system import ActorSystem

_A = TypeVar("_A", bound=Actor)


@final
class ActorRef(Generic[_A]):
    """A handle on actor ``actor_id`` of type ``actor_type``; cheap, holds no state.

    Only the system creates refs: ``system.spawn(...)`` and ``system.get(...)``.
    """

    def __init__(self, system: ActorSystem, cls: type[_A], actor_id: str, token: object) -> None:
        if token is not _TOKEN:
            msg = "ActorRef is created by the system: use system.spawn() or system.get()"
            raise TypeError(msg)
        self._system = system
        self.actor_type = cls
        """The actor's class."""
        self.actor_id = actor_id
        """The actor's id."""

    @classmethod
    def _create(cls, system: ActorSystem, actor_type: type[_A], actor_id: str) -> ActorRef[_A]:
        return cls(system, actor_type, actor_id, _TOKEN)

    def __repr__(self) -> str:
        return f"ActorRef({self.actor_type.__actor_name__}, {self.actor_id!r})"

    async def status(self) -> Status:
        """Return the actor's status.

        Raises:
            ActorNotFoundError: no actor has this id.
        """
        if self.actor_id in self._system._suspended:
            return Status.SUSPENDED
        runner = self._system._runners.get(self.actor_id)
        if runner is not None:
            return runner.status
        info = await self._system.journal.info(self.actor_id)
        if info is None or info.status is None:
            raise ActorNotFoundError(self.actor_id)
        return Status(info.status)

    async def _state(self) -> Status:
        """The actor's status, checking on the way that it is of this ref's type."""
        runner = self._system._runners.get(self.actor_id)
        if runner is not None:
            self._system._check_type(self.actor_id, self.actor_type, runner.type_name)
            return runner.status
        stored = await self._system._stored_type(self.actor_id)
        self._system._check_type(self.actor_id, self.actor_type, stored)
        return await self.status()

    async def result(self, timeout: float | timedelta | None = None) -> Any:
        """Wait for the actor to end and return ``run``'s return value.

        Raises:
            ActorFailed: the run raised (type, message, traceback and cause chain).
            ActorCancelled: it was cancelled.
            ActorTerminated: it was terminated.
            NondeterminismError: it is suspended because its code no longer replays.
            TimeoutError: ``timeout`` passed first.
        """
        system = self._system
        suspended = system._suspended.get(self.actor_id)
        if suspended is not None:
            raise suspended
        if self.actor_id not in system._runners:
            status = await self._state()
            if status.ended:
                return await self._stored_result()
            if self.actor_id in system._unknown:
                msg = (
                    f"actor {self.actor_id!r} is {status.value} but not running in this "
                    "system: register its type (actors=[...]) so it can be recovered"
                )
                raise ActorError(msg)
        outcome_future = system._outcome(self.actor_id)
        async with asyncio.timeout(seconds(timeout)):
            with system._waiting():
                status, outcome = await asyncio.shield(outcome_future)
        return self._unwrap(status, outcome)

    async def _stored_result(self) -> Any:
        info = await self._system.journal.info(self.actor_id)
        if info is None or info.status is None:
            raise ActorNotFoundError(self.actor_id)
        status = Status(info.status)
        if not status.ended:
            msg = (
                f"actor {self.actor_id!r} is {status.value} but not running in this "
                "system: register its type (actors=[...]) so it can be recovered"
            )
            raise ActorError(msg)
        events = await self._system.journal.read(self.actor_id, after_seq=max(0, info.last_seq - 2))
        outcome: Outcome | None = None
        for event in events:
            decoded = self._system.codec.decode(event.data)
            if isinstance(decoded, Completed | Failed | Terminated):
                outcome = decoded  # type: ignore[assignment]
            elif isinstance(decoded, GaveUp):
                outcome = Failed(failure=decoded.failure)
        return self._unwrap(status, outcome)

    def _unwrap(self, status: Status, outcome: object) -> Any:
        if status is Status.COMPLETED and isinstance(outcome, Completed):
            return self._system.codec.decode(outcome.result)
        if status is Status.FAILED and isinstance(outcome, Failed):
            raise ActorFailed(self.actor_id, outcome.failure)
        if status is Status.CANCELLED:
            raise ActorCancelled(self.actor_id, ())
        if status is Status.TERMINATED:
            raise ActorTerminated(self.actor_id, ())
        assert not isinstance(outcome, ContinuedAsNew)
        msg = f"actor {self.actor_id!r} ended as {status.value} without a recorded outcome"
        raise ActorError(msg)

    def _method(self, fn: Callable[..., Any], kind: str, check: Callable[[object], bool]) -> str:
        name = getattr(fn, "__name__", "")
        if not check(fn) or getattr(self.actor_type, name, None) is not fn:
            msg = (
                f"{fn!r} is not a @{kind} of {self.actor_type.__actor_name__!r}; pass one "
                f"of its methods, e.g. ref.{kind}({self.actor_type.__name__}.<method>, ...)"
            )
            raise ActorError(msg)
        return name

    async def _live(self) -> Runner:
        """The actor's runner, activating a passivated actor; refuse an ended one."""
        status = await self._state()
        runner = self._system._runners.get(self.actor_id)
        if runner is None and not status.ended:
            runner = await self._system._activate(self.actor_id)
        if runner is None:
            raise ActorNotRunningError(self.actor_id, (await self.status()).value)
        return runner

    async def signal(self, method: Callable[..., Any], *args: Any) -> None:
        """Apply signal ``method`` with ``args``; return once it is journaled.

        Raises:
            ActorError: ``method`` is not a signal of this actor's type.
            TypeError: ``args`` do not fit ``method``.
            EncodeError: an argument cannot be stored.
            ActorNotRunningError: the actor has ended.
        """
        name = self._method(method, "signal", is_signal)
        inspect.signature(method).bind(None, *args)
        data = self._system.codec.encode(list(args))
        runner = await self._live()
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        runner.submit(SignalReceived(time=self._system.clock.now(), name=name, args=data), ack)
        await ack

    async def query(self, method: Callable[..., Any], *args: Any) -> Any:
        """Call query ``method`` on the actor's current state; nothing is journaled.

        Raises:
            ActorError: ``method`` is not a query of this actor's type.
            TypeError: ``args`` do not fit ``method``.
        """
        self._method(method, "query", is_query)
        inspect.signature(method).bind(None, *args)
        status = await self._state()
        runner = self._system._runners.get(self.actor_id)
        if runner is None and not status.ended:
            runner = await self._system._activate(self.actor_id)
        if runner is not None:
            return runner.engine.query(method, args)
        engine = (
            await rebuild(
                self.actor_id,
                self.actor_type,
                self._system.journal,
                self._system.snapshots,
                self._system.codec,
            )
        ).engine
        return engine.query(method, args)

    async def tell(self, message: object, *, id: str | None = None) -> None:
        """Put ``message`` in the actor's durable mailbox; return once it is committed.

        Args:
            message: an attrs instance, dataclass or other encodable value; the actor
                handles it with the ``@handler`` for its type (or ``ctx.receive``).
            id: the message's id; sending an id the actor accepted before enqueues
                nothing, so a caller may retry after a crash.

        Raises:
            EncodeError: the message cannot be stored.
            ActorTypeError: the actor in memory is of another type.
        """
        await self._send(message, _key(id))

    async def ask(
        self,
        message: object,
        *,
        timeout: float | timedelta | None = None,
        id: str | None = None,
    ) -> Any:
        """Send ``message`` and return what its handler returns.

        Args:
            message: what to send (see :meth:`tell`).
            timeout: how long to wait for the reply; the message stays accepted.
            id: the message's id: asking again with the same id after a crash does not
                send it twice, and returns the reply to the first ask.

        Raises:
            ActorFailed: the handler raised, or the message became a dead letter (no
                handler for its type, the actor has ended).
            TimeoutError: ``timeout`` passed first.
        """
        system = self._system
        key = _key(id)
        accepted = await self._send(message, key)
        # Registered before any await after the send: the reply needs an activation,
        # which cannot happen before this task yields.
        waiter = system._ask_waiter(self.actor_id, key)
        if not accepted:
            replied = await self._find_reply(key)
            if replied is not None:
                system._replied(self.actor_id, replied)
            else:
                await system._activate(self.actor_id)
        try:
            async with asyncio.timeout(seconds(timeout)):
                with system._waiting():
                    replied = await asyncio.shield(waiter)
        finally:
            if not waiter.done():
                system._asks.pop((self.actor_id, key), None)
        if replied.failure is not None:
            raise ActorFailed(self.actor_id, replied.failure)
        assert replied.result is not None
        return system.codec.decode(replied.result)

    async def _send(self, message: object, key: str) -> bool:
        system = self._system
        system._require_running()
        runner = system._runners.get(self.actor_id)
        if runner is not None:
            system._check_type(self.actor_id, self.actor_type, runner.type_name)
        else:
            info = await system.journal.info(self.actor_id)
            if info is not None and info.metadata is not None:
                stored = system._meta(info.metadata).type
                system._check_type(self.actor_id, self.actor_type, stored)
        mail = Mail(
            kind="message",
            target_type=self.actor_type.__actor_name__,
            body=system.codec.encode(message),
        )
        data = system.codec.encode(mail)
        accepted = await system.journal.enqueue(self.actor_id, key, data)
        if accepted:
            system.deliver(
                self.actor_id,
                [Message(stream=self.actor_id, key=key, position=0, data=data)],
                [mail],
            )
        return accepted

    async def _find_reply(self, key: str) -> Replied | None:
        """The outcome of message ``key``, for an ask retried after a crash.

        The journaled reply if a handler took it; a failure if it became a dead letter;
        None while it still waits in the inbox.
        """
        codec = self._system.codec
        for event in await self._system.journal.read(self.actor_id):
            decoded = codec.decode(event.data)
            if isinstance(decoded, Replied) and decoded.key == key:
                return decoded
        dead_key = f"{self.actor_id}/{key}"
        for message in await self._system.journal.pending(DEAD_LETTERS):
            if message.key == dead_key:
                record = codec.decode(message.data)
                assert isinstance(record, DeadLetterRecord)
                return Replied(key=key, failure=failure_reply(record.reason))
        return None

    async def cancel(self) -> None:
        """Ask the actor to cancel: ``CancelledError`` is raised at its current await.

        The request is journaled; the workflow may catch the error and clean up.

        Raises:
            ActorNotRunningError: the actor has ended.
        """
        runner = await self._live()
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        runner.submit(CancelRequested(time=self._system.clock.now()), ack)
        await ack

    async def terminate(self, reason: str = "terminated") -> None:
        """Stop the actor at once, durably; its activities in flight are abandoned.

        Raises:
            ActorNotRunningError: the actor has ended.
        """
        runner = await self._live()
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        runner.submit(Terminated(time=self._system.clock.now(), reason=reason), ack)
        await ack


def _key(caller_id: str | None) -> str:
    """The inbox key of a caller's message: ``ext:`` + its id (or a fresh one)."""
    return f"ext:{caller_id or _fresh_id()}"


class _FreshIds:
    """Ids unique across processes: a random 128-bit prefix, then a counter.

    As unique as a ``uuid4`` per message, for a tenth of its cost (no system call);
    a forked child draws its own prefix.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = uuid.uuid4().hex
        self._count = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._count):x}"


_fresh_id = _FreshIds()


@attrs.frozen(kw_only=True)
class DeadLetter:
    """A message no actor could take, as ``ActorSystem.dead_letters()`` lists it."""

    actor_id: str
    """The actor it was sent to."""
    key: str
    """The message's id: the caller's ``id=`` for a message sent from outside."""
    message: object
    """The message (or the error that kept it from being decoded)."""
    reason: str
    """Why it died: no handler for its type, the actor had ended, an unknown type..."""


_TOKEN = object()
