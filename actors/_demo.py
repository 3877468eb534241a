"""``perdure demo``: an order-fulfilment actor that survives its own crash.

The demo runs twice over one SQLite file. The first run is a child process that
kills itself with ``os._exit`` while the third step is in flight; the second run
opens the same file, recovers the order and completes it. Each step prints which
process ran it, so the output shows that the steps completed before the crash were
replayed from the journal, not run again.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import attrs

from ._actor import Actor, Retry, activity, query, signal
from ._context import Context
from ._system import ActorSystem

_CRASH_ENV = "PERDURE_DEMO_CRASH"


def _say(text: str) -> None:
    print(f"  [{'first' if os.environ.get(_CRASH_ENV) else 'second'} run] {text}", flush=True)


@activity(retry=Retry(max_attempts=3, initial=0.1))
async def reserve_stock(order_id: str) -> str:
    """Reserve the order's items (a stand-in for a call to an inventory service)."""
    _say(f"reserve_stock({order_id!r}) RAN")
    return "reserved 2 x widget"


@activity(retry=Retry(max_attempts=3, initial=0.1))
async def charge_card(order_id: str, cents: int) -> str:
    """Charge the customer (idempotent on the activity's key in a real system)."""
    _say(f"charge_card({order_id!r}, {cents}) RAN")
    return f"charged {cents / 100:.2f} EUR"


@activity
async def ship(order_id: str) -> str:
    """Hand the parcel to the carrier; the first run dies right here."""
    if os.environ.get(_CRASH_ENV):
        _say("ship() started ... and the process dies now (os._exit)")
        os._exit(1)
    _say(f"ship({order_id!r}) RAN")
    return "parcel 1Z999 handed to carrier"


class Order(Actor, name="demo.Order"):
    """An order: reserve, charge, wait for approval and a packing delay, ship."""

    approved_by: str = ""
    log: list[str] = attrs.Factory(list)

    async def run(self, ctx: Context, order_id: str, cents: int) -> list[str]:
        """Fulfil the order and return what happened, step by step."""
        self.log.append(await ctx.activity(reserve_stock, order_id))
        self.log.append(await ctx.activity(charge_card, order_id, cents))
        await ctx.wait_until(lambda: bool(self.approved_by), timeout=timedelta(days=1))
        self.log.append(f"approved by {self.approved_by}")
        await ctx.sleep(0.5)  # a durable timer: stored, re-armed after the crash
        self.log.append(await ctx.activity(ship, order_id))
        return self.log

    @signal
    def approve(self, by: str) -> None:
        """Approve the order for shipping."""
        self.approved_by = by

    @query
    def progress(self) -> list[str]:
        """What happened so far."""
        return list(self.log)


async def _run_once(db: Path) -> list[str] | None:
    async with ActorSystem.open(db, actors=[Order]) as system:
        order = await system.spawn(Order, "order-42", "order-42", 4999)
        progress = await order.query(Order.progress)
        _say(f"order-42 is {(await order.status()).value}; so far: {progress}")
        if len(progress) < 3:
            await order.signal(Order.approve, "alice")
            _say("signal approve('alice') journaled")
        result: list[str] = await order.result()
        return result


def demo(db: Path | None = None) -> int:
    """Run the demo: crash in a child process, then recover here. Return an exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        path = db or Path(tmp) / "demo.db"
        print(f"perdure demo: one order, journaled in {path}")
        print("first run (a separate process that will crash):")
        env = {**os.environ, _CRASH_ENV: "1"}
        child = subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "actors", "demo", "--db", str(path), "--once"],
            env=env,
            check=False,
        )
        print(f"  the first run's process died with exit code {child.returncode}")
        print("second run (recovers from the journal):")
        result = asyncio.run(_run_once(path))
        print("order-42 completed:")
        for line in result or []:
            print(f"  - {line}")
        print(
            "reserve_stock and charge_card ran once, in the first run: the second run "
            "replayed their journaled results; only ship ran again."
        )
    return 0


def demo_once(db: Path) -> int:
    """One run of the demo's system (the crashing first run uses this)."""
    asyncio.run(_run_once(db))
    return 0
