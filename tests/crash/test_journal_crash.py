"""SIGKILL a process appending to the SQLite journal, again and again, then check.

Every append the child was told was committed must be in the journal, whole and in
order, and nothing else may be visible half-written: each event names the append it
belongs to, so a partial append, a torn payload or a gap is caught.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from journal.sqlite import SQLiteJournal

CHILD = Path(__file__).with_name("journal_writer.py")
KILLS = 24


def run_and_kill(db: Path, seed: int, delay: float) -> list[tuple[str, int, int]]:
    """Start the child, SIGKILL it after ``delay`` seconds of appending; return its acks."""
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None
    # Wait for the first ack so every kill lands while appends are in flight.
    first = child.stdout.readline()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate()
    assert child.returncode == -signal.SIGKILL, err.decode()
    acks = []
    for line in (first + out).decode().splitlines():
        stream, start, count = line.split()
        acks.append((stream, int(start), int(count)))
    return acks


async def check(db: Path, acked: dict[str, dict[int, int]]) -> int:
    """Check the journal against every ack so far; return the number of events."""
    total = 0
    async with await SQLiteJournal.open(db) as journal:
        for info in await journal.streams():
            events = await journal.read(info.stream)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert info.last_seq == len(events)
            by_seq = {e.seq: e.data for e in events}
            for event in events:
                name, first, count, index, _ = event.data.split(b"|", 4)
                assert name.decode() == info.stream
                first_seq, n, i = int(first), int(count), int(index)
                assert event.seq == first_seq + i, "event stored at the wrong seq"
                for j in range(n):  # the whole append is there, not a part of it
                    data = by_seq.get(first_seq + j)
                    assert data is not None, f"partial append at {info.stream}:{first_seq}"
                head = len(f"{info.stream}|{first_seq}|{n}|{i}|".encode())
                assert len(event.data) == head + 50 + (first_seq * 7 + i) % 400, "torn payload"
            for start, size in acked.get(info.stream, {}).items():
                for seq in range(start, start + size):
                    assert seq in by_seq, f"acknowledged event {info.stream}:{seq} lost"
            total += len(events)
        for stream in acked:
            assert await journal.info(stream) is not None, f"acknowledged stream {stream} lost"
    return total


@pytest.mark.crash
def test_sigkill_never_loses_an_acknowledged_append_nor_shows_a_partial_one(
    tmp_path: Path,
) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    acked: dict[str, dict[int, int]] = {}
    acks_total = 0
    for kill in range(KILLS):
        acks = run_and_kill(db, seed=rng.randrange(1 << 30), delay=rng.uniform(0.0, 0.3))
        for stream, start, count in acks:
            acked.setdefault(stream, {})[start] = count
        acks_total += len(acks)
        events = asyncio.run(check(db, acked))
        assert events >= sum(sum(c.values()) for c in acked.values()), f"kill {kill}"
    assert acks_total > KILLS  # the child really was appending when it died
