"""The live actors of a system: creating, activating, recovering, restarting them.

Theory of operation. An actor is *live* when a ``Runner`` drives it. It becomes live
by being spawned (its first activation is committed with expected seq 0), by being
recovered at the system's start (its stream says it has work in flight, or its inbox
holds messages), or by being activated on demand: a message, signal, query or due
timer for an actor that is not in memory rebuilds it from its newest snapshot and its
journal, and a message-driven actor that never existed is created with its default
state. While an actor is being built, messages delivered to it wait behind the inbox
it is built from, so its mailbox keeps commit order. A runner whose driver fails is
rebuilt from the journal, since its memory may be ahead of what was committed.

``Hosting`` holds these operations for ``ActorSystem``, which owns the state they use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from journal import ConcurrencyError, Journal, Message
from journal.codec import Codec
from snapshots import SnapshotStore

from ._actor import Actor
from ._clock import Clock
from ._endings import bury_mail, discard
from ._events import Mail, Started
from ._exceptions import ActorError, ActorNotFoundError, ActorTypeError, NondeterminismError
from ._mail import DEAD_LETTERS, SPAWN_KEY
from ._recovery import (
    RunSnapshot,
    StreamMeta,
    quiescent_snapshot,
    rebuild,
)
from ._replay import Engine
from ._runner import Crashed, Runner
from ._status import Status
from ._supervision import Crash

if TYPE_CHECKING:
    from ._keeper import Keeper
    from ._supervisor import Supervisor
    from ._system import ActorSystem
    from ._tasks import TaskSet

logger = logging.getLogger("actors")


class Hosting:
    """Creating, activating, recovering and restarting the live actors of a system."""

    journal: Journal
    snapshots: SnapshotStore
    codec: Codec
    clock: Clock
    busy: int
    _types: dict[str, type[Actor]]
    _runners: dict[str, Runner]
    _suspended: dict[str, NondeterminismError]
    _unknown: dict[str, str]
    _activating: dict[str, asyncio.Future[Runner | None]]
    _early_mail: dict[str, list[Message]]
    _drivers: TaskSet
    _keeper: Keeper
    _supervisor: Supervisor
    _running: bool

    @property
    def _system(self) -> ActorSystem:
        return cast("ActorSystem", self)  # Hosting is only ever ActorSystem's base

    def _start(self, runner: Runner) -> None:
        """Drive ``runner`` and open its mailbox to direct delivery.

        Whatever was delivered while it was being built goes in after the inbox it was
        built with, so the mailbox keeps commit order.
        """
        self._runners[runner.actor_id] = runner
        runner.add_mail(self._early_mail.pop(runner.actor_id, []))
        runner.gated = False
        runner.driver = self._drivers.start(self._drive(runner))
        self._keeper.activated()

    def _launch(self, runner: Runner, queued: Sequence[tuple[Any, Any]] = ()) -> None:
        """Start a rebuilt runner: ``queued`` inputs first, then the work it waits for."""
        self._start(runner)
        for item, ack in queued:
            runner.submit(item, ack)
        runner.resume()

    async def _drive(self, runner: Runner) -> None:
        try:
            await runner.run()
        finally:
            if self._runners.get(runner.actor_id) is runner and runner.done.done():
                del self._runners[runner.actor_id]

    async def _create(
        self,
        cls: type[Actor],
        actor_id: str,
        args: bytes,
        *,
        consume: str | None = None,
        meta: StreamMeta | None = None,
        mail: Sequence[Message] = (),
    ) -> Runner:
        """Commit a new actor's first activation and start it; ``mail`` waits for it.

        Raises:
            ConcurrencyError: the actor exists already.
        """
        engine = Engine(actor_id=actor_id, actor=cls(), codec=self.codec, now=self.clock.now())
        runner = Runner(self._system, actor_id, cls.__actor_name__, engine, seq=0)
        meta = meta or StreamMeta(type=cls.__actor_name__)
        runner.metadata = self.codec.encode(meta)
        runner.meta = meta
        runner.first_consume = consume
        runner.add_mail(list(mail))
        self._runners[actor_id] = runner
        self.busy += 1
        try:
            await runner._handle(Started(time=self.clock.now(), args=args))
        except Crashed as crashed:  # committed: the actor exists, and its supervisor acts
            self._supervisor.crashed(runner, crashed.crash, [])
            return runner
        except BaseException:
            if self._runners.get(actor_id) is runner:
                del self._runners[actor_id]
            raise
        finally:
            self.busy -= 1
        early = self._early_mail.get(actor_id)
        if early and consume is not None:  # the spawn request is taken: not mail any more
            early[:] = [m for m in early if m.key != consume]
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

    def deliver(
        self, actor_id: str, messages: list[Message], mails: Sequence[Mail] | None = None
    ) -> None:
        """Hand messages just committed to ``actor_id``'s inbox to the actor, waking it.

        ``mails``, if given, are the messages' data decoded: a live actor need not
        decode what its sender just encoded.
        """
        if actor_id == DEAD_LETTERS:
            return
        runner = self._runners.get(actor_id)
        if runner is not None and not runner.gated:
            runner.add_mail(messages, mails)
            return
        # Not live yet: keep the messages, in commit order, for when its mailbox opens.
        self._early_mail.setdefault(actor_id, []).extend(messages)
        if runner is None and actor_id not in self._activating:
            self._activate_later(actor_id)

    def _activate_later(self, actor_id: str) -> None:
        if self._running:
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
            with self._waiting():  # a restart's backoff may be on the clock
                return await asyncio.shield(loading)
        runner = await self._load_held(actor_id)
        if runner is None and (episode := self._activating.get(actor_id)) is not None:
            with self._waiting():  # it crashed as it was rebuilt: a restart
                return await asyncio.shield(episode)
        return runner

    async def _load_held(self, actor_id: str) -> Runner | None:
        """Load ``actor_id`` (not live, not held), holding it meanwhile.

        Returns None if it cannot run now: it has ended, cannot be created, or crashed
        as it was rebuilt (then a supervision episode holds it).
        """
        loading = self._hold(actor_id)
        runner = None
        try:
            runner = await self._load(actor_id)
        except Exception:
            logger.exception("actor %r could not be activated", actor_id)
        finally:
            self._release(actor_id, loading, runner)
        return runner

    def _waiting(self) -> contextlib.AbstractContextManager[None]:
        """Mark a caller waiting on actors: a virtual clock may skip ahead meanwhile."""
        waiting = getattr(self.clock, "waiting_for_result", None)
        return contextlib.nullcontext() if waiting is None else waiting()

    def _hold(self, actor_id: str) -> asyncio.Future[Runner | None]:
        """Hold ``actor_id``: activations wait on the returned future until released."""
        gate = self._activating[actor_id] = asyncio.get_running_loop().create_future()
        return gate

    def _release(
        self, actor_id: str, gate: asyncio.Future[Runner | None], runner: Runner | None
    ) -> None:
        """Let activations of ``actor_id`` go on; they get ``runner`` (None: not live)."""
        if self._activating.get(actor_id) is gate:
            del self._activating[actor_id]
        episode = self._activating.get(actor_id)
        if runner is None and episode is None and self._early_mail.pop(actor_id, []):
            # Mail came while it was held (it stays in the inbox): whatever it is now
            # (ended, or startable again), an activation deals with it.
            self._activate_later(actor_id)
        if gate.done():
            return
        if runner is None and episode is not None:  # waiters follow the episode
            episode.add_done_callback(
                lambda done: None if gate.done() else gate.set_result(done.result())
            )
        else:
            gate.set_result(runner)

    async def _load(self, actor_id: str) -> Runner | None:
        info = await self.journal.info(actor_id)
        pending = list(await self.journal.pending(actor_id))
        if info is None or info.metadata is None:
            return await self._load_new(actor_id, pending)
        meta = self._meta(info.metadata)
        cls = self._registered(actor_id, meta)
        if cls is None:
            return None
        return await self._recover(actor_id, cls, meta, mail=pending)

    def _registered(self, actor_id: str, meta: StreamMeta) -> type[Actor] | None:
        """The registered class of a stored actor; None (said in the log) if none is."""
        cls = self._types.get(meta.type)
        if cls is None:
            self._unknown[actor_id] = meta.type
            logger.error(
                "actor %r has type %r, which is not registered with this system; it stays "
                "as it is until the type is registered (pass it in actors=[...]); the other "
                "actors go on",
                actor_id,
                meta.type,
            )
        return cls

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
                meta=StreamMeta(
                    type=cls.__actor_name__,
                    parent=spawn.parent,
                    supervision=spawn.supervision,
                    spawned_at=spawn.spawned_at,
                    args=spawn.body,
                )
                if isinstance(spawn, Mail)
                else None,
                mail=[m for m in pending if m.key != SPAWN_KEY],
            )
        except ConcurrencyError:
            return await self._load(actor_id)
        return runner

    async def _bury(self, actor_id: str, pending: list[Message], reason: str) -> None:
        """Dead-letter every pending message of an actor that cannot be created."""
        engine = Engine(actor_id=actor_id, actor=Actor(), codec=self.codec)
        runner = Runner(self._system, actor_id, "", engine, seq=0)
        runner.add_mail(pending)
        for message in pending:
            await discard(runner, message.key, reason)

    # Recovery ---------------------------------------------------------------------

    async def _recover_all(self) -> None:
        after: str | None = None
        while True:
            page = await self.journal.streams(status=Status.RUNNING.value, after=after, limit=500)
            for info in page:
                meta = self._meta(info.metadata)
                cls = self._registered(info.stream, meta)
                if cls is None:
                    continue
                pending = await self.journal.pending(info.stream)
                await self._recover(info.stream, cls, meta, mail=pending)
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
        meta: StreamMeta,
        queued: Sequence[tuple[Any, asyncio.Future[None] | None]] = (),
        mail: Sequence[Message] = (),
        *,
        supervise: bool = True,
    ) -> Runner | None:
        """Rebuild ``actor_id`` from its journal and start it.

        ``queued`` inputs go first; ``mail`` (its pending inbox) goes to its mailbox,
        or to dead letters if the history says the actor has ended. If its code
        crashes again as it replays, a supervision episode starts (``supervise``) or
        the runner is returned unstarted, for the episode that rebuilt it.
        """
        try:
            rebuilt = await rebuild(actor_id, cls, self.journal, self.snapshots, self.codec)
        except NondeterminismError as error:
            self._suspended[actor_id] = error
            logger.error("%s", error)  # noqa: TRY400 - the message is the whole story
            return None
        engine = rebuilt.engine
        runner = Runner(self._system, actor_id, cls.__actor_name__, engine, rebuilt.seq)
        runner.snapshot_seq = rebuilt.snapshot_seq
        runner.retry.extend(rebuilt.retry)
        runner.meta = meta
        runner.add_mail(list(mail))
        # Crashed as it replayed: its supervisor acts, unless its parent ended meanwhile
        # (then it ends too, below).
        if engine.crash is not None and not await runner.take_stop():
            if not supervise:
                return runner
            self._supervisor.crashed(runner, engine.crash, list(queued))
            return None
        again = runner.successor() if engine.ended else None
        if engine.ended and again is None:
            runner._fail(list(queued))
            await bury_mail(runner)
            return None
        if again is not None:  # the next run never started
            runner.submit(await runner.next_run(again))
        self._launch(runner, queued)
        return runner

    async def _save_snapshot(self, runner: Runner, saved: RunSnapshot) -> None:
        """Store ``saved`` as ``runner``'s snapshot at its current seq."""
        await self.snapshots.save(runner.actor_id, runner.seq, self.codec.encode(saved))
        runner.snapshot_seq = runner.seq

    async def _snapshot(self, runner: Runner) -> None:
        """Snapshot a quiescent actor at its current seq."""
        await self._save_snapshot(runner, quiescent_snapshot(runner.engine, self.codec))

    # Supervision ---------------------------------------------------------------------

    async def _rebuild(
        self,
        runner: Runner,
        queued: Sequence[tuple[Any, asyncio.Future[None] | None]],
        *,
        supervise: bool = False,
    ) -> Runner | None:
        """Rebuild a stopped runner's actor from its journal (a restart)."""
        cls = self._types[runner.type_name]
        pending = await self.journal.pending(runner.actor_id)
        return await self._recover(
            runner.actor_id, cls, runner.meta, queued, mail=pending, supervise=supervise
        )

    async def _halt(
        self, runner: Runner
    ) -> tuple[list[tuple[Any, asyncio.Future[None] | None]], asyncio.Future[Runner | None]] | None:
        """Stop a live runner in memory and hold its actor (for a restart).

        Returns:
            Its queued inputs and the hold to release, or None if it was not live.
        """
        if self._runners.get(runner.actor_id) is not runner or runner.done.done():
            return None
        del self._runners[runner.actor_id]
        gate = self._hold(runner.actor_id)
        runner.stop()
        if runner.driver is not None and runner.driver is not asyncio.current_task():
            await asyncio.wait({runner.driver})
        return runner._take_queue(), gate

    async def _escalate(self, parent_id: str, crash: Crash) -> bool:
        """Crash ``parent_id`` because a child of its exhausted its restarts.

        Returns:
            False if the parent is not there to take it (it has ended).
        """
        self.busy -= 1  # waiting on the parent's own episode is not work of ours
        try:
            parent = await self._activate(parent_id)
        finally:
            self.busy += 1
        if parent is None:
            return False
        halted = await self._halt(parent)
        if halted is None:
            return False
        queued, gate = halted
        self._supervisor.crashed(parent, crash, queued, gate)
        return True
