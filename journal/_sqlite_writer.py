"""The SQLite journal's group-commit writer: one task, one connection, batches.

Theory of operation. Callers queue ``(operation, future)`` pairs. The writer task takes
everything queued (up to ``max_batch``), applies it in one ``BEGIN IMMEDIATE``
transaction and commits once: one fsync for the whole batch. Only then does it resolve
the callers' futures, so a caller's await returns only after its commit is durable.
While a batch commits, new submissions queue up for the next one.

Isolation inside a batch. Each operation runs every check (expected seq, pending
messages; taking one message is checked by its own update, which changes no row when
the message is not pending) before its first write, so a failed check writes nothing
and fails only its own caller. Should a write itself fail (a constraint, bad data), the
batch is rolled back and applied again with a savepoint per operation, so the one that
fails is undone alone. If ``COMMIT`` fails, nothing of the batch is durable and every
caller in it gets a :class:`~journal.JournalWriteError`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias

import attrs

from ._exceptions import (
    ConcurrencyError,
    JournalError,
    JournalWriteError,
    MessageNotPendingError,
)
from ._protocol import Commit, Outgoing
from ._sqlite_schema import BUSY_TIMEOUT_MS

Operation: TypeAlias = Commit | Outgoing
"""A commit, or a standalone enqueue (an :class:`Outgoing`)."""

Outcome: TypeAlias = int | bool | BaseException


# executemany() releases and retakes the GIL around every row; with the event loop busy
# on the other core each retake waits, so a batch of 1,000 rows took seconds. One
# statement of many rows takes the GIL back once. Sizes are powers of two so that a
# handful of prepared statements serves every batch.
_MAX_CHUNK = 512
_INSERT_EVENTS = {
    1 << k: "INSERT INTO events (stream_id, seq, data) VALUES "
    + ", ".join(["(?, ?, ?)"] * (1 << k))
    for k in range(_MAX_CHUNK.bit_length())
}


_CONSUME = (
    "UPDATE inbox SET consumed = 1, data = NULL WHERE stream_id = ? AND key = ? AND consumed = 0"
)


def _chunk(remaining: int) -> int:
    """Return the largest statement size, a power of two, that fits ``remaining`` rows."""
    return min(_MAX_CHUNK, 1 << (remaining.bit_length() - 1))


@attrs.define
class _Deferred:
    """Writes gathered over a batch and made in one statement each at its end."""

    params: list[int | bytes] = attrs.Factory(list)
    """The events' rows, flat: stream id, seq, data, stream id, seq, data..."""
    touched: set[int] = attrs.Factory(set)
    """Ids of the streams this batch appended to: the database is behind the cache."""


class BatchApplier:
    """Applies batches on the writer's connection, remembering each stream's id and seq.

    The memory of ``name -> (id, last_seq)`` saves a query per commit (a stream's last
    seq is its greatest event seq, read through the events' key). It is only a
    cache: a check that fails against it is checked again against the database, the
    events' primary key stops a duplicate seq should another process have written,
    and the whole cache is dropped whenever anything is rolled back.
    """

    _CACHE_LIMIT = 100_000

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._cache: dict[str, tuple[int, int]] = {}

    def _load(self, name: str) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT id, (SELECT max(seq) FROM events WHERE stream_id = id) "
            "FROM streams WHERE name = ?",
            (name,),
        ).fetchone()
        entry = (0, 0) if row is None else (int(row[0]), int(row[1] or 0))
        self._cache[name] = entry
        return entry

    def _entry(self, name: str) -> tuple[int, int]:
        entry = self._cache.get(name)
        return self._load(name) if entry is None else entry

    def _stream_id(self, name: str) -> int:
        sid, last = self._entry(name)
        if sid == 0:
            cursor = self.conn.execute("INSERT INTO streams (name) VALUES (?)", (name,))
            assert cursor.lastrowid is not None
            sid = cursor.lastrowid
            self._cache[name] = (sid, last)
        return sid

    def _enqueue(self, out: Outgoing) -> bool:
        cursor = self.conn.execute(
            "INSERT INTO inbox (stream_id, key, data) VALUES (?, ?, ?) "
            "ON CONFLICT (stream_id, key) DO NOTHING",
            (self._stream_id(out.stream), out.key, out.data),
        )
        return cursor.rowcount == 1

    def _commit(self, c: Commit, work: _Deferred) -> int:
        name = c.stream
        entry = self._cache.get(name)
        sid, actual = self._load(name) if entry is None else entry
        if actual != c.expected_seq and sid not in work.touched:
            sid, actual = self._load(name)  # the cache may be behind another writer
        if actual != c.expected_seq:
            raise ConcurrencyError(name, c.expected_seq, actual)
        consume = self._take(c, sid)
        # Checks done; from here on every statement writes.
        conn = self.conn
        new_seq = actual + len(c.events)
        if sid == 0:
            cursor = conn.execute(
                "INSERT INTO streams (name, status, metadata) VALUES (?, ?, ?)",
                (c.stream, c.status, c.metadata),
            )
            assert cursor.lastrowid is not None
            sid = cursor.lastrowid
        elif c.status is not None or c.metadata is not None:
            conn.execute(
                "UPDATE streams SET status = coalesce(?, status), "
                "metadata = coalesce(?, metadata) WHERE id = ?",
                (c.status, c.metadata, sid),
            )
        self._cache[name] = (sid, new_seq)
        if new_seq != actual:
            work.touched.add(sid)
            params = work.params
            for data in c.events:
                actual += 1
                params += (sid, actual, data)
        if consume:
            conn.executemany(_CONSUME, [(sid, key) for key in consume])
        for out in c.send:
            self._enqueue(out)
        if c.schedule:
            conn.executemany(
                "INSERT INTO wakeups (stream_id, key, due) VALUES (?, ?, ?) "
                "ON CONFLICT (stream_id, key) DO UPDATE SET due = excluded.due",
                [(sid, key, due) for key, due in c.schedule.items()],
            )
        if c.cancel:
            conn.executemany(
                "DELETE FROM wakeups WHERE stream_id = ? AND key = ?",
                [(sid, k) for k in c.cancel],
            )
        return new_seq

    def _take(self, c: Commit, sid: int) -> Sequence[str]:
        """Check that ``c``'s messages are pending; return those still to mark consumed.

        The usual case, one message taken, is marked here: its update is its own
        check, since a key that is not pending changes no row (so nothing is written).
        """
        if len(c.consume) == 1 and sid != 0:
            if self.conn.execute(_CONSUME, (sid, c.consume[0])).rowcount != 1:
                raise MessageNotPendingError(c.stream, c.consume[0])
            return ()
        if c.consume:
            self._check_pending(c.stream, sid, c.consume)
        return c.consume

    def _check_pending(self, stream: str, sid: int, keys: Sequence[str]) -> None:
        seen: set[str] = set()
        for key in keys:
            if key in seen or sid == 0:
                raise MessageNotPendingError(stream, key)
            seen.add(key)
        marks = ", ".join("?" * len(keys))
        found = {
            k
            for (k,) in self.conn.execute(
                f"SELECT key FROM inbox WHERE stream_id = ? AND consumed = 0 AND key IN ({marks})",
                (sid, *keys),
            )
        }
        for key in keys:
            if key not in found:
                raise MessageNotPendingError(stream, key)

    def _apply(self, op: Operation, work: _Deferred) -> int | bool:
        return self._commit(op, work) if isinstance(op, Commit) else self._enqueue(op)

    def _flush(self, work: _Deferred) -> None:
        params = work.params
        start, end = 0, len(params)
        while start < end:
            size = _chunk((end - start) // 3)
            stop = start + 3 * size
            self.conn.execute(_INSERT_EVENTS[size], params[start:stop])
            start = stop

    def _apply_isolated(self, op: Operation) -> Outcome:
        conn = self.conn
        conn.execute("SAVEPOINT op")
        try:
            work = _Deferred()
            result = self._apply(op, work)
            self._flush(work)
        except Exception as exc:  # noqa: BLE001 - the outcome goes back to this op's caller
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
            self._cache.clear()
            return exc if isinstance(exc, JournalError) else _write_error(op, exc)
        conn.execute("RELEASE op")
        return result

    def begin(self) -> None:
        """Start the batch's transaction, waiting for the write lock if need be."""
        self.conn.execute("BEGIN IMMEDIATE")

    def write(self, batch: Sequence[Operation]) -> list[Outcome]:
        """Apply ``batch`` inside the open transaction; return each op's outcome."""
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()
        try:
            outcomes: list[Outcome] = []
            work = _Deferred()
            for op in batch:
                try:
                    outcomes.append(self._apply(op, work))
                except JournalError as exc:  # a check failed before any write of op
                    outcomes.append(exc)
            self._flush(work)
        except Exception:  # noqa: BLE001 - a write failed: redo the batch op by op
            self.conn.execute("ROLLBACK")
            self._cache.clear()
            self.conn.execute("BEGIN IMMEDIATE")
            outcomes = [self._apply_isolated(op) for op in batch]
        return outcomes

    def commit(self) -> None:
        """Commit the open transaction: the fsync."""
        self.conn.execute("COMMIT")

    def abort(self) -> None:
        """Roll back whatever is open after a failure; forget what the cache learnt."""
        self._cache.clear()
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")


def _write_error(op: Operation, exc: BaseException) -> JournalWriteError:
    error = JournalWriteError(op.stream, f"{type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


class Writer:
    """The writer task: batches what callers submit, one transaction per batch.

    The statements of a batch run on the event loop's thread: they touch only pages in
    memory, and running them there spares a thread switch per statement (with the
    loop busy on the other core, a worker thread waited for the GIL at every one).
    The commit, where the fsync happens, runs in the writer's own thread so the loop
    goes on meanwhile; so does taking the write lock when another connection holds it.
    """

    _THREAD_NAME = "perdure-journal-writer"

    def __init__(self, conn: sqlite3.Connection, max_batch: int) -> None:
        # The loop thread must never wait on the lock: fail at once, then wait in the
        # writer's thread (see _begin).
        conn.execute("PRAGMA busy_timeout = 0")
        self._applier = BatchApplier(conn)
        self._max_batch = max_batch
        self._queue: list[tuple[Operation, asyncio.Future[Outcome]]] = []
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._woken = False  # mirrors the event: spares submit() a call on the hot path
        self._stopping = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=self._THREAD_NAME)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._THREAD_NAME)

    def submit(self, op: Operation) -> asyncio.Future[Outcome]:
        """Queue ``op``; the returned future resolves once its batch is durable."""
        future: asyncio.Future[Outcome] = asyncio.Future(loop=self._loop)
        self._queue.append((op, future))
        if not self._woken:
            self._woken = True
            self._wake.set()
        return future

    async def stop(self) -> None:
        """Write what is queued, close the connection and end the task."""
        self._stopping = True
        self._woken = True
        self._wake.set()
        await asyncio.shield(self._task)

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                self._woken = False
                while self._queue:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                    outcomes = await self._write([op for op, _ in batch])
                    for (_, future), outcome in zip(batch, outcomes, strict=True):
                        _resolve(future, outcome)
                if self._stopping:
                    return
        finally:
            await self._in_thread(self._applier.conn.close)
            self._thread.shutdown(wait=False)

    async def _write(self, batch: list[Operation]) -> list[Outcome]:
        applier = self._applier
        try:
            try:
                applier.begin()
            except sqlite3.OperationalError:  # another connection holds the write lock
                await self._in_thread(_begin_waiting, applier.conn)
            outcomes = applier.write(batch)
            await self._in_thread(applier.commit)
        except Exception as exc:  # noqa: BLE001 - nothing of the batch is durable
            await self._in_thread(applier.abort)
            return [_write_error(op, exc) for op in batch]
        return outcomes

    async def _in_thread(self, fn: Callable[..., None], *args: object) -> None:
        # Shielded: once a commit has started, its caller's futures must learn how it
        # ended, even if whoever awaits the writer is cancelled.
        loop = asyncio.get_running_loop()
        await asyncio.shield(loop.run_in_executor(self._thread, fn, *args))


def _begin_waiting(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout = 0")


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if future.done():  # the caller stopped waiting; the outcome stands regardless
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
