"""``Context``: the only door from workflow code to the world, each call a command."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, NoReturn, TypeVar, final, overload

from ._actor import Actor, Retry, activity_options, is_signal, seconds
from ._exceptions import ActorError
from ._supervision import Supervision

if TYPE_CHECKING:
    from ._replay import Engine

_R = TypeVar("_R")
_M = TypeVar("_M")
_AT = TypeVar("_AT", bound=Actor)


class ContinueAsNew(BaseException):
    """Raised by ``ctx.continue_as_new`` to end the run.

    Not an ``Exception``, so ``except Exception`` in workflow code does not swallow it.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)


@final
class Context:
    """What workflow code may do besides computing: each call is journaled or derived.

    Only the system creates contexts; workflow code receives one as ``run``'s ``ctx``.
    """

    def __init__(self, engine: Engine, token: object) -> None:
        if token is not _TOKEN:
            msg = "Context is created by the actor system; workflow code receives it as ctx"
            raise TypeError(msg)
        self._engine = engine

    @classmethod
    def _create(cls, engine: Engine) -> Context:
        return cls(engine, _TOKEN)

    @property
    def actor_id(self) -> str:
        """The id of the actor this code runs for."""
        return self._engine.actor_id

    @property
    def is_replaying(self) -> bool:
        """Whether the code is being replayed from history (e.g. to skip logging)."""
        return self._engine.replaying

    @overload
    async def activity(
        self,
        fn: Callable[..., Awaitable[_R]],
        *args: Any,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
    ) -> _R: ...
    @overload
    async def activity(
        self,
        fn: Callable[..., _R],
        *args: Any,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
    ) -> _R: ...
    async def activity(
        self,
        fn: Callable[..., Any],
        *args: Any,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
    ) -> Any:
        """Run ``fn(*args)`` on the host as an activity and return its journaled result.

        ``fn`` runs on the host's event loop (a plain function runs in a worker thread)
        with the retry policy and per-attempt timeout given here, by ``@activity``, or
        by default. Its outcome is journaled; replay returns it without running ``fn``.
        An activity in flight at a crash runs again; a completed one never does.

        Raises:
            ActivityError: ``fn`` failed on its last attempt (the cause is attached).
        """
        options = activity_options(fn, retry, timeout)
        future = self._engine.schedule_activity(fn, args, options)
        return await future

    async def sleep(self, duration: float | timedelta) -> None:
        """Sleep on a durable timer: stored, and fired after a crash if it came due."""
        await asyncio.sleep(seconds(duration) or 0.0)

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float | timedelta | None = None
    ) -> bool:
        """Wait until ``predicate()`` is true (checked after each input, e.g. signals).

        Returns:
            True once the predicate holds; False if ``timeout`` (a durable timer)
            expired first.
        """
        if predicate():
            return True
        future = self._engine.wait_until(predicate)
        limit = seconds(timeout)
        if limit is None:
            return await future
        try:
            async with asyncio.timeout(limit):
                return await future
        except TimeoutError:
            future.cancel()
            return False

    def now(self) -> datetime:
        """The workflow's current time (UTC): the time of the input being handled."""
        return datetime.fromtimestamp(self._engine.now, UTC)

    def random(self) -> float:
        """A deterministic random float in [0, 1): the same on every replay."""
        return self._engine.random.random()

    def uuid4(self) -> uuid.UUID:
        """A deterministic random UUID: the same on every replay."""
        return uuid.UUID(int=self._engine.random.getrandbits(128), version=4)

    def patched(self, change_id: str) -> bool:
        """Tell whether the code after a change runs here, so old histories still replay.

        Live, it records a marker and returns True. Replaying a history written before
        the change, it returns False, so keep the old code path under ``else`` until no
        run from before the change is left.
        """
        return self._engine.patched(change_id)

    async def continue_as_new(self, *args: Any) -> NoReturn:
        """End this run and start ``run(ctx, *args)`` again from the current state.

        Use it at the end of an endless loop: the new run starts from a snapshot of the
        state with an empty history, so recovery stays bounded. It never returns.
        """
        raise ContinueAsNew(*args)

    async def receive(self, *types: type[_M], timeout: float | timedelta | None = None) -> _M:
        """Wait for the first queued message of one of ``types`` (selective receive).

        Messages of other types stay queued for a later ``receive`` or a handler.

        Raises:
            TimeoutError: ``timeout`` (a durable timer) expired first.
        """
        if not types:
            msg = "ctx.receive() needs at least one message type"
            raise TypeError(msg)
        async with asyncio.timeout(seconds(timeout)):
            message: _M = await self._engine.mailbox.receive(types)
        return message

    def get(self, actor_type: type[_AT], actor_id: str) -> WorkflowRef[_AT]:
        """Name another actor from workflow code; sending to it activates it."""
        return WorkflowRef._create(self._engine, actor_type, actor_id)

    async def spawn(
        self,
        actor_type: type[_AT],
        actor_id: str,
        *args: Any,
        supervision: Supervision | None = None,
    ) -> WorkflowRef[_AT]:
        """Spawn ``actor_type.run(ctx, *args)`` as a child actor ``actor_id``, durably.

        The spawn is a command: after a crash it is not repeated, and spawning an id
        that exists leaves that actor as it is. This actor supervises the child with
        ``supervision`` (default ``Supervision()``): a crash of the child restarts it
        per the policy, and past its budget this actor crashes in turn. When this actor
        ends, its children are stopped (terminated).
        """
        given: object = supervision  # callers without a type checker pass anything
        if given is not None and not isinstance(given, Supervision):
            msg = f"supervision must be a Supervision, got {supervision!r}"
            raise TypeError(msg)
        inspect.signature(actor_type.run).bind(None, None, *args)  # TypeError here
        self._engine.mailbox.spawn(actor_id, actor_type, list(args), supervision)
        return self.get(actor_type, actor_id)

    def watch(self, ref: WorkflowRef[Any]) -> None:
        """Get a ``Terminated`` message when ``ref``'s actor ends (at once if it has).

        The watch is a command, journaled: after a crash it is neither lost nor sent
        twice. Take the message with ``ctx.receive(Terminated)`` or a ``@handler``.
        """
        self._engine.mailbox.watch(ref.actor_id, ref.actor_type)

    async def tell(self, ref: WorkflowRef[Any], message: object) -> None:
        """Send ``message`` to ``ref``'s actor; the send is journaled, never repeated."""
        await ref.tell(message)

    async def ask(self, ref: WorkflowRef[Any], message: object) -> Any:
        """Send ``message`` to ``ref``'s actor and return its handler's reply.

        Raises:
            ActorFailed: the handler raised.
        """
        return await ref.ask(message)


@final
class WorkflowRef(Generic[_AT]):
    """A handle on another actor inside workflow code: every call is a command."""

    def __init__(self, engine: Engine, actor_type: type[_AT], actor_id: str, token: object) -> None:
        if token is not _TOKEN:
            msg = "WorkflowRef is created by ctx.get() and ctx.spawn()"
            raise TypeError(msg)
        self._engine = engine
        self.actor_type = actor_type
        """The actor's class."""
        self.actor_id = actor_id
        """The actor's id."""

    @classmethod
    def _create(cls, engine: Engine, actor_type: type[_AT], actor_id: str) -> WorkflowRef[_AT]:
        learn = getattr(engine.codec, "learn", None)  # the system's codec registers it
        if learn is not None:
            learn(actor_type)
        return cls(engine, actor_type, actor_id, _TOKEN)

    async def tell(self, message: object) -> None:
        """Send ``message``; journaled, so a replay does not send it again."""
        self._engine.mailbox.send(self.actor_id, self.actor_type, message, ask=False)

    async def ask(self, message: object) -> Any:
        """Send ``message`` and return the reply; both are journaled.

        Raises:
            ActorFailed: the handler raised.
        """
        return await self._engine.mailbox.ask(self.actor_id, self.actor_type, message)

    async def result(self) -> Any:
        """Wait for the actor's run to end and return its result; journaled.

        Replay-safe: after a crash the wait is not sent again and the result is
        replayed from the history.

        Raises:
            ActorFailed: the actor failed (``ActorCancelled``, ``ActorTerminated``: it
                was cancelled or terminated, e.g. stopped with its parent).
        """
        return await self._engine.mailbox.result(self.actor_id, self.actor_type)

    async def signal(self, method: Callable[..., Any], *args: Any) -> None:
        """Signal the actor with ``method`` (a ``@signal`` of its type); journaled."""
        if not is_signal(method) or getattr(self.actor_type, method.__name__, None) is not method:
            msg = f"{method!r} is not a @signal of {self.actor_type.__actor_name__!r}"
            raise ActorError(msg)
        inspect.signature(method).bind(None, *args)
        self._engine.mailbox.signal(self.actor_id, self.actor_type, method.__name__, list(args))


_TOKEN = object()
