"""The README's example: an order workflow with an activity, a signal and a timer.

Run it: ``python examples/quickstart.py`` (writes ``quickstart.db`` in the working
directory; run it again and the finished order is found, not redone).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from actors import Actor, ActorSystem, Context, Retry, Status, activity, query, signal


@activity(retry=Retry(max_attempts=5, initial=0.2, backoff=2.0))
async def reserve_stock(order_id: str) -> str:
    # Real I/O lives in activities: HTTP calls, database writes, emails...
    return f"reserved stock for {order_id}"


class Order(Actor, name="examples.Order"):
    approved: bool = False
    steps: int = 0

    async def run(self, ctx: Context, order_id: str) -> str:
        await ctx.activity(reserve_stock, order_id)  # journaled: never runs twice
        self.steps += 1
        if not await ctx.wait_until(lambda: self.approved, timeout=timedelta(days=3)):
            return "expired"
        await ctx.sleep(0.1)  # a durable timer (hours work the same)
        return "shipped"

    @signal
    def approve(self, by: str) -> None:
        self.approved = True

    @query
    def progress(self) -> int:
        return self.steps


async def main() -> None:
    async with ActorSystem.open("quickstart.db", actors=[Order]) as system:
        order = await system.spawn(Order, "order-42", "order-42")  # idempotent on the id
        if await order.status() is Status.RUNNING:
            await order.signal(Order.approve, "alice")
        print("steps done:", await order.query(Order.progress))
        print("result:", await order.result())


if __name__ == "__main__":
    asyncio.run(main())
