"""``ActorSystem``: the host that owns stores, codec, clock and every live actor.

Theory of operation. Entering the system opens its task group and recovers every
actor whose stream says it is running: the history (after the newest snapshot, if
any) is replayed through a fresh engine, then the runner starts what the engine
still waits for. ``spawn`` commits an actor's first activation with expected seq 0,
which is what makes it idempotent: a second spawn of the same id finds the stream.
Leaving the system stops its actors; they resume on the next entry.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, get_type_hints

import attrs

from journal import ConcurrencyError, Journal
from journal.codec import Codec, PayloadCodec
from snapshots import SnapshotStore

from ._actor import Actor, is_query, is_signal
from ._clock import Clock, SystemClock
from ._events import ALL_EVENTS, FORMAT, INPUTS, ContinuedAsNew, HistoryEvent, Started
from ._exceptions import (
    ActorError,
    ActorNotFoundError,
    ActorTypeError,
    NondeterminismError,
)
from ._ref import ActorRef
from ._replay import Engine, split_activations
from ._runner import Runner
from ._status import Status
from ._tasks import TaskSet

logger = logging.getLogger("actors")
logger.addHandler(logging.NullHandler())

_A = TypeVar("_A", bound=Actor)


@attrs.frozen(kw_only=True)
class StreamMeta:
    """What an actor's stream says about it besides its events."""

    type: str
    """The actor type's registered name."""
    format: int = FORMAT
    """The history format that wrote the stream."""


@attrs.frozen(kw_only=True)
class RunSnapshot:
    """An actor's state at the start of a run (after continue-as-new)."""

    run: int
    next_cmd: int
    time: float
    state: bytes


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
        """
        self.journal = journal
        self.snapshots = snapshots
        self.clock: Clock = clock or SystemClock()
        self.codec = Codec(converter, payload_codec=codec)
        for event_type in ALL_EVENTS:
            self.codec.register(event_type, name=f"perdure.{event_type.__name__}")
        self.codec.register(StreamMeta, name="perdure.StreamMeta")
        self.codec.register(RunSnapshot, name="perdure.RunSnapshot")
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
        self._close_stores = close_stores
        for cls in actors:
            self.register(cls)
        self.clock.attach(lambda: self.busy == 0)

    @classmethod
    def open(
        cls,
        url: str | os.PathLike[str],
        *,
        actors: Iterable[type[Actor]] = (),
        clock: Clock | None = None,
        codec: PayloadCodec | None = None,
        synchronous: str = "FULL",
    ) -> _Opening:
        """Open the system on a SQLite file: a path or a ``sqlite:///path`` URL.

        The journal and the snapshots share the file. Use as
        ``async with ActorSystem.open("app.db") as system: ...``.
        """
        return _Opening(cls, os.fspath(url), actors, clock, codec, synchronous)

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
        for member in vars(cls).values():
            if member is getattr(cls, "run", None) or is_signal(member) or is_query(member):
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
        if self._close_stores:
            await self.journal.close()
            await self.snapshots.close()

    def _spawn_work(self, runner: Runner, cmd: int, work: Coroutine[Any, Any, None]) -> None:
        runner.track(cmd, self._work.start(work))

    def _start(self, runner: Runner) -> None:
        self._runners[runner.actor_id] = runner
        self._drivers.start(self._drive(runner))

    async def _drive(self, runner: Runner) -> None:
        try:
            await runner.run()
        finally:
            if self._runners.get(runner.actor_id) is runner and runner.done.done():
                del self._runners[runner.actor_id]

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
        if not self._running:
            msg = "the ActorSystem is not running: spawn inside `async with system`"
            raise ActorError(msg)
        self.register(cls)
        ref = ActorRef._create(self, cls, actor_id)
        existing = self._runners.get(actor_id)
        if existing is not None:
            self._check_type(actor_id, cls, existing.type_name)
            return ref
        inspect.signature(cls.run).bind(None, None, *args)  # TypeError at the call
        encoded = self.codec.encode(list(args))
        engine = Engine(actor_id=actor_id, actor=cls(), codec=self.codec, now=self.clock.now())
        runner = Runner(self, actor_id, cls.__actor_name__, engine, seq=0)
        runner.metadata = self.codec.encode(StreamMeta(type=cls.__actor_name__))
        started = Started(time=self.clock.now(), args=encoded)
        self._runners[actor_id] = runner
        try:
            await runner._handle(started)
        except ConcurrencyError:
            del self._runners[actor_id]
            info = await self.journal.info(actor_id)
            assert info is not None
            self._check_type(actor_id, cls, self._meta(info.metadata).type)
            if Status(info.status) is Status.RUNNING and actor_id not in self._runners:
                await self._recover(actor_id, cls)
            return ref
        except BaseException:
            self._runners.pop(actor_id, None)
            raise
        if runner.done.done():
            del self._runners[actor_id]
        else:
            self._start(runner)
        return ref

    def get(self, cls: type[_A], actor_id: str) -> ActorRef[_A]:
        """Name actor ``actor_id`` of type ``cls`` without any I/O."""
        self.register(cls)
        return ActorRef._create(self, cls, actor_id)

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
                await self._recover(info.stream, cls)
            if len(page) < 500:
                return
            after = page[-1].stream

    async def _recover(
        self,
        actor_id: str,
        cls: type[Actor],
        queued: Sequence[tuple[Any, asyncio.Future[None] | None]] = (),
    ) -> Runner | None:
        """Rebuild ``actor_id`` from its journal and start it; ``queued`` inputs go first."""
        try:
            engine, seq = await self._rebuild(actor_id, cls)
        except NondeterminismError as error:
            self._suspended[actor_id] = error
            logger.error("%s", error)  # noqa: TRY400 - the message is the whole story
            return None
        runner = Runner(self, actor_id, cls.__actor_name__, engine, seq)
        if engine.outcome is not None and not isinstance(engine.outcome, ContinuedAsNew):
            return None  # the history ended it; only the status was not yet written
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

    async def _rebuild(self, actor_id: str, cls: type[Actor]) -> tuple[Engine, int]:
        engine = Engine(actor_id=actor_id, actor=cls(), codec=self.codec)
        after = 0
        snapshot = await self.snapshots.latest(actor_id)
        if snapshot is not None:
            try:
                saved = self.codec.decode(snapshot.data)
                assert isinstance(saved, RunSnapshot)
                engine = self._engine_from(actor_id, saved)
                after = snapshot.seq
            except Exception as error:  # noqa: BLE001 - fall back to full replay
                logger.warning(
                    "actor %r: snapshot at seq %d no longer decodes (%s); replaying its "
                    "whole history instead",
                    actor_id,
                    snapshot.seq,
                    error,
                )
                engine = Engine(actor_id=actor_id, actor=cls(), codec=self.codec)
                after = 0
        seq = after
        history: list[tuple[int, HistoryEvent]] = []
        while True:
            batch = await self.journal.read(actor_id, after_seq=seq, limit=10_000)
            for stored in batch:
                history.append((stored.seq, self.codec.decode(stored.data)))  # type: ignore[arg-type]
            if not batch:
                break
            seq = batch[-1].seq
        for at, event, commands in split_activations(history):
            if isinstance(engine.outcome, ContinuedAsNew):
                engine = self._successor(engine, engine.outcome)
            if isinstance(event, INPUTS):
                engine.activate(event, seq=at, recorded=commands)
            else:
                engine.note(event)  # type: ignore[arg-type]
        return engine, seq

    def _engine_from(self, actor_id: str, saved: RunSnapshot) -> Engine:
        actor = self.codec.decode(saved.state)
        assert isinstance(actor, Actor)
        return Engine(
            actor_id=actor_id,
            actor=actor,
            codec=self.codec,
            run=saved.run,
            next_cmd=saved.next_cmd,
            now=saved.time,
        )

    def _successor(self, engine: Engine, outcome: ContinuedAsNew) -> Engine:
        saved = RunSnapshot(
            run=engine.run + 1, next_cmd=engine.next_cmd, time=engine.now, state=outcome.state
        )
        return self._engine_from(engine.actor_id, saved)

    async def _save_snapshot(self, runner: Runner, outcome: ContinuedAsNew) -> None:
        engine = runner.engine
        saved = RunSnapshot(
            run=engine.run + 1, next_cmd=engine.next_cmd, time=engine.now, state=outcome.state
        )
        await self.snapshots.save(runner.actor_id, runner.seq, self.codec.encode(saved))

    async def _restart(
        self,
        runner: Runner,
        error: BaseException,
        queued: list[tuple[Any, asyncio.Future[None] | None]],
    ) -> None:
        """Rebuild an actor whose driver failed (a journal write error, a bug here).

        Its in-memory state may be ahead of the journal, so it is rebuilt from the
        journal: work whose outcome was not committed runs again; inputs still queued
        move to the rebuilt runner.
        """
        cls = self._types[runner.type_name]
        if self._runners.get(runner.actor_id) is runner:
            del self._runners[runner.actor_id]
        runner._stop_work()
        logger.warning("restarting actor %r from its journal after %r", runner.actor_id, error)
        await asyncio.sleep(0.1)  # a failing disk should not spin the loop
        replacement = await self._recover(runner.actor_id, cls, queued)
        if replacement is None:
            runner._fail(queued)
            return
        replacement.done.add_done_callback(lambda f: _chain(f, runner.done))

    async def _runner_for(self, actor_id: str) -> Runner | None:
        return self._runners.get(actor_id)


def _chain(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    if not target.done():
        target.set_result(source.result())


class _Opening:
    """``ActorSystem.open(...)``: an async context manager over the SQLite default."""

    def __init__(  # noqa: PLR0917 - private: built by ActorSystem.open only
        self,
        cls: type[ActorSystem],
        url: str,
        actors: Iterable[type[Actor]],
        clock: Clock | None,
        codec: PayloadCodec | None,
        synchronous: str,
    ) -> None:
        self._args = (cls, url, actors, clock, codec, synchronous)
        self._system: ActorSystem | None = None

    async def __aenter__(self) -> ActorSystem:
        from journal.sqlite import SQLiteJournal  # noqa: PLC0415 - only the default needs it
        from snapshots.sqlite import SQLiteSnapshotStore  # noqa: PLC0415

        cls, url, actors, clock, codec, synchronous = self._args
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
            journal=journal,
            snapshots=snaps,
            actors=actors,
            clock=clock,
            codec=codec,
            close_stores=True,
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
