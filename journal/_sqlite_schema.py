"""The SQLite journal's schema, shared by its writer and its readers.

Measured on this project's machine (DESIGN.md section 3): events keyed by an integer
stream id in a rowid table insert far faster than keyed by the stream's text name, so
``streams`` maps names to ids and every other table refers to the id. Payload bytes
stay out of every key. A stream's last seq is not stored: it is the greatest seq of its
events, one index lookup away, which spares every append an update of ``streams``.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Literal

SCHEMA_VERSION = 1

Synchronous = Literal["FULL", "NORMAL"]

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS perdure_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS streams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    status TEXT,
    metadata BLOB
);
CREATE INDEX IF NOT EXISTS streams_by_status ON streams (status, name);
CREATE TABLE IF NOT EXISTS events (
    stream_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream_id, seq)
);
CREATE TABLE IF NOT EXISTS inbox (
    position INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    data BLOB,
    consumed INTEGER NOT NULL DEFAULT 0,
    UNIQUE (stream_id, key)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (stream_id, position) WHERE consumed = 0;
CREATE TABLE IF NOT EXISTS wakeups (
    stream_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    due REAL NOT NULL,
    PRIMARY KEY (stream_id, key)
);
CREATE INDEX IF NOT EXISTS wakeups_by_due ON wakeups (due);
INSERT INTO perdure_schema (version)
    SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM perdure_schema);
"""

# A second connection (a reader, the snapshot store, another process) may hold the
# write lock for a moment; wait for it rather than fail at once.
BUSY_TIMEOUT_MS = 5000


def create_private(path: str | os.PathLike[str]) -> None:
    """Create ``path`` readable by its owner only, if it does not exist yet."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def connect_writer(path: str | os.PathLike[str], synchronous: Synchronous) -> sqlite3.Connection:
    """Open the writer's connection, set WAL and ``synchronous``, create the schema."""
    if synchronous not in ("FULL", "NORMAL"):
        msg = f"synchronous must be 'FULL' or 'NORMAL', not {synchronous!r}"
        raise ValueError(msg)
    create_private(path)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        conn.close()
        msg = f"{os.fspath(path)!r} cannot use WAL mode (got {mode!r})"
        raise ValueError(msg)
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.executescript(SCHEMA)
    (version,) = conn.execute("SELECT version FROM perdure_schema").fetchone()
    if version != SCHEMA_VERSION:
        conn.close()
        msg = (
            f"{os.fspath(path)!r} holds journal schema version {version}, this perdure "
            f"reads version {SCHEMA_VERSION}; open it with the perdure that wrote it"
        )
        raise ValueError(msg)
    return conn
