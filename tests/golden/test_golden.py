"""Golden histories: journals written by an earlier perdure must replay unchanged.

``histories_v1.json`` holds the stored events (base64 of the exact bytes) of a few
actors, written by history format 1. Each test replays one of them with today's code
and checks the actor comes out where it was, with no nondeterminism. A change to the
replay order or the stored format that breaks these must come with a new format
number and a new golden file, never by editing this one.

Regenerate only for a new format: ``python tests/golden/test_golden.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from datetime import timedelta
from pathlib import Path

import attrs

from actors import Actor, ActorSystem, Context, activity, handler, signal
from actors._events import FORMAT, Completed
from actors._recovery import rebuild
from actors._replay import Engine
from actors.testing import VirtualClock
from journal.memory import MemoryJournal
from snapshots.memory import MemorySnapshotStore

GOLDEN = Path(__file__).with_name("histories_v1.json")


@activity(name="golden.charge")
async def charge(order_id: str, cents: int) -> str:
    return f"charged {order_id} {cents}"


@attrs.frozen
class Add:
    amount: int


class GoldenOrder(Actor, name="golden.Order"):
    approved_by: str = ""
    log: list[str] = attrs.Factory(list)

    async def run(self, ctx: Context, order_id: str) -> list[str]:
        self.log.append(await ctx.activity(charge, order_id, 4999))
        if ctx.patched("golden-reminder"):
            self.log.append("patched")
        ok = await ctx.wait_until(lambda: bool(self.approved_by), timeout=timedelta(days=1))
        self.log.append(f"approved={ok} by {self.approved_by}")
        await ctx.sleep(timedelta(hours=1))
        self.log.append(str(ctx.uuid4()))
        return self.log

    @signal
    def approve(self, by: str) -> None:
        self.approved_by = by


class GoldenCounter(Actor, name="golden.Counter"):
    total: int = 0

    @handler
    async def add(self, ctx: Context, msg: Add) -> int:
        self.total += msg.amount
        return self.total


async def record() -> dict[str, list[str]]:
    journal = MemoryJournal()
    async with ActorSystem(
        journal=journal, snapshots=MemorySnapshotStore(), clock=VirtualClock()
    ) as system:
        order = await system.spawn(GoldenOrder, "order-1", "order-1")
        await order.signal(GoldenOrder.approve, "alice")
        await order.result()
        counter = system.get(GoldenCounter, "counter-1")
        for amount in (1, 2, 3):
            await counter.ask(Add(amount))
    return {
        stream: [base64.b64encode(e.data).decode() for e in await journal.read(stream)]
        for stream in ("order-1", "counter-1")
    }


async def replay(stream: str, cls: type[Actor]) -> tuple[Engine, object]:
    """Replay the golden stream; return the engine and the recorded run's result."""
    histories = json.loads(GOLDEN.read_text())
    assert histories["format"] == FORMAT
    journal = MemoryJournal()
    events = [base64.b64decode(e) for e in histories["streams"][stream]]
    await journal.append(stream, 0, events)
    system = ActorSystem(journal=journal, snapshots=MemorySnapshotStore())  # for its codec
    system.register(cls)
    rebuilt = await rebuild(stream, cls, journal, MemorySnapshotStore(), system.codec)
    engine, seq = rebuilt.engine, rebuilt.seq
    assert seq == len(events)
    last = system.codec.decode(events[-1])
    recorded = system.codec.decode(last.result) if isinstance(last, Completed) else None
    return engine, recorded


def test_a_format_1_workflow_history_replays_to_the_same_end() -> None:
    engine, recorded = asyncio.run(replay("order-1", GoldenOrder))
    order = engine.actor
    assert isinstance(order, GoldenOrder)
    assert isinstance(engine.outcome, Completed)
    assert order.log[:3] == ["charged order-1 4999", "patched", "approved=True by alice"]
    assert order.log == recorded  # uuid4() included: the same value on replay


def test_a_format_1_message_history_replays_to_the_same_state() -> None:
    engine, _ = asyncio.run(replay("counter-1", GoldenCounter))
    counter = engine.actor
    assert isinstance(counter, GoldenCounter)
    assert engine.quiescent
    assert counter.total == 6


if __name__ == "__main__":
    if "--force" not in sys.argv and GOLDEN.exists():
        sys.exit(f"{GOLDEN} exists: golden files are never rewritten (use a new format)")
    streams = asyncio.run(record())
    GOLDEN.write_text(json.dumps({"format": FORMAT, "streams": streams}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
