"""The embedded, durable journal: SQLite in WAL mode with group commit.

Writes go through one writer thread that batches the commits of every stream into one
transaction (see ``_sqlite_writer``); reads go through their own aiosqlite connection
and see every commit that was acknowledged. ``synchronous=FULL`` (the default) makes an
acknowledged commit survive power loss; ``NORMAL`` survives a process crash only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Collection, Sequence
from types import TracebackType
from typing import Self

import aiosqlite

from ._exceptions import JournalClosedError
from ._protocol import Commit, Event, Message, Outgoing, StreamInfo, Wakeup
from ._sqlite_schema import BUSY_TIMEOUT_MS, Synchronous, connect_writer
from ._sqlite_writer import Outcome, Writer

_NO_LIMIT = -1  # SQLite's LIMIT -1 means no limit
_INFO_COLUMNS = (
    "name, coalesce((SELECT max(seq) FROM events WHERE stream_id = id), 0), status, metadata"
)


class SQLiteJournal:
    """A journal in one SQLite file, safe against a crash at any instant.

    Open it with :meth:`open`; close it with :meth:`close` (or ``async with``), which
    first writes everything already submitted.
    """

    def __init__(self, path: str, writer: Writer, reader: aiosqlite.Connection) -> None:
        """Use :meth:`open` instead."""
        self.path = path
        """The database file."""
        self._writer = writer
        self._reader = reader
        self._closed = False
        self._name = f"SQLiteJournal({path!r})"

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "FULL",
        max_batch: int = 1000,
    ) -> Self:
        """Open (creating if needed) the journal in ``path``.

        Args:
            path: the database file; created readable by its owner only.
            synchronous: ``"FULL"`` (durable against power loss, the default) or
                ``"NORMAL"`` (durable against a process crash, faster).
            max_batch: the most commits written in one transaction; 1 turns group
                commit off (one transaction, one fsync per commit).

        Raises:
            ValueError: a bad argument, or a file that is not a journal of this version.
        """
        if max_batch < 1:
            msg = f"max_batch must be at least 1, not {max_batch}"
            raise ValueError(msg)
        conn = await asyncio.to_thread(connect_writer, path, synchronous)
        reader = await aiosqlite.connect(os.fspath(path))
        await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await reader.execute("PRAGMA query_only = ON")
        return cls(os.fspath(path), Writer(conn, max_batch), reader)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise JournalClosedError(self._name)

    def _submit(self, op: Commit | Outgoing) -> asyncio.Future[Outcome]:
        # A plain function handing back the writer's future: one coroutine frame less
        # on every append's way in and out (this is the hottest path of the runtime).
        if self._closed:
            raise JournalClosedError(self._name)
        return self._writer.submit(op)

    async def commit(self, commit: Commit) -> int:
        """Apply ``commit`` atomically and durably; see :meth:`journal.Journal.commit`.

        Raises:
            ConcurrencyError: ``commit.expected_seq`` is not the stream's last seq.
            MessageNotPendingError: a key in ``commit.consume`` is not pending.
            JournalWriteError: the database could not write the commit.
        """
        return await self._submit(commit)  # type: ignore[return-value]

    async def append(self, stream: str, expected_seq: int, events: Sequence[bytes]) -> int:
        """Append ``events``; see :meth:`journal.Journal.append`."""
        op = Commit(stream=stream, expected_seq=expected_seq, events=events)
        return await self._submit(op)  # type: ignore[return-value]

    async def enqueue(self, stream: str, key: str, data: bytes) -> bool:
        """Enqueue a message once per key; see :meth:`journal.Journal.enqueue`."""
        return await self._submit(Outgoing(stream=stream, key=key, data=data))  # type: ignore[return-value]

    async def _fetch(self, sql: str, params: Sequence[object]) -> list[aiosqlite.Row]:
        self._check_open()
        return list(await self._reader.execute_fetchall(sql, params))

    async def read(
        self, stream: str, after_seq: int = 0, limit: int | None = None
    ) -> Sequence[Event]:
        """Return events after ``after_seq``; see :meth:`journal.Journal.read`."""
        rows = await self._fetch(
            "SELECT seq, data FROM events WHERE stream_id = "
            "(SELECT id FROM streams WHERE name = ?) AND seq > ? ORDER BY seq LIMIT ?",
            (stream, after_seq, _NO_LIMIT if limit is None else limit),
        )
        return [Event(seq=seq, data=data) for seq, data in rows]

    async def info(self, stream: str) -> StreamInfo | None:
        """Return the stream's info; see :meth:`journal.Journal.info`."""
        rows = await self._fetch(f"SELECT {_INFO_COLUMNS} FROM streams WHERE name = ?", (stream,))
        return _info(rows[0]) if rows else None

    async def streams(
        self,
        status: str | Collection[str] | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[StreamInfo]:
        """List streams by name; see :meth:`journal.Journal.streams`."""
        where: list[str] = []
        params: list[object] = []
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
        if after is not None:
            where.append("name > ?")
            params.append(after)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        params.append(_NO_LIMIT if limit is None else limit)
        rows = await self._fetch(
            f"SELECT {_INFO_COLUMNS} FROM streams {clause} ORDER BY name LIMIT ?",
            params,
        )
        return [_info(row) for row in rows]

    async def pending(self, stream: str, limit: int | None = None) -> Sequence[Message]:
        """Return pending messages, oldest first; see :meth:`journal.Journal.pending`."""
        rows = await self._fetch(
            "SELECT key, position, data FROM inbox WHERE stream_id = "
            "(SELECT id FROM streams WHERE name = ?) AND consumed = 0 "
            "ORDER BY position LIMIT ?",
            (stream, _NO_LIMIT if limit is None else limit),
        )
        return [Message(stream=stream, key=k, position=p, data=d) for k, p, d in rows]

    async def pending_streams(
        self, after: str | None = None, limit: int | None = None
    ) -> Sequence[str]:
        """List streams with pending messages; see :meth:`journal.Journal.pending_streams`."""
        rows = await self._fetch(
            "SELECT name FROM streams WHERE id IN "
            "(SELECT DISTINCT stream_id FROM inbox WHERE consumed = 0) AND name > ? "
            "ORDER BY name LIMIT ?",
            ("" if after is None else after, _NO_LIMIT if limit is None else limit),
        )
        return [name for (name,) in rows]

    async def wakeups(self, stream: str) -> Sequence[Wakeup]:
        """Return a stream's wakeups; see :meth:`journal.Journal.wakeups`."""
        rows = await self._fetch(
            "SELECT key, due FROM wakeups WHERE stream_id = "
            "(SELECT id FROM streams WHERE name = ?) ORDER BY due, key",
            (stream,),
        )
        return [Wakeup(stream=stream, key=key, due=due) for key, due in rows]

    async def due_wakeups(self, until: float, limit: int | None = None) -> Sequence[Wakeup]:
        """Return due wakeups, earliest first; see :meth:`journal.Journal.due_wakeups`."""
        rows = await self._fetch(
            "SELECT s.name, w.key, w.due FROM wakeups w JOIN streams s ON s.id = w.stream_id "
            "WHERE w.due <= ? ORDER BY w.due, s.name, w.key LIMIT ?",
            (until, _NO_LIMIT if limit is None else limit),
        )
        return [Wakeup(stream=name, key=key, due=due) for name, key, due in rows]

    async def next_wakeup(self) -> float | None:
        """Return the earliest due time; see :meth:`journal.Journal.next_wakeup`."""
        rows = await self._fetch("SELECT min(due) FROM wakeups", ())
        due = rows[0][0]
        return None if due is None else float(due)

    async def close(self) -> None:
        """Write everything already submitted, then close both connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._writer.stop()
        finally:
            await self._reader.close()


def _info(row: aiosqlite.Row) -> StreamInfo:
    name, last_seq, status, metadata = row
    return StreamInfo(stream=name, last_seq=last_seq, status=status, metadata=metadata)
