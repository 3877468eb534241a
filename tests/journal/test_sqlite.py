"""What the SQLite journal promises beyond the contract: durability, group commit."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from journal import Commit, ConcurrencyError, JournalWriteError, MessageNotPendingError
from journal._sqlite_writer import BatchApplier
from journal.sqlite import SQLiteJournal


async def test_commits_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path) as journal:
        await journal.commit(
            Commit(
                stream="s",
                expected_seq=0,
                events=[b"a", b"b"],
                status="running",
                schedule={"t": 3.0},
            )
        )
        await journal.enqueue("s", "m", b"msg")
    async with await SQLiteJournal.open(path) as journal:
        assert [e.data for e in await journal.read("s")] == [b"a", b"b"]
        assert await journal.append("s", 2, [b"c"]) == 3
        assert [m.key for m in await journal.pending("s")] == ["m"]
        assert await journal.next_wakeup() == 3.0


async def test_a_failing_commit_in_a_batch_fails_only_its_caller(tmp_path: Path) -> None:
    async with await SQLiteJournal.open(tmp_path / "j.db") as journal:
        await journal.append("stale", 0, [b"x"])
        good = [journal.append(f"s{i}", 0, [b"ok"]) for i in range(20)]
        broken = journal.append("bad", 0, [None])  # type: ignore[list-item]
        stale = journal.append("stale", 0, [b"late"])
        outcomes = await asyncio.gather(*good, broken, stale, return_exceptions=True)
        assert outcomes[:20] == [1] * 20
        assert isinstance(outcomes[20], JournalWriteError)
        assert "'bad'" in str(outcomes[20])
        assert isinstance(outcomes[21], ConcurrencyError)
        assert await journal.read("bad") == []
        assert [e.data for e in await journal.read("stale")] == [b"x"]
        for i in range(20):
            assert [e.data for e in await journal.read(f"s{i}")] == [b"ok"]
        # the writer goes on after the failure
        assert await journal.append("bad", 0, [b"fixed"]) == 1


async def test_a_message_taken_twice_in_one_batch_is_taken_once(tmp_path: Path) -> None:
    async with await SQLiteJournal.open(tmp_path / "j.db") as journal:
        await journal.enqueue("s", "m", b"msg")
        first = Commit(stream="s", expected_seq=0, events=[b"took m"], consume=["m"])
        again = Commit(stream="s", expected_seq=1, events=[b"took m again"], consume=["m"])
        outcomes = await asyncio.gather(
            journal.commit(first), journal.commit(again), return_exceptions=True
        )
        assert outcomes[0] == 1
        assert isinstance(outcomes[1], MessageNotPendingError)
        assert [e.data for e in await journal.read("s")] == [b"took m"]
        assert await journal.pending("s") == []


async def test_concurrent_appends_share_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[None] = []
    real_commit = BatchApplier.commit

    def counting_commit(self: BatchApplier) -> None:
        commits.append(None)
        real_commit(self)

    monkeypatch.setattr(BatchApplier, "commit", counting_commit)
    async with await SQLiteJournal.open(tmp_path / "j.db") as journal:
        await asyncio.gather(*(journal.append(f"s{i}", 0, [b"x"]) for i in range(200)))
    assert len(commits) == 1  # all 200 were queued before the writer ran


async def test_group_commit_can_be_turned_off(tmp_path: Path) -> None:
    async with await SQLiteJournal.open(tmp_path / "j.db", max_batch=1) as journal:
        results = await asyncio.gather(*(journal.append(f"s{i}", 0, [b"x"]) for i in range(30)))
        assert results == [1] * 30


async def test_close_writes_everything_already_submitted(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = await SQLiteJournal.open(path)
    pending = [asyncio.ensure_future(journal.append(f"s{i}", 0, [b"x"])) for i in range(100)]
    await asyncio.sleep(0)  # every append is queued; none is acknowledged yet
    await journal.close()
    assert [p.result() for p in pending] == [1] * 100
    async with await SQLiteJournal.open(path) as reopened:
        assert len(await reopened.streams()) == 100


async def test_new_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path):
        pass
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_bad_options_are_refused_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        await SQLiteJournal.open(tmp_path / "a.db", synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_batch"):
        await SQLiteJournal.open(tmp_path / "b.db", max_batch=0)
    assert list(tmp_path.iterdir()) == []


async def test_synchronous_normal_is_accepted(tmp_path: Path) -> None:
    async with await SQLiteJournal.open(tmp_path / "j.db", synchronous="NORMAL") as journal:
        assert await journal.append("s", 0, [b"x"]) == 1


async def test_a_file_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("UPDATE perdure_schema SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="version 99"):
        await SQLiteJournal.open(path)


async def test_a_second_writer_on_the_same_file_is_fenced(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with await SQLiteJournal.open(path) as first, await SQLiteJournal.open(path) as second:
        assert await first.append("s", 0, [b"first"]) == 1
        with pytest.raises(ConcurrencyError) as caught:
            await second.append("s", 0, [b"second"])
        assert caught.value.actual == 1
        assert await second.append("s", 1, [b"second"]) == 2
        with pytest.raises(ConcurrencyError):
            await first.append("s", 1, [b"stale cache"])
        assert [e.data for e in await first.read("s")] == [b"first", b"second"]
