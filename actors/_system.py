"""``ActorSystem``: the host that owns stores, codec, clock and every live actor.

Theory of operation. The system owns what its actors share: the journal and snapshot
stores, the codec (with the registry of actor and message types), the clock, the host
tasks and the keeper that passivates idle actors. Entering it recovers the actors that
have work (see ``Hosting``); leaving it waits briefly for activity attempts in flight,
then stops every task: the actors resume at the next entry. ``spawn``, ``get`` and
``dead_letters`` are its public face; ``ActorRef`` does the rest.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Coroutine, Iterable
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack, get_type_hints

import attrs

from journal import CodecError, ConcurrencyError, Journal, Message
from journal.codec import Codec, PayloadCodec
from snapshots import SnapshotStore

from ._actor import Actor, handlers_of, is_query, is_signal
from ._clock import Clock, SystemClock
from ._events import ALL_EVENTS, Mail, Replied
from ._exceptions import (
    ActorError,
    NondeterminismError,
)
from ._hosting import Hosting
from ._keeper import Keeper
from ._mail import DEAD_LETTERS, DeadLetterRecord
from ._recovery import (
    RunSnapshot,
    StreamMeta,
)
from ._ref import ActorRef, DeadLetter
from ._runner import Runner
from ._status import Status
from ._supervision import Supervision, Terminated
from ._supervisor import Supervisor
from ._tasks import TaskSet

logger = logging.getLogger("actors")
logger.addHandler(logging.NullHandler())

_A = TypeVar("_A", bound=Actor)


class ActorSystem(Hosting):
    """Hosts durable actors over a journal and a snapshot store.

    Use it as an async context manager: entering recovers every unfinished actor,
    leaving stops them (they resume at the next entry). ``ActorSystem.open(path)``
    gives the SQLite default; the constructor takes explicit stores.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        snapshots: SnapshotStore,
        actors: Iterable[type[Actor]] = (),
        clock: Clock | None = None,
        codec: PayloadCodec | None = None,
        converter: Any = None,
        close_stores: bool = False,
        grace: float = 2.0,
        snapshot_every: int = 200,
        max_active: int = 10_000,
        idle_timeout: float = 300.0,
        supervision: Supervision | None = None,
    ) -> None:
        """Create a system over ``journal`` and ``snapshots``.

        Args:
            journal: the event journal (``journal.memory`` for tests).
            snapshots: the snapshot store.
            actors: actor types to recover on entry (``spawn`` registers others).
            clock: the host clock; ``actors.testing.VirtualClock`` in tests.
            codec: wraps every stored payload's bytes (compression, encryption).
            converter: a cattrs converter to structure payloads with.
            close_stores: close both stores when the system is left.
            grace: seconds that leaving the system waits for activities in flight
                before cancelling them (their outcomes, not journaled, run again at
                the next entry).
            snapshot_every: snapshot a message-driven actor once this many events
                accumulated since its last snapshot (checked between messages).
            max_active: actors kept in memory at most; past it, the least recently
                active idle ones are passivated (dropped, to be rebuilt on demand).
            idle_timeout: seconds after which an idle actor is passivated.
            supervision: the root supervisor's policy for top-level actors (default
                ``Supervision()``: 3 restarts within 5 s, then the actor fails).
        """
        if snapshot_every < 1 or max_active < 1 or idle_timeout <= 0 or grace < 0:
            msg = "snapshot_every and max_active must be >= 1, idle_timeout > 0, grace >= 0"
            raise ValueError(msg)
        self.journal = journal
        self.snapshots = snapshots
        self.clock: Clock = clock or SystemClock()
        self.codec = _SystemCodec(self, converter, payload_codec=codec)
        for event_type in ALL_EVENTS:
            self.codec.register(event_type, name=f"perdure.{event_type.__name__}")
        self.codec.register(StreamMeta, name="perdure.StreamMeta")
        self.codec.register(RunSnapshot, name="perdure.RunSnapshot")
        self.codec.register(Mail, name="perdure.Mail")
        self.codec.register(DeadLetterRecord, name="perdure.DeadLetter")
        self.codec.register(Terminated, name="perdure.WatchedActorEnded")
        self.busy = 0
        """Inputs queued or being committed plus activity attempts running; 0 = idle."""
        self.in_flight: set[asyncio.Task[None]] = set()
        """Tasks running an activity attempt right now (not sleeping out a backoff)."""
        self._types: dict[str, type[Actor]] = {}
        self._runners: dict[str, Runner] = {}
        self._suspended: dict[str, NondeterminismError] = {}
        self._unknown: dict[str, str] = {}  # actor id -> type name nobody registered
        self._work = TaskSet()  # activities and timers
        self._drivers = TaskSet()  # one per live actor
        self._running = False
        self.grace = grace
        self.snapshot_every = snapshot_every
        self._close_stores = close_stores
        self._keeper = Keeper(self, max_active=max_active, idle_timeout=idle_timeout)
        self._supervisor = Supervisor(self, supervision or Supervision())
        self._activating: dict[str, asyncio.Future[Runner | None]] = {}
        self._early_mail: dict[str, list[Message]] = {}
        self._outcomes: dict[str, asyncio.Future[tuple[Status, Any]]] = {}
        self._asks: dict[tuple[str, str], asyncio.Future[Replied]] = {}
        for cls in actors:
            self.register(cls)
        self.clock.attach(lambda: self.busy == 0)

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        actors: Iterable[type[Actor]] = (),
        synchronous: str = "FULL",
        **options: Unpack[SystemOptions],
    ) -> _Opening:
        """Open the system on a SQLite file: a path or a ``sqlite:///path`` URL.

        The journal and the snapshots share the file. Use as
        ``async with ActorSystem.open("app.db") as system: ...``; ``options`` are the
        constructor's (clock, codec, grace, snapshot_every, max_active, idle_timeout).
        """
        return _Opening(cls, os.fspath(url), actors, synchronous, options)

    # Registry ---------------------------------------------------------------------

    def register(self, cls: type[Actor]) -> None:
        """Make ``cls`` known: its stored name, and the types in its signatures."""
        name = cls.__actor_name__
        known = self._types.get(name)
        if known is cls:
            return
        if known is not None:
            msg = f"actor type name {name!r} is taken by {known!r}; pass name=... to {cls!r}"
            raise ActorError(msg)
        missing = [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]  # type: ignore[arg-type]
        if missing:
            msg = (
                f"actor type {name!r} has state fields without a default: {missing}; "
                "give every field a default (the state starts as Cls())"
            )
            raise ActorError(msg)
        shared = [
            f.name
            for f in attrs.fields(cls)  # type: ignore[arg-type]
            if isinstance(f.default, list | dict | set | bytearray)
        ]
        if shared:
            msg = (
                f"actor type {name!r} has mutable defaults shared by every instance: "
                f"{shared}; write `field: list[str] = attrs.Factory(list)` instead"
            )
            raise ActorError(msg)
        self.codec.register(cls, name=f"actor:{name}")
        handlers = list(handlers_of(cls).values())  # also checks their signatures
        for member in list(vars(cls).values()):
            if (
                member is getattr(cls, "run", None)
                or is_signal(member)
                or is_query(member)
                or member in handlers
            ):
                self._register_hints(member)
        self._register_hints(cls.run)
        self._types[name] = cls

    def _register_hints(self, fn: Any) -> None:
        try:
            hints = get_type_hints(fn)
        except Exception:  # noqa: BLE001 - unresolvable hints: values need registering by hand
            return
        for key, hint in hints.items():
            if key != "ctx":
                self.codec.register_annotation(hint)

    # Lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._work = TaskSet()
        self._drivers = TaskSet()
        self._running = True
        try:
            await self._recover_all()
            self._keeper.start(self._drivers)
        except BaseException:
            await self._leave()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._leave()

    async def _leave(self) -> None:
        if self._running:
            self._running = False
            if self.in_flight and self.grace > 0:
                await asyncio.wait(set(self.in_flight), timeout=self.grace)
            await self._work.close()
            await self._drivers.close()
        self._runners.clear()
        self._keeper.clear()
        stopped: list[asyncio.Future[Any]] = [*self._outcomes.values(), *self._asks.values()]
        for future in stopped:
            if not future.done():
                future.set_exception(ActorError("the ActorSystem stopped"))
                future.exception()  # a waiter that is gone must not be reported as lost
        self._outcomes.clear()
        self._asks.clear()
        if self._close_stores:
            await self.journal.close()
            await self.snapshots.close()

    def _spawn_work(self, runner: Runner, cmd: int, work: Coroutine[Any, Any, None]) -> None:
        runner.track(cmd, self._work.start(work))

    def _finished(self, runner: Runner) -> None:
        """Resolve ``result()`` waiters of an actor that ended."""
        future = self._outcomes.pop(runner.actor_id, None)
        if future is not None and not future.done():
            future.set_result((runner.status, runner.engine.outcome))

    def _outcome(self, actor_id: str) -> asyncio.Future[tuple[Status, Any]]:
        future = self._outcomes.get(actor_id)
        if future is None:
            future = self._outcomes[actor_id] = asyncio.get_running_loop().create_future()
        return future

    def _replied(self, actor_id: str, replied: Replied) -> None:
        """Answer the caller outside the system waiting for this reply, if any."""
        future = self._asks.pop((actor_id, replied.key), None)
        if future is not None and not future.done():
            future.set_result(replied)

    def _ask_waiter(self, actor_id: str, key: str) -> asyncio.Future[Replied]:
        future = self._asks.get((actor_id, key))
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._asks[(actor_id, key)] = future
        return future

    # Spawning and naming ----------------------------------------------------------

    async def spawn(self, cls: type[_A], actor_id: str, *args: Any) -> ActorRef[_A]:
        """Start actor ``actor_id`` running ``cls.run(ctx, *args)``, or find it.

        Spawning an id that exists returns the existing actor's ref (retrying a
        request never makes a second actor).

        Raises:
            ActorTypeError: ``actor_id`` belongs to an actor of another type.
            TypeError: ``args`` do not fit ``cls.run``.
            EncodeError: an argument cannot be stored.
        """
        self._require_running()
        self.register(cls)
        ref = ActorRef._create(self, cls, actor_id)
        existing = self._runners.get(actor_id)
        if existing is not None:
            self._check_type(actor_id, cls, existing.type_name)
            return ref
        inspect.signature(cls.run).bind(None, None, *args)  # TypeError at the call
        encoded = self.codec.encode(list(args))
        try:
            await self._create(cls, actor_id, encoded)
        except ConcurrencyError:
            self._check_type(actor_id, cls, await self._stored_type(actor_id))
            await self._activate(actor_id)
        return ref

    def get(self, cls: type[_A], actor_id: str) -> ActorRef[_A]:
        """Name actor ``actor_id`` of type ``cls`` without any I/O.

        A message sent through the ref activates the actor, creating it with its
        default state the first time if it has no ``run`` (a virtual actor).
        """
        self.register(cls)
        return ActorRef._create(self, cls, actor_id)

    async def dead_letters(self) -> list[DeadLetter]:
        """Return the messages no actor could take, oldest first, with the reason."""
        letters: list[DeadLetter] = []
        for message in await self.journal.pending(DEAD_LETTERS):
            record = self.codec.decode(message.data)
            assert isinstance(record, DeadLetterRecord)
            mail = self.codec.decode(record.mail)
            assert isinstance(mail, Mail)
            try:
                body: object = self.codec.decode(mail.body)
            except CodecError as error:
                body = error
            letters.append(
                DeadLetter(
                    actor_id=record.target,
                    key=record.key.removeprefix("ext:"),
                    message=body,
                    reason=record.reason,
                )
            )
        return letters

    def _require_running(self) -> None:
        if not self._running:
            msg = "the ActorSystem is not running: use it inside `async with system`"
            raise ActorError(msg)


class _SystemCodec(Codec):
    """The system's codec, which also learns the actor types workflow code names.

    ``ctx.get(T, id)`` and ``ctx.spawn(T, ...)`` register ``T`` (and the types in its
    signatures) here, as ``system.get`` and ``system.spawn`` do, so a child or a
    message can be created and encoded without listing every type up front.
    """

    def __init__(self, system: ActorSystem, converter: Any, payload_codec: PayloadCodec | None):
        super().__init__(converter, payload_codec=payload_codec)
        self._system = system

    def learn(self, cls: type[Actor]) -> None:
        """Register actor type ``cls`` with the system."""
        self._system.register(cls)


class SystemOptions(TypedDict, total=False):
    """The constructor's options that ``ActorSystem.open`` passes on."""

    clock: Clock
    codec: PayloadCodec
    converter: Any
    grace: float
    snapshot_every: int
    max_active: int
    idle_timeout: float
    supervision: Supervision


class _Opening:
    """``ActorSystem.open(...)``: an async context manager over the SQLite default."""

    def __init__(
        self,
        cls: type[ActorSystem],
        url: str,
        actors: Iterable[type[Actor]],
        synchronous: str,
        options: SystemOptions,
    ) -> None:
        self._args = (cls, url, actors, synchronous, options)
        self._system: ActorSystem | None = None

    async def __aenter__(self) -> ActorSystem:
        from journal.sqlite import SQLiteJournal  # noqa: PLC0415 - only the default needs it
        from snapshots.sqlite import SQLiteSnapshotStore  # noqa: PLC0415

        cls, url, actors, synchronous, options = self._args
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
        if "://" in path:
            msg = f"unsupported store URL {url!r}: give a file path or sqlite:///path"
            raise ValueError(msg)
        journal = await SQLiteJournal.open(path, synchronous=synchronous)  # type: ignore[arg-type]
        try:
            snaps = await SQLiteSnapshotStore.open(path, synchronous=synchronous)  # type: ignore[arg-type]
        except BaseException:
            await journal.close()
            raise
        self._system = cls(
            journal=journal, snapshots=snaps, actors=actors, close_stores=True, **options
        )
        return await self._system.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._system is not None:
            await self._system.__aexit__(exc_type, exc, tb)
