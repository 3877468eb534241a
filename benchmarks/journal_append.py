"""Journal append throughput: group commit against one commit per append, and the disk.

1,000 streams append concurrently, each awaiting its appends one at a time (one
200-byte event each, 100 per stream), first with group commit, then with one
transaction per append; the raw figure is plain ``sqlite3`` inserting 200-byte blobs
with ``executemany``, 1,000 rows a transaction, on the same disk in the same run. All
three use WAL and ``synchronous=FULL``, the journal's default.

Run: ``python benchmarks/journal_append.py`` (``--runs N`` for the median of N).
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time

from journal.sqlite import SQLiteJournal

PAYLOAD = os.urandom(200)


async def journal_rate(path: str, streams: int, per_stream: int, max_batch: int) -> float:
    async with await SQLiteJournal.open(path, max_batch=max_batch) as journal:

        async def writer(name: str) -> None:
            for seq in range(per_stream):
                await journal.append(name, seq, [PAYLOAD])

        start = time.perf_counter()
        await asyncio.gather(*(writer(f"bench/{i}") for i in range(streams)))
        elapsed = time.perf_counter() - start
    return streams * per_stream / elapsed


def raw_rate(path: str, rows: int, per_tx: int = 1000) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE raw (data BLOB)")
    batch = [(PAYLOAD,)] * per_tx
    start = time.perf_counter()
    for _ in range(rows // per_tx):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO raw VALUES (?)", batch)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="median of this many runs")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--per-stream", type=int, default=100)
    parser.add_argument(
        "--per-append-per-stream",
        type=int,
        default=5,
        help="appends per stream in the slow per-append-commit run",
    )
    args = parser.parse_args()
    group: list[float] = []
    single: list[float] = []
    raw: list[float] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            group.append(
                asyncio.run(
                    journal_rate(os.path.join(tmp, "g.db"), args.streams, args.per_stream, 1000)
                )
            )
            single.append(
                asyncio.run(
                    journal_rate(
                        os.path.join(tmp, "s.db"), args.streams, args.per_append_per_stream, 1
                    )
                )
            )
            raw.append(raw_rate(os.path.join(tmp, "r.db"), 200_000))
    g, s, r = statistics.median(group), statistics.median(single), statistics.median(raw)
    print(
        json.dumps(
            {
                "bench": "journal_append",
                "group_commit_events_per_s": round(g),
                "per_append_commit_events_per_s": round(s),
                "raw_append_rows_per_s": round(r),
                "group_vs_per_append": round(g / s, 1),
                "group_vs_raw": round(g / r, 3),
                "streams": args.streams,
                "events_per_stream": args.per_stream,
                "payload_bytes": len(PAYLOAD),
                "runs": args.runs,
                "synchronous": "FULL",
            }
        )
    )


if __name__ == "__main__":
    main()
