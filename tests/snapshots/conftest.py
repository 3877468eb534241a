"""The one fixture every snapshot store contract test runs through.

``make_store`` is parametrized over every backend; a new backend (PostgreSQL) joins
by adding a ``pytest.param`` to ``BACKENDS`` and a branch to ``_open``. Each call of
the factory gives a fresh, empty store, so hypothesis tests can take one per example.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from snapshots import SnapshotStore
from snapshots.memory import MemorySnapshotStore
from snapshots.sqlite import SQLiteSnapshotStore

StoreFactory = Callable[[int], Awaitable[SnapshotStore]]
"""Opens a fresh, empty store keeping the given number of snapshots per stream."""

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
]


@pytest.fixture(params=BACKENDS)
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    backend: str = request.param
    opened: list[SnapshotStore] = []
    counter = itertools.count()

    async def open_store(keep: int) -> SnapshotStore:
        store: SnapshotStore
        if backend == "memory":
            store = MemorySnapshotStore(keep=keep)
        else:
            path = tmp_path / f"snapshots-{next(counter)}.db"
            store = await SQLiteSnapshotStore.open(path, keep=keep)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
async def store(make_store: StoreFactory) -> SnapshotStore:
    """A fresh store keeping 3 snapshots per stream (closed by ``make_store``)."""
    return await make_store(3)
