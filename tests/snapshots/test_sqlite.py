"""What the SQLite snapshot store promises beyond the contract: files on disk."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path
from typing import Literal

import aiosqlite
import pytest

from snapshots import Snapshot, SnapshotStoreClosedError
from snapshots.sqlite import SQLiteSnapshotStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_snapshots_survive_reopening_the_file(
    tmp_path: Path, synchronous: Literal["FULL", "NORMAL"]
) -> None:
    path = tmp_path / "actors.db"
    async with await SQLiteSnapshotStore.open(path, synchronous=synchronous) as store:
        await store.save("Order/1", 3, b"three")
        await store.save("Order/1", 4, b"four")

    async with await SQLiteSnapshotStore.open(path) as store:
        assert list(await store.all("Order/1")) == [
            Snapshot(stream="Order/1", seq=4, data=b"four"),
            Snapshot(stream="Order/1", seq=3, data=b"three"),
        ]


async def test_a_reopened_store_prunes_to_its_own_keep_on_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "actors.db"
    async with await SQLiteSnapshotStore.open(path, keep=3) as store:
        for seq in (1, 2, 3):
            await store.save("Order/1", seq, b"state")

    async with await SQLiteSnapshotStore.open(path, keep=1) as store:
        assert [s.seq for s in await store.all("Order/1")] == [3, 2, 1]
        await store.save("Order/1", 4, b"state")
        assert [s.seq for s in await store.all("Order/1")] == [4]


async def test_a_new_database_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "actors.db"
    async with await SQLiteSnapshotStore.open(path) as store:
        await store.save("Order/1", 1, b"secret state")

        assert mode(path) == 0o600
        # SQLite gives the WAL file the database file's mode.
        assert mode(tmp_path / "actors.db-wal") == 0o600


async def test_opening_an_existing_file_leaves_its_mode_alone(tmp_path: Path) -> None:
    path = tmp_path / "actors.db"
    path.touch()
    path.chmod(0o640)

    async with await SQLiteSnapshotStore.open(path):
        pass

    assert mode(path) == 0o640


async def test_the_database_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "actors.db"
    async with (
        await SQLiteSnapshotStore.open(path),
        aiosqlite.connect(path) as other,
    ):
        rows = list(await other.execute_fetchall("PRAGMA journal_mode"))

    assert rows == [("wal",)]


async def test_the_store_shares_a_database_file_with_another_connection_and_its_tables(
    tmp_path: Path,
) -> None:
    path = tmp_path / "actors.db"
    async with aiosqlite.connect(path, isolation_level=None) as journal:
        await journal.execute("PRAGMA journal_mode = WAL")
        await journal.execute("CREATE TABLE events (stream TEXT, seq INTEGER, data BLOB)")
        await journal.execute("INSERT INTO events VALUES ('Order/1', 1, x'01')")

        async with await SQLiteSnapshotStore.open(path) as store:
            await store.save("Order/1", 1, b"state at 1")
            await journal.execute("INSERT INTO events VALUES ('Order/1', 2, x'02')")
            await store.save("Order/1", 2, b"state at 2")

            assert [s.seq for s in await store.all("Order/1")] == [2, 1]
            events = list(await journal.execute_fetchall("SELECT seq FROM events ORDER BY seq"))
            assert events == [(1,), (2,)]
            tables = await journal.execute_fetchall(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
            assert [name for (name,) in tables] == ["events", "snapshots"]


async def test_a_save_waits_for_another_connections_write_lock_instead_of_failing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "actors.db"
    async with (
        await SQLiteSnapshotStore.open(path) as store,
        aiosqlite.connect(path, isolation_level=None) as journal,
    ):
        await journal.execute("BEGIN IMMEDIATE")
        save = asyncio.create_task(store.save("Order/1", 1, b"state"))
        # Without a busy timeout the save would fail at once with "database is
        # locked"; with one it is still waiting when the bound runs out.
        done, _ = await asyncio.wait({save}, timeout=0.2)
        assert not done
        await journal.execute("COMMIT")
        await save

        assert [s.seq for s in await store.all("Order/1")] == [1]


async def test_open_rejects_an_unknown_synchronous_setting_before_creating_a_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "actors.db"

    with pytest.raises(ValueError, match=r"synchronous must be 'FULL' or 'NORMAL', got 'OFF'"):
        await SQLiteSnapshotStore.open(path, synchronous="OFF")  # type: ignore[arg-type]

    assert not path.exists()


async def test_open_rejects_keep_below_one_before_creating_a_file(tmp_path: Path) -> None:
    path = tmp_path / "actors.db"

    with pytest.raises(ValueError, match="keep must be at least 1, got 0"):
        await SQLiteSnapshotStore.open(path, keep=0)

    assert not path.exists()


async def test_closed_error_names_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "actors.db"
    store = await SQLiteSnapshotStore.open(path)
    await store.close()

    with pytest.raises(SnapshotStoreClosedError, match=r"actors\.db.* is closed"):
        await store.latest("Order/1")
