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
from ._events import FORMAT, INPUTS, ContinuedAsNew, HistoryEvent
from ._replay import Engine, split_activations

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
    )


def successor_snapshot(engine: Engine, outcome: ContinuedAsNew) -> RunSnapshot:
    """The snapshot the next run starts from after ``outcome``."""
    return RunSnapshot(
        run=engine.run + 1,
        next_cmd=engine.next_cmd,
        time=engine.now,
        state=outcome.state,
        shape=shape_of(type(engine.actor)),
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
    )


async def rebuild(
    actor_id: str, cls: type[Actor], journal: Journal, snapshots: SnapshotStore, codec: Codec
) -> tuple[Engine, int, int]:
    """Replay ``actor_id`` from its newest usable snapshot and its journal.

    Returns:
        The engine, the stream's last seq and the seq of the snapshot used (0: none).

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
    for at, event, commands in split_activations(history):
        if isinstance(engine.outcome, ContinuedAsNew):
            engine = engine_from(actor_id, successor_snapshot(engine, engine.outcome), codec)
        if isinstance(event, INPUTS):
            engine.activate(event, seq=at, recorded=commands)
        else:
            engine.note(event)  # type: ignore[arg-type]
    return engine, seq, after
