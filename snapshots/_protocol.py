"""The snapshot data type and the protocol every snapshot store implements.

A snapshot is the encoded state of a stream (one per actor) as of journal seq
``seq``: recovery loads the newest snapshot, then replays only the events after it.
A store keeps, per stream, the newest ``keep`` snapshots by seq; saving prunes the
older ones in the same atomic step. The stores know nothing of actors or codecs:
bytes in, bytes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self

import attrs


@attrs.frozen(kw_only=True)
class Snapshot:
    """One stored snapshot of a stream."""

    stream: str
    """The stream (actor) whose state this is."""
    seq: int
    """The journal seq the state reflects: events up to and including it are applied."""
    data: bytes
    """The encoded state, as the writer gave it."""


class SnapshotStore(Protocol):
    """A store of the newest few snapshots of each stream.

    Every method but :meth:`close` raises :class:`~snapshots.SnapshotStoreClosedError`
    after :meth:`close`.
    """

    async def save(self, stream: str, seq: int, data: bytes) -> None:
        """Store ``data`` as the snapshot of ``stream`` at ``seq``, durably.

        Returns only after the snapshot is durable (with the store's sync setting).
        Saving the same ``(stream, seq)`` again replaces its data. Afterwards only the
        newest ``keep`` snapshots of ``stream`` by seq remain, so saving a seq older
        than all of those keeps nothing.

        Args:
            stream: the stream the state belongs to.
            seq: the journal seq the state reflects; at least 1.
            data: the encoded state.

        Raises:
            ValueError: ``seq`` is below 1.
        """
        ...

    async def latest(self, stream: str) -> Snapshot | None:
        """Return the snapshot of ``stream`` with the highest seq, or None if it has none."""
        ...

    async def all(self, stream: str) -> Sequence[Snapshot]:
        """Return every stored snapshot of ``stream``, newest (highest seq) first.

        A reader whose newest snapshot no longer decodes can fall back to older ones.
        An unknown stream has none.
        """
        ...

    async def delete(self, stream: str) -> None:
        """Drop every snapshot of ``stream``, durably. An unknown stream is no error."""
        ...

    async def close(self) -> None:
        """Finish what was submitted, then release resources. Idempotent."""
        ...

    async def __aenter__(self) -> Self:
        """Return the store itself, already open."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        ...


def check_seq(seq: int) -> None:
    """Raise :class:`ValueError` unless ``seq`` is a valid snapshot seq (at least 1)."""
    if seq < 1:
        msg = (
            f"snapshot seq must be at least 1, got {seq}: a snapshot reflects the "
            "journal up to an event, and events are numbered from 1"
        )
        raise ValueError(msg)


def check_keep(keep: int) -> None:
    """Raise :class:`ValueError` unless ``keep`` is a valid count (at least 1)."""
    if keep < 1:
        msg = (
            f"keep must be at least 1, got {keep}: a snapshot store keeps the newest "
            "`keep` snapshots of each stream; pass keep=1 to keep only the latest"
        )
        raise ValueError(msg)
