"""Rebuilding an actor's engine from its newest snapshot and the history after it.

A snapshot is only ever taken where the state alone says everything about the future
(a message-driven actor between messages, or the start of a run after
continue-as-new), so "engine from snapshot, then replay the tail" reaches the same
engine as replaying the whole history. A snapshot that no longer decodes into
today's state class is skipped, with a warning, for a full replay.
"""

from __future__ import annotations

import logging

import attrs

from journal import Journal
from journal.codec import Codec
from snapshots import SnapshotStore

from ._actor import Actor
from ._events import (
    FORMAT,
    INPUTS,
    Command,
    ContinuedAsNew,
    HistoryEvent,
    MessageDropped,
    MessageReceived,
    SignalReceived,
    Started,
    TurnAborted,
)
from ._replay import Engine, split_activations
from ._supervision import Supervision

logger = logging.getLogger("actors")

READ_PAGE = 10_000


@attrs.frozen(kw_only=True)
class StreamMeta:
    """What an actor's stream says about it besides its events."""

    type: str
    """The actor type's registered name."""
    format: int = FORMAT
    """The history format that wrote the stream."""
    parent: str | None = None
    """The actor that spawned it, if one did."""
    supervision: Supervision | None = None
    """Its parent's policy for it (None: the default; for top-level actors the root's)."""
    spawned_at: int = 0
    """The parent's command number that spawned it: orders siblings."""
    args: bytes | None = None
    """Its spawn arguments, kept for a ``PERMANENT`` child's next run."""


@attrs.frozen(kw_only=True)
class RunSnapshot:
    """An engine's state at a quiescent point, enough to go on from it."""

    run: int
    next_cmd: int
    time: float
    state: bytes
    started: bool = False
    """True for a message-driven actor between messages; False at the start of a run
    (after continue-as-new), where the history goes on with the run's ``Started``."""
    shape: str = ""
    """The state class's fields when it was taken (see ``shape_of``)."""
    children: tuple[str, ...] = ()
    """The actors the run had spawned, in spawn order."""


def shape_of(cls: type) -> str:
    """Name ``cls``'s state fields and their annotations.

    A snapshot whose shape differs from today's class is not used: a renamed field
    would otherwise decode into its default without a word.
    """
    return ";".join(f"{f.name}:{f.type}" for f in attrs.fields(cls))


def engine_from(actor_id: str, saved: RunSnapshot, codec: Codec) -> Engine:
    """Build the engine that ``saved`` describes."""
    actor = codec.decode(saved.state)
    assert isinstance(actor, Actor)
    return Engine(
        actor_id=actor_id,
        actor=actor,
        codec=codec,
        run=saved.run,
        next_cmd=saved.next_cmd,
        now=saved.time,
        started=saved.started,
        children=list(saved.children),
    )


def successor_snapshot(engine: Engine, outcome: ContinuedAsNew) -> RunSnapshot:
    """The snapshot the next run starts from after ``outcome``."""
    return RunSnapshot(
        run=engine.run + 1,
        next_cmd=engine.next_cmd,
        time=engine.now,
        state=outcome.state,
        shape=shape_of(type(engine.actor)),
        children=tuple(engine.children),
    )


def quiescent_snapshot(engine: Engine, codec: Codec) -> RunSnapshot:
    """The snapshot of a quiescent engine (see ``Engine.quiescent``)."""
    assert engine.quiescent
    return RunSnapshot(
        run=engine.run,
        next_cmd=engine.next_cmd,
        time=engine.now,
        state=codec.encode(engine.actor),
        started=True,
        shape=shape_of(type(engine.actor)),
        children=tuple(engine.children),
    )


Activation = tuple[int, HistoryEvent, list[Command]]


def roll_back_turns(
    activations: list[Activation],
) -> tuple[list[Activation], list[MessageReceived]]:
    """Drop the aborted turns of a message-driven actor's history.

    A turn runs from a ``MessageReceived`` to its ``Replied``; a ``TurnAborted`` note
    for its key rolls it back: every activation from that ``MessageReceived`` on goes,
    except the signals applied meanwhile (and the note itself, which keeps command
    numbers moving on).

    Returns:
        The history to replay, and the messages whose turns were aborted and that are
        neither handled again since nor dropped (to handle again, in abort order).
    """
    kept: list[Activation] = []
    retry: dict[str, MessageReceived] = {}
    for activation in activations:
        event = activation[1]
        if isinstance(event, TurnAborted):
            start = _turn_start(kept, event.key)
            if start is not None:
                received = kept[start][1]
                assert isinstance(received, MessageReceived)
                retry[event.key] = received
                turn = kept[start:]
                del kept[start:]
                kept.extend(a for a in turn if isinstance(a[1], SignalReceived))
        elif isinstance(event, (MessageDropped, MessageReceived)):
            retry.pop(event.key, None)
        kept.append(activation)
    return kept, list(retry.values())


def _turn_start(kept: list[Activation], key: str) -> int | None:
    """The index of the last activation that received message ``key``."""
    for index in range(len(kept) - 1, -1, -1):
        event = kept[index][1]
        if isinstance(event, MessageReceived) and event.key == key:
            return index
    return None


@attrs.frozen
class Rebuilt:
    """An engine rebuilt from the journal, and where its stream stands."""

    engine: Engine
    seq: int
    """The stream's last seq."""
    snapshot_seq: int
    """The seq of the snapshot used (0: none)."""
    retry: list[MessageReceived]
    """Messages whose turns were rolled back, to handle again first."""


async def rebuild(
    actor_id: str, cls: type[Actor], journal: Journal, snapshots: SnapshotStore, codec: Codec
) -> Rebuilt:
    """Replay ``actor_id`` from its newest usable snapshot and its journal.

    Raises:
        NondeterminismError: the code no longer replays the history.
    """
    engine = Engine(actor_id=actor_id, actor=cls(), codec=codec)
    after = 0
    snapshot = await snapshots.latest(actor_id)
    if snapshot is not None:
        try:
            saved = codec.decode(snapshot.data)
            assert isinstance(saved, RunSnapshot)
            if saved.shape != shape_of(cls):
                msg = f"its fields were {saved.shape!r}, today's are {shape_of(cls)!r}"
                raise TypeError(msg)  # noqa: TRY301 - handled right below, like a decode error
            engine = engine_from(actor_id, saved, codec)
            if not isinstance(engine.actor, cls):
                msg = f"it holds a {type(engine.actor).__qualname__}, not a {cls.__qualname__}"
                raise TypeError(msg)  # noqa: TRY301 - handled right below, like a decode error
            after = snapshot.seq
        except Exception as error:  # noqa: BLE001 - fall back to full replay
            logger.warning(
                "actor %r: the snapshot at seq %d no longer fits today's state class (%s); "
                "replaying the whole history instead",
                actor_id,
                snapshot.seq,
                error,
            )
            engine = Engine(actor_id=actor_id, actor=cls(), codec=codec)
    seq = after
    history: list[tuple[int, HistoryEvent]] = []
    while True:
        page = await journal.read(actor_id, after_seq=seq, limit=READ_PAGE)
        for stored in page:
            history.append((stored.seq, codec.decode(stored.data)))  # type: ignore[arg-type]
        if len(page) < READ_PAGE:
            seq = page[-1].seq if page else seq
            break
        seq = page[-1].seq
    activations, retry = roll_back_turns(split_activations(history))
    for at, event, commands in activations:
        if isinstance(engine.outcome, ContinuedAsNew):
            engine = engine_from(actor_id, successor_snapshot(engine, engine.outcome), codec)
        elif isinstance(event, Started) and event.run > engine.run:  # a permanent restart
            engine = Engine(
                actor_id=actor_id,
                actor=cls(),
                codec=codec,
                run=event.run,
                next_cmd=engine.next_cmd,
                now=engine.now,
                children=engine.children,
            )
        if isinstance(event, INPUTS):
            engine.activate(event, seq=at, recorded=commands)
        else:
            engine.note(event)  # type: ignore[arg-type]
    return Rebuilt(engine, seq, after, retry)
