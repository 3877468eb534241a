"""Workflow benchmarks W1-W3 on the SQLite default with synchronous=FULL.

- W1: 200 actors started at once, each running 10 sequential trivial activities:
  actors/s and activities/s.
- W2: start to result of a 1-activity actor, one at a time, p50/p99 ms over 200 runs.
- W3: an actor waiting in ``wait_until`` on a signal: signal sent to result received,
  p50/p99 ms over 100 runs.

Run: ``python benchmarks/workflows.py`` (``--runs N``: median of N runs of W1).
Prints one JSON line per workload. ``--profile`` prints where W1's time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import statistics
import tempfile
import time

from actors import Actor, ActorSystem, Context, signal


async def step(i: int) -> int:
    return i + 1


class TenSteps(Actor, name="bench.TenSteps"):
    async def run(self, ctx: Context) -> int:
        total = 0
        for i in range(10):
            total += await ctx.activity(step, i)
        return total


class OneStep(Actor, name="bench.OneStep"):
    async def run(self, ctx: Context) -> int:
        return await ctx.activity(step, 1)


class Waiter(Actor, name="bench.Waiter"):
    go: bool = False

    async def run(self, ctx: Context) -> str:
        await ctx.wait_until(lambda: self.go)
        return "done"

    @signal
    def release(self) -> None:
        self.go = True


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def w1(path: str, actors: int = 200) -> dict[str, float]:
    async with ActorSystem.open(path) as system:
        start = time.perf_counter()
        refs = await asyncio.gather(*(system.spawn(TenSteps, f"w1-{i}") for i in range(actors)))
        results = await asyncio.gather(*(ref.result() for ref in refs))
        elapsed = time.perf_counter() - start
    assert results == [55] * actors
    return {"actors_per_s": actors / elapsed, "activities_per_s": actors * 10 / elapsed}


async def w2(path: str, runs: int = 200) -> dict[str, float]:
    latencies: list[float] = []
    async with ActorSystem.open(path) as system:
        for i in range(runs):
            start = time.perf_counter()
            ref = await system.spawn(OneStep, f"w2-{i}")
            assert await ref.result() == 2
            latencies.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)}


async def w3(path: str, runs: int = 100) -> dict[str, float]:
    latencies: list[float] = []
    async with ActorSystem.open(path) as system:
        for i in range(runs):
            ref = await system.spawn(Waiter, f"w3-{i}")
            start = time.perf_counter()
            await ref.signal(Waiter.release)
            assert await ref.result() == "done"
            latencies.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": percentile(latencies, 0.5), "p99_ms": percentile(latencies, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="median of this many W1 runs")
    parser.add_argument("--profile", action="store_true", help="profile one W1 run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            asyncio.run(w1(os.path.join(tmp, "profile.db")))
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
            return
        w1_runs = [asyncio.run(w1(os.path.join(tmp, f"w1-{r}.db"))) for r in range(args.runs)]
        print(
            json.dumps(
                {
                    "bench": "W1",
                    "actors_per_s": round(statistics.median(r["actors_per_s"] for r in w1_runs), 1),
                    "activities_per_s": round(
                        statistics.median(r["activities_per_s"] for r in w1_runs), 1
                    ),
                    "actors": 200,
                    "activities_per_actor": 10,
                    "runs": args.runs,
                    "synchronous": "FULL",
                }
            )
        )
        result = asyncio.run(w2(os.path.join(tmp, "w2.db")))
        print(
            json.dumps(
                {
                    "bench": "W2",
                    **{k: round(v, 3) for k, v in result.items()},
                    "runs": 200,
                    "synchronous": "FULL",
                }
            )
        )
        result = asyncio.run(w3(os.path.join(tmp, "w3.db")))
        print(
            json.dumps(
                {
                    "bench": "W3",
                    **{k: round(v, 3) for k, v in result.items()},
                    "runs": 100,
                    "synchronous": "FULL",
                }
            )
        )


if __name__ == "__main__":
    main()
