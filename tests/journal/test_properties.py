"""Properties of every journal under random interleavings of concurrent writers."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journal import ConcurrencyError, Journal
from journal.memory import MemoryJournal
from journal.sqlite import SQLiteJournal

# One writer's plan: (stream index, number of events, yield before appending?).
Plan = list[tuple[int, int, bool]]
plans = st.lists(
    st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3), st.booleans()), max_size=12),
    min_size=1,
    max_size=5,
)


async def run_writers(journal: Journal, writer_plans: list[Plan]) -> None:
    """Run every plan concurrently; check the journal holds exactly what was acked."""
    acked: dict[str, dict[int, bytes]] = {}

    async def writer(w: int, plan: Plan) -> None:
        known: dict[str, int] = {}  # this writer's possibly stale view of each stream
        for step, (s, count, pause) in enumerate(plan):
            stream = f"s{s}"
            if pause:
                await asyncio.sleep(0)
            events = [f"w{w}-{step}-{i}".encode() for i in range(count)]
            expected = known.get(stream, 0)
            try:
                last = await journal.append(stream, expected, events)
            except ConcurrencyError as error:
                assert error.actual != expected
                known[stream] = error.actual
                continue
            assert last == expected + count
            known[stream] = last
            for offset, data in enumerate(events, expected + 1):
                assert offset not in acked.setdefault(stream, {}), "two writers wrote one seq"
                acked[stream][offset] = data

    await asyncio.gather(*(writer(w, plan) for w, plan in enumerate(writer_plans)))
    for stream in ("s0", "s1", "s2"):
        events = await journal.read(stream)
        assert [e.seq for e in events] == list(range(1, len(events) + 1)), "gap or disorder"
        assert {e.seq: e.data for e in events} == acked.get(stream, {}), "lost or unacked event"
        info = await journal.info(stream)
        assert (info.last_seq if info else 0) == len(events)


def run_with(open_journal: Callable[[Path], Awaitable[Journal]], writer_plans: list[Plan]) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            journal = await open_journal(Path(tmp) / "j.db")
            try:
                await run_writers(journal, writer_plans)
            finally:
                await journal.close()

    asyncio.run(main())


async def open_memory(_: Path) -> Journal:
    return MemoryJournal()


async def open_sqlite(path: Path) -> Journal:
    return await SQLiteJournal.open(path)


@pytest.mark.parametrize("open_journal", [open_memory, open_sqlite], ids=["memory", "sqlite"])
@settings(max_examples=40, deadline=None)
@given(writer_plans=plans)
def test_interleaved_writers_never_leave_a_gap_a_duplicate_or_a_lost_ack(
    open_journal: Callable[[Path], Awaitable[Journal]], writer_plans: list[Plan]
) -> None:
    run_with(open_journal, writer_plans)
