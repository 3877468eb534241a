"""Child process for the journal crash test: appends until it is killed.

Usage: ``python journal_writer.py DB SEED``. It resumes every stream from what the
journal holds, then appends batches of 1-4 events from 20 concurrent streams. After
each append is acknowledged it writes ``stream first_seq count`` to stdout, unbuffered:
a line out means the journal told the caller the append was committed. Each event's
payload names its append (stream, first seq, count, index) and is padded to a size
that varies, so a torn or partial append is visible to the checker.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

from journal.sqlite import SQLiteJournal

STREAMS = 20


def payload(stream: str, first: int, count: int, index: int) -> bytes:
    head = f"{stream}|{first}|{count}|{index}|".encode()
    return head + bytes([first % 251]) * (50 + (first * 7 + index) % 400)


async def main(path: str, seed: int) -> None:
    rng = random.Random(seed)
    journal = await SQLiteJournal.open(path)

    async def stream_writer(name: str) -> None:
        info = await journal.info(name)
        last = info.last_seq if info else 0
        while True:
            count = rng.randint(1, 4)
            events = [payload(name, last + 1, count, i) for i in range(count)]
            last = await journal.append(name, last, events)
            os.write(1, f"{name} {last - count + 1} {count}\n".encode())

    await asyncio.gather(*(stream_writer(f"crash/{i}") for i in range(STREAMS)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
