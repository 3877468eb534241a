"""The journal's data types and the protocol every backend implements.

A journal holds, per stream (one per actor):

- events numbered 1, 2, 3... with no gap, append-only;
- an inbox of pending messages, each with an idempotency key: a key is accepted
  once per stream, ever, so a retried send enqueues nothing;
- wakeups (durable timers): a key and a due time, listed by due time;
- a status string and opaque metadata bytes.

All of them change together through one atomic :class:`Commit`: "append these
events, consume these messages, send these messages, schedule and cancel these
wakeups, set this status". A commit whose ``expected_seq`` is stale writes nothing and
raises :class:`~journal.ConcurrencyError`; this is the fence that keeps two writers
from both writing event N. The journal knows nothing of actors: payloads are bytes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

import attrs


@attrs.frozen(kw_only=True)
class Event:
    """One stored event of a stream."""

    seq: int
    """Position in its stream: 1 for the first event, no gaps."""
    data: bytes
    """The payload, as the writer gave it."""


@attrs.frozen(kw_only=True)
class Message:
    """A message in a stream's inbox."""

    stream: str
    """The stream whose inbox holds it."""
    key: str
    """Idempotency key: unique per stream, forever."""
    position: int
    """Store-wide acceptance order; pending messages are listed by it."""
    data: bytes
    """The payload, as the sender gave it."""


@attrs.frozen(kw_only=True)
class Outgoing:
    """A message to enqueue into a stream's inbox as part of a commit."""

    stream: str
    """The receiving stream (need not exist yet: enqueuing creates it)."""
    key: str
    """Idempotency key: if the stream accepted it before, nothing is enqueued."""
    data: bytes
    """The payload."""


@attrs.frozen(kw_only=True)
class Wakeup:
    """A durable timer: wake ``stream`` at ``due`` (seconds since the epoch)."""

    stream: str
    """The stream to wake."""
    key: str
    """Names the wakeup within its stream; scheduling a key again moves it."""
    due: float
    """When it is due, as a POSIX timestamp."""


@attrs.frozen(kw_only=True)
class StreamInfo:
    """What a journal knows about one stream besides its events."""

    stream: str
    """The stream's name."""
    last_seq: int
    """The seq of its last event; 0 if it has none."""
    status: str | None
    """The status last committed, or None if never set."""
    metadata: bytes | None
    """The metadata last committed, or None if never set."""


_NO_WAKEUPS: Mapping[str, float] = MappingProxyType({})


@attrs.frozen(kw_only=True)
class Commit:
    """One atomic change to a stream and the side tables.

    Everything in a commit is written together, or, if any check fails, none of it.
    """

    stream: str
    """The stream written to."""
    expected_seq: int
    """The stream's last seq as the writer knows it (0 for a new stream)."""
    events: Sequence[bytes] = ()
    """Payloads appended as events ``expected_seq + 1``, ``+ 2``..."""
    consume: Sequence[str] = ()
    """Keys of pending messages in this stream's inbox to mark consumed."""
    send: Sequence[Outgoing] = ()
    """Messages to enqueue into inboxes (any stream, idempotent by key)."""
    schedule: Mapping[str, float] = _NO_WAKEUPS
    """Wakeups of this stream to create or move: key to due time."""
    cancel: Sequence[str] = ()
    """Keys of this stream's wakeups to remove (unknown keys are ignored)."""
    status: str | None = None
    """The stream's new status, or None to leave it."""
    metadata: bytes | None = None
    """The stream's new metadata, or None to leave it."""


class Journal(Protocol):
    """An event journal: per-stream events plus inbox, wakeups and status.

    Every method may raise :class:`~journal.JournalClosedError` after :meth:`close`.
    """

    async def commit(self, commit: Commit) -> int:
        """Apply ``commit`` atomically and durably.

        Returns only after the commit is durable (with the store's sync setting).

        Args:
            commit: what to write.

        Returns:
            The stream's last seq after the commit.

        Raises:
            ConcurrencyError: ``commit.expected_seq`` is not the stream's last seq.
            MessageNotPendingError: a key in ``commit.consume`` is not pending.
        """
        ...

    async def append(self, stream: str, expected_seq: int, events: Sequence[bytes]) -> int:
        """Append ``events`` to ``stream``: a :meth:`commit` with events only.

        Returns:
            The stream's last seq after the append.

        Raises:
            ConcurrencyError: ``expected_seq`` is not the stream's last seq.
        """
        ...

    async def read(
        self, stream: str, after_seq: int = 0, limit: int | None = None
    ) -> Sequence[Event]:
        """Return the events of ``stream`` with seq > ``after_seq``, in order.

        An unknown stream has no events. ``limit`` caps how many are returned.
        """
        ...

    async def info(self, stream: str) -> StreamInfo | None:
        """Return what the store knows about ``stream``, or None if it never existed."""
        ...

    async def streams(
        self,
        status: str | Collection[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[StreamInfo]:
        """List streams ordered by name.

        Args:
            status: only streams with this status (or one of these); None for all.
            after: only streams whose name sorts after this one (for paging).
            limit: at most this many.
        """
        ...

    async def enqueue(self, stream: str, key: str, data: bytes) -> bool:
        """Durably enqueue a message into ``stream``'s inbox.

        Returns:
            True if enqueued; False if the stream accepted ``key`` before
            (pending or consumed), in which case nothing changed.
        """
        ...

    async def pending(self, stream: str, limit: int | None = None) -> Sequence[Message]:
        """Return the pending (not consumed) messages of ``stream``, oldest first."""
        ...

    async def pending_streams(
        self, after: str | None = None, limit: int | None = None
    ) -> Sequence[str]:
        """List the streams that have pending messages, ordered by name.

        Args:
            after: only streams whose name sorts after this one (for paging).
            limit: at most this many.
        """
        ...

    async def wakeups(self, stream: str) -> Sequence[Wakeup]:
        """Return the wakeups of ``stream``, earliest first."""
        ...

    async def due_wakeups(self, until: float, limit: int | None = None) -> Sequence[Wakeup]:
        """Return the wakeups of every stream due at or before ``until``, earliest first."""
        ...

    async def next_wakeup(self) -> float | None:
        """Return the earliest due time of any wakeup, or None if there is none."""
        ...

    async def close(self) -> None:
        """Finish what was submitted, then release resources. Idempotent."""
        ...
