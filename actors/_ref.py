"""``ActorRef``: a handle on one actor, by id; what callers outside workflow code use."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, final

from ._actor import Actor, is_query, is_signal, seconds
from ._events import CancelRequested, Completed, ContinuedAsNew, Failed, SignalReceived, Terminated
from ._exceptions import (
    ActorCancelled,
    ActorError,
    ActorFailed,
    ActorNotFoundError,
    ActorNotRunningError,
    ActorTerminated,
)
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

    async def result(self, timeout: float | timedelta | None = None) -> Any:
        """Wait for the actor to end and return ``run``'s return value.

        Raises:
            ActorFailed: the run raised (type, message, traceback and cause chain).
            ActorCancelled: it was cancelled.
            ActorTerminated: it was terminated.
            NondeterminismError: it is suspended because its code no longer replays.
            TimeoutError: ``timeout`` passed first.
        """
        suspended = self._system._suspended.get(self.actor_id)
        if suspended is not None:
            raise suspended
        runner = self._system._runners.get(self.actor_id)
        if runner is not None:
            waiting = getattr(self._system.clock, "waiting_for_result", None)
            async with asyncio.timeout(seconds(timeout)):
                if waiting is None:
                    status, outcome = await asyncio.shield(runner.done)
                else:
                    with waiting():
                        status, outcome = await asyncio.shield(runner.done)
            return self._unwrap(status, outcome)
        return await self._stored_result()

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
        runner = self._system._runners.get(self.actor_id)
        if runner is not None:
            self._system._check_type(self.actor_id, self.actor_type, runner.type_name)
        else:
            status = await self.status()
            raise ActorNotRunningError(self.actor_id, status.value)
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
        runner = self._system._runners.get(self.actor_id)
        if runner is not None:
            self._system._check_type(self.actor_id, self.actor_type, runner.type_name)
            return runner.engine.query(method, args)
        stored = await self._system._stored_type(self.actor_id)
        self._system._check_type(self.actor_id, self.actor_type, stored)
        engine, _ = await self._system._rebuild(self.actor_id, self.actor_type)
        return engine.query(method, args)

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


_TOKEN = object()
