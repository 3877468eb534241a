"""An in-process journal: the real protocol, kept in dicts.

It is what tests and users' tests run on. Commits are atomic because every check
runs before the first change, and nothing awaits in between. Nothing survives the
process.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Collection, Sequence

import attrs

from ._exceptions import ConcurrencyError, JournalClosedError, MessageNotPendingError
from ._protocol import Commit, Event, Message, Outgoing, StreamInfo, Wakeup


@attrs.define
class _Stream:
    events: list[bytes] = attrs.Factory(list)
    status: str | None = None
    metadata: bytes | None = None
    pending: dict[str, Message] = attrs.Factory(dict)
    accepted: set[str] = attrs.Factory(set)
    wakeups: dict[str, float] = attrs.Factory(dict)


class MemoryJournal:
    """A journal held in memory: a real backend without durability."""

    def __init__(self) -> None:
        self._streams: dict[str, _Stream] = {}
        self._positions = itertools.count(1)
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosedError(type(self).__name__)

    def _stream(self, name: str) -> _Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = _Stream()
        return stream

    async def commit(self, commit: Commit) -> int:
        """Apply ``commit`` atomically; see :meth:`journal.Journal.commit`."""
        self._check_open()
        existing = self._streams.get(commit.stream)
        actual = len(existing.events) if existing else 0
        if actual != commit.expected_seq:
            raise ConcurrencyError(commit.stream, commit.expected_seq, actual)
        consumed: set[str] = set()
        for key in commit.consume:
            if existing is None or key not in existing.pending or key in consumed:
                raise MessageNotPendingError(commit.stream, key)
            consumed.add(key)
        stream = self._stream(commit.stream)
        stream.events.extend(bytes(e) for e in commit.events)
        for key in commit.consume:
            del stream.pending[key]
        for out in commit.send:
            self._enqueue(out)
        stream.wakeups.update(commit.schedule)
        for key in commit.cancel:
            stream.wakeups.pop(key, None)
        if commit.status is not None:
            stream.status = commit.status
        if commit.metadata is not None:
            stream.metadata = commit.metadata
        return len(stream.events)

    async def append(self, stream: str, expected_seq: int, events: Sequence[bytes]) -> int:
        """Append ``events``; see :meth:`journal.Journal.append`."""
        return await self.commit(Commit(stream=stream, expected_seq=expected_seq, events=events))

    async def read(
        self, stream: str, after_seq: int = 0, limit: int | None = None
    ) -> Sequence[Event]:
        """Return events after ``after_seq``; see :meth:`journal.Journal.read`."""
        self._check_open()
        existing = self._streams.get(stream)
        if existing is None:
            return []
        start = max(after_seq, 0)
        stop = len(existing.events) if limit is None else min(len(existing.events), start + limit)
        return [Event(seq=i + 1, data=existing.events[i]) for i in range(start, stop)]

    async def info(self, stream: str) -> StreamInfo | None:
        """Return the stream's info; see :meth:`journal.Journal.info`."""
        self._check_open()
        existing = self._streams.get(stream)
        return None if existing is None else _info(stream, existing)

    async def streams(
        self,
        status: str | Collection[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[StreamInfo]:
        """List streams by name; see :meth:`journal.Journal.streams`."""
        self._check_open()
        wanted = {status} if isinstance(status, str) else status
        found: list[StreamInfo] = []
        for name in sorted(self._streams):
            if after is not None and name <= after:
                continue
            stream = self._streams[name]
            if wanted is not None and stream.status not in wanted:
                continue
            if limit is not None and len(found) >= limit:
                break
            found.append(_info(name, stream))
        return found

    async def enqueue(self, stream: str, key: str, data: bytes) -> bool:
        """Enqueue a message once per key; see :meth:`journal.Journal.enqueue`."""
        self._check_open()
        return self._enqueue(Outgoing(stream=stream, key=key, data=data))

    def _enqueue(self, out: Outgoing) -> bool:
        stream = self._stream(out.stream)
        if out.key in stream.accepted:
            return False
        stream.accepted.add(out.key)
        stream.pending[out.key] = Message(
            stream=out.stream, key=out.key, position=next(self._positions), data=bytes(out.data)
        )
        return True

    async def pending(self, stream: str, limit: int | None = None) -> Sequence[Message]:
        """Return pending messages, oldest first; see :meth:`journal.Journal.pending`."""
        self._check_open()
        existing = self._streams.get(stream)
        if existing is None:
            return []
        messages = list(existing.pending.values())  # dicts keep insertion (= position) order
        return messages if limit is None else messages[:limit]

    async def pending_streams(
        self, after: str | None = None, limit: int | None = None
    ) -> Sequence[str]:
        """List streams with pending messages; see :meth:`journal.Journal.pending_streams`."""
        self._check_open()
        names = sorted(
            name
            for name, stream in self._streams.items()
            if stream.pending and (after is None or name > after)
        )
        return names if limit is None else names[:limit]

    async def wakeups(self, stream: str) -> Sequence[Wakeup]:
        """Return a stream's wakeups; see :meth:`journal.Journal.wakeups`."""
        self._check_open()
        existing = self._streams.get(stream)
        if existing is None:
            return []
        return sorted(
            (Wakeup(stream=stream, key=k, due=d) for k, d in existing.wakeups.items()),
            key=lambda w: (w.due, w.key),
        )

    async def due_wakeups(self, until: float, limit: int | None = None) -> Sequence[Wakeup]:
        """Return due wakeups, earliest first; see :meth:`journal.Journal.due_wakeups`."""
        self._check_open()
        due: list[tuple[float, str, str]] = []
        for name, stream in self._streams.items():
            for key, when in stream.wakeups.items():
                if when <= until:
                    bisect.insort(due, (when, name, key))
        if limit is not None:
            due = due[:limit]
        return [Wakeup(stream=name, key=key, due=when) for when, name, key in due]

    async def next_wakeup(self) -> float | None:
        """Return the earliest due time; see :meth:`journal.Journal.next_wakeup`."""
        self._check_open()
        return min((d for s in self._streams.values() for d in s.wakeups.values()), default=None)

    async def close(self) -> None:
        """Mark the journal closed. Idempotent."""
        self._closed = True


def _info(name: str, stream: _Stream) -> StreamInfo:
    return StreamInfo(
        stream=name, last_seq=len(stream.events), status=stream.status, metadata=stream.metadata
    )
