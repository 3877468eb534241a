"""``ActorSystem``: the host that owns stores, codec, clock and every live actor.

Theory of operation. Entering the system recovers every actor whose stream says it
has work in flight, every actor with messages waiting in its inbox, and learns when
passivated actors' timers are due: the history (after the newest snapshot, if any)
is replayed through a fresh engine, then the runner starts what the engine still waits
for. ``spawn`` commits an actor's first activation with expected seq 0, which is what
makes it idempotent: a second spawn of the same id finds the stream. A message to an
actor that is not in memory activates it (``deliver``), creating a message-driven
actor with its default state the first time. Leaving the system stops its actors;
they resume on the next entry.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, Self, TypedDict, TypeVar, Unpack, get_type_hints

import attrs

from journal import CodecError, ConcurrencyError, Journal, Message
from journal.codec import Codec, PayloadCodec
from snapshots import SnapshotStore

from ._actor import Actor, handlers_of, is_query, is_signal
from ._clock import Clock, SystemClock
from ._events import ALL_EVENTS, ContinuedAsNew, Mail, Replied, Started
from ._exceptions import (
    ActorError,
    ActorNotFoundError,
    ActorTypeError,
    NondeterminismError,
)
from ._keeper import Keeper
from ._mail import DEAD_LETTERS, SPAWN_KEY, DeadLetterRecord
from ._recovery import (
    RunSnapshot,
    StreamMeta,
    engine_from,
    quiescent_snapshot,
    rebuild,
    successor_snapshot,
)
from ._ref import ActorRef, DeadLetter
from ._replay import Engine
from ._runner import Runner
from ._status import Status
from ._tasks import TaskSet

logger = logging.getLogger("actors")
logger.addHandler(logging.NullHandler())

_A = TypeVar("_A", bound=Actor)


class ActorSystem:
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
        """
        if snapshot_every < 1 or max_active < 1 or idle_timeout <= 0 or grace < 0:
            msg = "snapshot_every and max_active must be >= 1, idle_timeout > 0, grace >= 0"
            raise ValueError(msg)
        self.journal = journal
        self.snapshots = snapshots
        self.clock: Clock = clock or SystemClock()
        self.codec = Codec(converter, payload_codec=codec)
        for event_type in ALL_EVENTS:
            self.codec.register(event_type, name=f"perdure.{event_type.__name__}")
        self.codec.register(StreamMeta, name="perdure.StreamMeta")
        self.codec.register(RunSnapshot, name="perdure.RunSnapshot")
        self.codec.register(Mail, name="perdure.Mail")
        self.codec.register(DeadLetterRecord, name="perdure.DeadLetter")
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

    def _start(self, runner: Runner) -> None:
        """Drive ``runner`` and open its mailbox to direct delivery.

        Whatever was delivered while it was being built goes in after the inbox it was
        built with, so the mailbox keeps commit order.
        """
        self._runners[runner.actor_id] = runner
        runner.add_mail(self._early_mail.pop(runner.actor_id, []))
        runner.gated = False
        self._drivers.start(self._drive(runner))
        self._keeper.activated()

    async def _drive(self, runner: Runner) -> None:
        try:
            await runner.run()
        finally:
            if self._runners.get(runner.actor_id) is runner and runner.done.done():
                del self._runners[runner.actor_id]

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

    async def _create(
        self,
        cls: type[Actor],
        actor_id: str,
        args: bytes,
        *,
        consume: str | None = None,
        parent: str | None = None,
        mail: Sequence[Message] = (),
    ) -> Runner:
        """Commit a new actor's first activation and start it; ``mail`` waits for it.

        Raises:
            ConcurrencyError: the actor exists already.
        """
        engine = Engine(actor_id=actor_id, actor=cls(), codec=self.codec, now=self.clock.now())
        runner = Runner(self, actor_id, cls.__actor_name__, engine, seq=0)
        runner.metadata = self.codec.encode(StreamMeta(type=cls.__actor_name__, parent=parent))
        runner.first_consume = consume
        runner.add_mail(list(mail))
        self._runners[actor_id] = runner
        self.busy += 1
        try:
            await runner._handle(Started(time=self.clock.now(), args=args))
        except BaseException:
            if self._runners.get(actor_id) is runner:
                del self._runners[actor_id]
            raise
        finally:
            self.busy -= 1
        if runner.done.done():
            self._runners.pop(actor_id, None)
            self._early_mail.pop(actor_id, None)
        else:
            self._start(runner)
        return runner

    async def _stored_type(self, actor_id: str) -> str:
        """Return the registered type name stored for ``actor_id``.

        Raises:
            ActorNotFoundError: no actor has this id.
        """
        info = await self.journal.info(actor_id)
        if info is None or info.metadata is None:
            raise ActorNotFoundError(actor_id)
        return self._meta(info.metadata).type

    def _check_type(self, actor_id: str, cls: type[Actor], stored: str) -> None:
        if stored != cls.__actor_name__:
            raise ActorTypeError(actor_id, cls.__actor_name__, stored)

    def _meta(self, metadata: bytes | None) -> StreamMeta:
        meta = None if metadata is None else self.codec.decode(metadata)
        if not isinstance(meta, StreamMeta):
            msg = "stream metadata is not an actor's: was the stream written by perdure?"
            raise ActorError(msg)
        return meta

    # Delivery and activation -------------------------------------------------------

    def deliver(self, actor_id: str, messages: list[Message]) -> None:
        """Hand messages just committed to ``actor_id``'s inbox to the actor, waking it."""
        if actor_id == DEAD_LETTERS:
            return
        runner = self._runners.get(actor_id)
        if runner is not None and not runner.gated:
            runner.add_mail(messages)
            return
        # Not live yet: keep the messages, in commit order, for when its mailbox opens.
        self._early_mail.setdefault(actor_id, []).extend(messages)
        if runner is None and actor_id not in self._activating and self._running:
            self.busy += 1
            self._drivers.start(self._activate_in_background(actor_id))

    async def _activate_in_background(self, actor_id: str) -> None:
        try:
            await self._activate(actor_id)
        finally:
            self.busy -= 1

    async def _activate(self, actor_id: str) -> Runner | None:
        """Return ``actor_id``'s live runner, loading (or creating) it if need be."""
        runner = self._runners.get(actor_id)
        if runner is not None:
            return runner
        loading = self._activating.get(actor_id)
        if loading is not None:
            return await asyncio.shield(loading)
        loading = self._activating[actor_id] = asyncio.get_running_loop().create_future()
        try:
            runner = await self._load(actor_id)
        except Exception:
            logger.exception("actor %r could not be activated", actor_id)
            runner = None
        finally:
            del self._activating[actor_id]
        if runner is None:
            self._early_mail.pop(actor_id, None)  # it stays in the inbox, nothing is lost
        loading.set_result(runner)
        return runner

    async def _load(self, actor_id: str) -> Runner | None:
        info = await self.journal.info(actor_id)
        pending = list(await self.journal.pending(actor_id))
        if info is None or info.metadata is None:
            return await self._load_new(actor_id, pending)
        meta = self._meta(info.metadata)
        cls = self._types.get(meta.type)
        if cls is None:
            self._unknown[actor_id] = meta.type
            logger.error("actor %r has type %r, which is not registered", actor_id, meta.type)
            return None
        return await self._recover(actor_id, cls, mail=pending)

    async def _load_new(self, actor_id: str, pending: list[Message]) -> Runner | None:
        """Create an actor that messages (or a spawn request) wait for."""
        if not pending:
            return None
        mails = {m.key: self.codec.decode(m.data) for m in pending}
        spawn = mails.get(SPAWN_KEY)
        first = spawn or mails[pending[0].key]
        assert isinstance(first, Mail)
        cls = self._types.get(first.target_type)
        reason = None
        if cls is None:
            reason = f"no actor type {first.target_type!r} is registered"
        elif spawn is None and cls.run is not Actor.run:
            reason = f"actor {actor_id!r} was never spawned"
        if cls is None or reason is not None:
            await self._bury(actor_id, pending, reason or "")
            return None
        try:
            runner = await self._create(
                cls,
                actor_id,
                spawn.body if isinstance(spawn, Mail) else self.codec.encode([]),
                consume=SPAWN_KEY if spawn is not None else None,
                parent=spawn.parent if isinstance(spawn, Mail) else None,
                mail=[m for m in pending if m.key != SPAWN_KEY],
            )
        except ConcurrencyError:
            return await self._load(actor_id)
        return runner

    async def _bury(self, actor_id: str, pending: list[Message], reason: str) -> None:
        """Dead-letter every pending message of an actor that cannot be created."""
        engine = Engine(actor_id=actor_id, actor=Actor(), codec=self.codec)
        runner = Runner(self, actor_id, "", engine, seq=0)
        runner.add_mail(pending)
        for message in pending:
            await runner._discard(message.key, reason)

    # Recovery ---------------------------------------------------------------------

    async def _recover_all(self) -> None:
        after: str | None = None
        while True:
            page = await self.journal.streams(status=Status.RUNNING.value, after=after, limit=500)
            for info in page:
                type_name = self._meta(info.metadata).type
                cls = self._types.get(type_name)
                if cls is None:
                    self._unknown[info.stream] = type_name
                    logger.error(
                        "actor %r has type %r, which is not registered with this system; "
                        "it stays as it is until the type is registered (pass it in "
                        "actors=[...]); the other actors go on",
                        info.stream,
                        type_name,
                    )
                    continue
                await self._recover(info.stream, cls, mail=await self.journal.pending(info.stream))
            if len(page) < 500:
                break
            after = page[-1].stream
        for actor_id in await self.journal.pending_streams():
            if actor_id != DEAD_LETTERS and actor_id not in self._runners:
                await self._activate(actor_id)
        await self._keeper.load_wakeups()

    async def _recover(
        self,
        actor_id: str,
        cls: type[Actor],
        queued: Sequence[tuple[Any, asyncio.Future[None] | None]] = (),
        mail: Sequence[Message] = (),
    ) -> Runner | None:
        """Rebuild ``actor_id`` from its journal and start it.

        ``queued`` inputs go first; ``mail`` (its pending inbox) goes to its mailbox,
        or to dead letters if the history says the actor has ended.
        """
        try:
            engine, seq, snapshot_seq = await rebuild(
                actor_id, cls, self.journal, self.snapshots, self.codec
            )
        except NondeterminismError as error:
            self._suspended[actor_id] = error
            logger.error("%s", error)  # noqa: TRY400 - the message is the whole story
            return None
        runner = Runner(self, actor_id, cls.__actor_name__, engine, seq)
        runner.snapshot_seq = snapshot_seq
        runner.add_mail(list(mail))
        if engine.outcome is not None and not isinstance(engine.outcome, ContinuedAsNew):
            await runner._bury_mail()
            return None
        if isinstance(engine.outcome, ContinuedAsNew):
            outcome = engine.outcome
            await self._save_snapshot(runner, outcome)
            runner.engine = self._successor(engine, outcome)
            runner.submit(Started(time=self.clock.now(), args=outcome.args, run=runner.engine.run))
        self._start(runner)
        for item, ack in queued:
            runner.submit(item, ack)
        runner.resume()
        return runner

    def _successor(self, engine: Engine, outcome: ContinuedAsNew) -> Engine:
        return engine_from(engine.actor_id, successor_snapshot(engine, outcome), self.codec)

    async def _save_snapshot(self, runner: Runner, outcome: ContinuedAsNew) -> None:
        saved = successor_snapshot(runner.engine, outcome)
        await self.snapshots.save(runner.actor_id, runner.seq, self.codec.encode(saved))
        runner.snapshot_seq = runner.seq

    async def _snapshot(self, runner: Runner) -> None:
        """Snapshot a quiescent actor at its current seq."""
        saved = quiescent_snapshot(runner.engine, self.codec)
        await self.snapshots.save(runner.actor_id, runner.seq, self.codec.encode(saved))
        runner.snapshot_seq = runner.seq

    async def _restart(
        self,
        runner: Runner,
        error: BaseException,
        queued: list[tuple[Any, asyncio.Future[None] | None]],
    ) -> None:
        """Rebuild an actor whose driver failed (a journal write error, a bug here).

        Its in-memory state may be ahead of the journal, so it is rebuilt from the
        journal: work whose outcome was not committed runs again; inputs still queued
        move to the rebuilt runner, and so does its mailbox.
        """
        cls = self._types[runner.type_name]
        if self._runners.get(runner.actor_id) is runner:
            del self._runners[runner.actor_id]
        runner._stop_work()
        logger.warning("restarting actor %r from its journal after %r", runner.actor_id, error)
        await asyncio.sleep(0.1)  # a failing disk should not spin the loop
        pending = await self.journal.pending(runner.actor_id)
        replacement = await self._recover(runner.actor_id, cls, queued, mail=pending)
        if replacement is None:
            runner._fail(queued)


class SystemOptions(TypedDict, total=False):
    """The constructor's options that ``ActorSystem.open`` passes on."""

    clock: Clock
    codec: PayloadCodec
    converter: Any
    grace: float
    snapshot_every: int
    max_active: int
    idle_timeout: float


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
