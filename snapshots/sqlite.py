"""A snapshot store in an SQLite file, through aiosqlite.

One table, ``snapshots(stream, seq, data)`` keyed by ``(stream, seq)``, which can live
in the same database file as the journal's tables (``streams``, ``events``, ``inbox``,
``wakeups``); the two stores use separate connections. The connection runs in
autocommit mode: each write is an explicit ``BEGIN IMMEDIATE ... COMMIT``, so a save's
upsert and its pruning land together or not at all. Calls take turns on the one
connection (an :class:`asyncio.Lock`), so no call ever runs inside another's
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Final, Literal, Self

import aiosqlite

from ._exceptions import SnapshotStoreClosedError
from ._protocol import Snapshot, check_keep, check_seq

__all__ = ["SQLiteSnapshotStore"]

# The journal's writer shares the file and holds the write lock for a whole group
# commit; wait that out instead of failing with "database is locked".
_BUSY_TIMEOUT_MS: Final = 5000
_SYNCHRONOUS: Final = ("FULL", "NORMAL")

_CREATE = """
CREATE TABLE IF NOT EXISTS snapshots (
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream, seq)
)
"""
_UPSERT = """
INSERT INTO snapshots (stream, seq, data) VALUES (?, ?, ?)
ON CONFLICT (stream, seq) DO UPDATE SET data = excluded.data
"""
# The subquery finds the keep-th newest seq (NULL when there are fewer, which
# deletes nothing); both sides walk the primary key index.
_PRUNE = """
DELETE FROM snapshots WHERE stream = ? AND seq < (
    SELECT seq FROM snapshots WHERE stream = ? ORDER BY seq DESC LIMIT 1 OFFSET ?
)
"""
_LATEST = "SELECT seq, data FROM snapshots WHERE stream = ? ORDER BY seq DESC LIMIT 1"
_ALL = "SELECT seq, data FROM snapshots WHERE stream = ? ORDER BY seq DESC"
_DELETE = "DELETE FROM snapshots WHERE stream = ?"


class SQLiteSnapshotStore:
    """A :class:`~snapshots.SnapshotStore` in an SQLite database file.

    Create one with :meth:`open`; the constructor takes an already prepared
    connection and is not meant to be called directly.
    """

    def __init__(self, *, connection: aiosqlite.Connection, keep: int, name: str) -> None:
        check_keep(keep)
        self._conn = connection
        self._keep = keep
        self._name = name
        self._lock = asyncio.Lock()
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        keep: int = 3,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> Self:
        """Open (creating if needed) the database at ``path`` and its snapshot table.

        A new file is created readable and writable by its owner only (mode 0o600);
        SQLite gives its WAL and shared-memory files the same mode.

        Args:
            path: the database file; may be the journal's file.
            keep: how many snapshots of each stream to keep, newest by seq; at least 1.
            synchronous: SQLite's ``synchronous`` setting. ``FULL`` makes a save
                durable against power loss; ``NORMAL`` only against a process crash.

        Returns:
            The opened store; close it with :meth:`close` or ``async with``.

        Raises:
            ValueError: ``keep`` is below 1 or ``synchronous`` is not FULL or NORMAL.
        """
        check_keep(keep)
        if synchronous not in _SYNCHRONOUS:
            msg = f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}"
            raise ValueError(msg)
        location = os.fspath(path)
        _create_private(location)
        connection = await aiosqlite.connect(location, isolation_level=None)
        try:
            await connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            await connection.execute("PRAGMA journal_mode = WAL")
            # synchronous was checked against _SYNCHRONOUS above; PRAGMA takes no
            # parameters.
            await connection.execute(f"PRAGMA synchronous = {synchronous}")
            await connection.execute(_CREATE)
        except BaseException:
            await connection.close()
            raise
        return cls(connection=connection, keep=keep, name=f"SQLite snapshot store {location!r}")

    @property
    def keep(self) -> int:
        """How many snapshots of each stream the store keeps."""
        return self._keep

    async def save(self, stream: str, seq: int, data: bytes) -> None:
        """Store ``data`` as the snapshot of ``stream`` at ``seq``; see the protocol."""
        check_seq(seq)
        async with self._connection() as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await conn.execute(_UPSERT, (stream, seq, bytes(data)))
                await conn.execute(_PRUNE, (stream, stream, self._keep - 1))
                await conn.execute("COMMIT")
            except BaseException:
                # A no-op if COMMIT went through before a cancellation arrived.
                await conn.rollback()
                raise

    async def latest(self, stream: str) -> Snapshot | None:
        """Return the snapshot of ``stream`` with the highest seq, or None."""
        async with self._connection() as conn:
            rows = list(await conn.execute_fetchall(_LATEST, (stream,)))
        if not rows:
            return None
        seq, data = rows[0]
        return Snapshot(stream=stream, seq=seq, data=data)

    async def all(self, stream: str) -> Sequence[Snapshot]:
        """Return every snapshot of ``stream``, newest first."""
        async with self._connection() as conn:
            rows = await conn.execute_fetchall(_ALL, (stream,))
        return [Snapshot(stream=stream, seq=seq, data=data) for seq, data in rows]

    async def delete(self, stream: str) -> None:
        """Drop every snapshot of ``stream`` (one statement, so atomic on its own)."""
        async with self._connection() as conn:
            await conn.execute(_DELETE, (stream,))

    async def close(self) -> None:
        """Let running calls finish, then close the connection. Idempotent."""
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._closed:
            raise SnapshotStoreClosedError(self._name)
        async with self._lock:
            # close() may have begun while this call waited for its turn.
            if self._closed:
                raise SnapshotStoreClosedError(self._name)
            yield self._conn


def _create_private(location: str) -> None:
    """Create the database file with mode 0o600 unless it exists (or is in memory)."""
    if location in {"", ":memory:"}:
        return
    try:
        fd = os.open(location, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
