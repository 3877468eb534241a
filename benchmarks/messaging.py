"""Messaging benchmarks W4-W6 on the SQLite default with synchronous=FULL.

- W6: durable ``tell`` throughput to 1,000 message-driven actors, and the ``ask``
  round trip. The actors are created first (one ask each, not timed); then waves of
  tells, one to every actor, are sent concurrently (each tell awaits its durable
  commit), and the last wave is asks: an ask is answered after its handler's commit,
  and an actor handles its mailbox in order, so when every last ask is answered every
  message was handled durably. The clock runs from the first tell to the last answer;
  every actor's count is checked afterwards (not timed). The ask round trip is
  sequential asks to one live actor: p50/p99 ms.
- W4: recovery of one actor with ~100,000 events of history (a message takes two
  events: ``MessageReceived`` and ``Replied``). One history is built (waves of
  concurrent tells, each closed by an ask so the mailbox stays under a wave; the build
  time is reported apart), copied, and both copies get the same tail of messages: one
  with the default ``snapshot_every`` (a snapshot at the tail's first message, then a
  tail of just under ``snapshot_every`` events to replay: the worst case of the
  default), the other with snapshots off. Timed: ``ActorSystem.open`` to a query answered (the
  query activates the actor: snapshot load and replay), median of ``--runs``, warm
  page cache; ``open_ms`` is the part before the query.
- W5: ``--actors`` virtual actors (default 1,000,000) each created by one ask and
  passivated by ``max_active``: spawn+handle rate, the process's peak RSS, and the ask
  round trip to actors that were passivated (the first ones, long evicted): p50/max
  (none when ``--actors`` <= ``--max-active``: nothing was passivated).

``gc_s`` is the time the cyclic garbage collector ran during the timed part;
``--gc-threshold 50000,20,100`` runs with other collector thresholds (labelled in the
output as ``gc_threshold``) to show what the collector costs.

Run: ``python benchmarks/messaging.py`` (``--only W4,W6``; ``--actors N`` for W5).
Several workloads run one subprocess each, so each peak RSS is its own. Prints one
JSON line per workload; progress goes to stderr. ``--profile [W4|W5|W6]`` prints where
that workload's timed part spends the event loop's time (the journal's writer thread
is not profiled; its share shows as waiting).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from typing import Any

import attrs

from actors import Actor, ActorSystem, Context, handler, query

WORKLOADS = ("W6", "W4", "W5")
NO_SNAPSHOTS = 10**12


@attrs.frozen
class Add:
    amount: int


class Counter(Actor, name="bench.Counter"):
    """A message-driven actor: counts the messages it handled."""

    count: int = 0
    total: int = 0

    @handler
    async def add(self, ctx: Context, msg: Add) -> int:
        self.count += 1
        self.total += msg.amount
        return self.count

    @query
    def get_count(self) -> int:
        return self.count


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class GcClock:
    """Seconds the cyclic garbage collector ran while ``running`` (via ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.running = False
        self._start = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        elif self.running:
            self.seconds += time.perf_counter() - self._start

    async def measure(self, part: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        self.seconds, self.running = 0.0, True
        try:
            return await part()
        finally:
            self.running = False


GC = GcClock()

Profile = Callable[[Callable[[], Coroutine[Any, Any, Any]]], Coroutine[Any, Any, Any]]


async def unprofiled(part: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return await part()


def profiling(profiler: cProfile.Profile) -> Profile:
    async def run(part: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        profiler.enable()
        try:
            return await part()
        finally:
            profiler.disable()

    return run


# W6 -----------------------------------------------------------------------------


async def w6(
    path: str, actors: int, per_actor: int, asks: int, timed: Profile = unprofiled
) -> dict[str, Any]:
    """Tell waves to ``actors`` actors (``per_actor`` messages each), then ``asks`` asks."""
    async with ActorSystem.open(path) as system:
        refs = [system.get(Counter, f"w6-{i}") for i in range(actors)]
        assert await asyncio.gather(*(ref.ask(Add(1)) for ref in refs)) == [1] * actors

        async def send() -> list[int]:
            for _ in range(per_actor - 1):
                await asyncio.gather(*(ref.tell(Add(1)) for ref in refs))
            answers: list[int] = await asyncio.gather(*(ref.ask(Add(1)) for ref in refs))
            return answers

        start = time.perf_counter()
        last = await GC.measure(lambda: timed(send))
        elapsed = time.perf_counter() - start
        gc_seconds = GC.seconds
        assert last == [per_actor + 1] * actors, "a last ask overtook a tell"
        counts = await asyncio.gather(*(ref.query(Counter.get_count) for ref in refs))
        assert counts == [per_actor + 1] * actors, "messages lost"

        latencies: list[float] = []
        for _ in range(asks):
            begin = time.perf_counter()
            await refs[0].ask(Add(1))
            latencies.append((time.perf_counter() - begin) * 1000)
    messages = actors * per_actor
    return {
        "tells_per_s": messages / elapsed,
        "ask_p50_ms": percentile(latencies, 0.5),
        "ask_p99_ms": percentile(latencies, 0.99),
        "gc_s": gc_seconds,
        "elapsed_s": elapsed,
    }


# W4 -----------------------------------------------------------------------------


async def send_messages(
    path: str, count: int, snapshot_every: int, wave: int
) -> tuple[int, int, int]:
    """Send ``count`` messages to actor ``w4``: waves of concurrent tells, each closed by an ask.

    The ask waits for the wave to be handled, so the mailbox never holds more than a
    wave (see the report: handling a backlog of N messages costs O(N^2) today).
    Returns the actor's count, its stream's last seq and its newest snapshot's seq.
    """
    async with ActorSystem.open(path, snapshot_every=snapshot_every) as system:
        ref = system.get(Counter, "w4")
        sent = handled = 0
        while sent < count:
            n = min(wave, count - sent)
            await asyncio.gather(*(ref.tell(Add(1)) for _ in range(n - 1)))
            handled = await ref.ask(Add(1))
            sent += n
            if sent % 10_000 < n:
                progress(f"W4 build: {sent} messages")
        info = await system.journal.info("w4")
        snapshot = await system.snapshots.latest("w4")
        assert info is not None
        return handled, info.last_seq, 0 if snapshot is None else snapshot.seq


async def recover(
    path: str, snapshot_every: int, timed: Profile = unprofiled
) -> tuple[float, float]:
    """Milliseconds from ``open`` to the actor answering a query, and to ``open`` done."""

    async def ready() -> int:
        async with ActorSystem.open(
            path, actors=[Counter], snapshot_every=snapshot_every
        ) as system:
            times.append(time.perf_counter())
            count: int = await system.get(Counter, "w4").query(Counter.get_count)
            times.append(time.perf_counter())
            return count

    times = [time.perf_counter()]
    await timed(ready)
    return (times[2] - times[0]) * 1000, (times[1] - times[0]) * 1000


def copy_db(source: str, target: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(source + suffix):
            shutil.copyfile(source + suffix, target + suffix)


def w4(
    tmp: str, events: int, runs: int, wave: int, profile: cProfile.Profile | None = None
) -> dict[str, Any]:
    tail = (200 - 1) // 2  # messages: just under the default snapshot_every of 200 events
    messages = max(tail + 1, events // 2)  # Started, then two events a message
    base = os.path.join(tmp, "w4-base.db")
    start = time.perf_counter()
    handled, _, _ = asyncio.run(send_messages(base, messages - tail, NO_SNAPSHOTS, wave))
    build = time.perf_counter() - start
    snap, full = os.path.join(tmp, "w4-snap.db"), os.path.join(tmp, "w4-full.db")
    copy_db(base, snap)
    copy_db(base, full)
    os.remove(base)
    handled_snap, seq_snap, snapshot_seq = asyncio.run(send_messages(snap, tail, 200, wave))
    handled_full, seq_full, no_snapshot = asyncio.run(send_messages(full, tail, NO_SNAPSHOTS, wave))
    assert handled_snap == handled_full == handled + tail == messages
    assert seq_snap == seq_full
    assert snapshot_seq > 0
    assert no_snapshot == 0
    progress(f"W4: {seq_full} events built in {build:.1f} s; recovering")
    timed = unprofiled if profile is None else profiling(profile)
    with_snapshot = [asyncio.run(recover(snap, 200)) for _ in range(runs)]
    full_replay = [asyncio.run(recover(full, NO_SNAPSHOTS, timed)) for _ in range(runs)]
    return {
        "events": seq_full,
        "messages": messages,
        "recover_with_snapshot_ms": statistics.median(t for t, _ in with_snapshot),
        "recover_full_replay_ms": statistics.median(t for t, _ in full_replay),
        "open_ms": statistics.median(o for _, o in with_snapshot + full_replay),
        "tail_events_after_snapshot": seq_snap - snapshot_seq,
        "build_s": build,
        "build_events_per_s": (seq_full - 2 * tail) / build,
    }


# W5 -----------------------------------------------------------------------------


async def w5(
    path: str, actors: int, max_active: int, concurrency: int, timed: Profile = unprofiled
) -> dict[str, Any]:
    async with ActorSystem.open(path, max_active=max_active) as system:
        ids = iter(range(actors))
        done = 0
        mark = max(1, actors // 20)
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal done
            for i in ids:
                assert await system.get(Counter, f"w5-{i}").ask(Add(1)) == 1
                done += 1
                if done % mark == 0:
                    rate = done / (time.perf_counter() - start)
                    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    progress(
                        f"W5: {done} actors, {rate:.0f}/s, {len(system._runners)} in memory, "
                        f"peak RSS {rss:.0f} MB"
                    )

        async def spawn_all() -> None:
            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await GC.measure(lambda: timed(spawn_all))
        elapsed = time.perf_counter() - start
        gc_seconds = GC.seconds
        in_memory = len(system._runners)
        await asyncio.sleep(0.1)  # let the last eviction finish

        wakes: list[float] = []
        for i in range(0, min(actors, 20 * 97), 97):
            actor_id = f"w5-{i}"
            if actor_id in system._runners:
                continue
            begin = time.perf_counter()
            assert await system.get(Counter, actor_id).ask(Add(1)) == 2
            wakes.append((time.perf_counter() - begin) * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "spawn_handle_per_s": actors / elapsed,
        "peak_rss_mb": peak,
        "wake_one_ms": statistics.median(wakes) if wakes else None,
        "wake_max_ms": max(wakes) if wakes else None,
        "wakes": len(wakes),
        "in_memory_at_end": in_memory,
        "elapsed_s": elapsed,
        "gc_s": gc_seconds,
    }


# Main -----------------------------------------------------------------------------


def emit(bench: str, result: dict[str, Any], **extra: Any) -> None:
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
    extra["gc_threshold"] = list(gc.get_threshold())
    print(json.dumps({"bench": bench, **rounded, **extra, "synchronous": "FULL"}), flush=True)


def print_profile(profiler: cProfile.Profile) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(30)
        print(out.getvalue())


def run_one(name: str, args: argparse.Namespace, tmp: str) -> None:
    profiler = cProfile.Profile() if args.profile == name else None
    timed = unprofiled if profiler is None else profiling(profiler)
    if name == "W6":
        runs = []
        for r in range(1 if profiler else args.runs):
            path = os.path.join(tmp, f"w6-{r}.db")
            runs.append(asyncio.run(w6(path, args.w6_actors, args.per_actor, args.asks, timed)))
        emit(
            "W6",
            {
                "tells_per_s": statistics.median(r["tells_per_s"] for r in runs),
                "ask_p50_ms": statistics.median(r["ask_p50_ms"] for r in runs),
                "ask_p99_ms": statistics.median(r["ask_p99_ms"] for r in runs),
                "gc_s": statistics.median(r["gc_s"] for r in runs),
                "tells_per_s_runs": [round(r["tells_per_s"]) for r in runs],
            },
            actors=args.w6_actors,
            messages=args.w6_actors * args.per_actor,
            asks=args.asks,
            runs=len(runs),
        )
    elif name == "W4":
        emit("W4", w4(tmp, args.events, args.runs, args.wave, profiler), runs=args.runs)
    else:
        path = os.path.join(tmp, "w5.db")
        result = asyncio.run(w5(path, args.actors, args.max_active, args.concurrency, timed))
        emit(
            "W5",
            result,
            actors=args.actors,
            max_active=args.max_active,
            concurrency=args.concurrency,
        )
    if profiler is not None:
        print_profile(profiler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(WORKLOADS), help="e.g. W4,W6")
    parser.add_argument("--runs", type=int, default=3, help="median of this many W6/W4 runs")
    parser.add_argument("--w6-actors", type=int, default=1000)
    parser.add_argument("--per-actor", type=int, default=20, help="W6 messages per actor")
    parser.add_argument("--asks", type=int, default=200, help="W6 sequential asks")
    parser.add_argument("--events", type=int, default=100_000, help="W4 history length")
    parser.add_argument("--wave", type=int, default=500, help="W4 build: messages per wave")
    parser.add_argument("--actors", type=int, default=1_000_000, help="W5 actors")
    parser.add_argument("--max-active", type=int, default=10_000, help="W5 max_active")
    parser.add_argument("--concurrency", type=int, default=1000, help="W5 asks in flight")
    parser.add_argument(
        "--profile", nargs="?", const="W6", choices=WORKLOADS, help="profile one workload"
    )
    parser.add_argument("--dir", help="directory for the databases (default: a temp dir)")
    parser.add_argument(
        "--gc-threshold",
        help="gc.set_threshold(...) before running, e.g. 50000,20,100 (default: Python's)",
    )
    args = parser.parse_args()
    if args.gc_threshold:
        gc.set_threshold(*(int(v) for v in args.gc_threshold.split(",")))
    selected = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = set(selected) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {sorted(unknown)}")
    if args.profile:
        selected = [args.profile]
    if len(selected) > 1:  # one process each: a peak RSS of its own, memory given back
        passed: list[str] = []
        skip = False
        for arg in sys.argv[1:]:
            if not skip and not arg.startswith("--only"):
                passed.append(arg)
            skip = arg == "--only"
        for name in selected:
            subprocess.run([sys.executable, __file__, *passed, "--only", name], check=True)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        run_one(selected[0], args, tmp)


if __name__ == "__main__":
    main()
