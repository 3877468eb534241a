"""One journal fixture, parametrized over every backend, for the contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from journal import Journal
from journal.memory import MemoryJournal
from journal.sqlite import SQLiteJournal

OpenJournal = Callable[[], Awaitable[Journal]]


@pytest.fixture(params=["memory", "sqlite"])
async def open_journal(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenJournal]:
    """Open the backend's journal; for SQLite, every call reopens the same file."""
    opened: list[Journal] = []
    memory = MemoryJournal()

    async def open_() -> Journal:
        if request.param == "memory":
            journal: Journal = memory
        else:
            journal = await SQLiteJournal.open(tmp_path / "journal.db")
        opened.append(journal)
        return journal

    yield open_
    for journal in opened:
        await journal.close()


@pytest.fixture
async def journal(open_journal: OpenJournal) -> Journal:
    """A fresh, empty journal of each backend."""
    return await open_journal()
