"""Supervision: crashes restart actors from their journal; poison messages are set aside.

Run it: ``python examples/supervision.py`` (writes ``supervision.db`` in the working
directory). It shows, with the ``actors`` log on:

1. a handler that crashes once (a transient fault in an activity): its turn is rolled
   back and the message handled again, so the stock is taken once;
2. a message that crashes its handler every time (a poison message): after the restart
   budget it goes to dead letters, the asker gets the error, the actor goes on;
3. a parent whose child fails: the child is TEMPORARY, so it is not restarted and the
   parent gets its error from ``child.result()``; a watch tells the parent it ended.
"""

from __future__ import annotations

import asyncio
import logging

import attrs

from actors import (
    Actor,
    ActorFailed,
    ActorSystem,
    Backoff,
    Context,
    RestartType,
    Retry,
    Supervision,
    Terminated,
    handler,
    query,
)

warm = False  # the outside world: a price service that fails its first call


def price_of(sku: str) -> int:
    """An activity: its first call fails, as a cold service would."""
    global warm  # noqa: PLW0603 - the example's injected fault
    if not warm:
        warm = True
        raise ConnectionError("price service not warm yet")
    return 3 if sku == "widget" else 5


@attrs.frozen
class Reserve:
    sku: str
    qty: int


class Inventory(Actor, name="shop.Inventory"):
    stock: int = 10
    reserved: list[str] = attrs.Factory(list)

    @handler
    async def reserve(self, ctx: Context, msg: Reserve) -> int:
        self.stock -= msg.qty  # rolled back if this turn crashes
        self.reserved.append(msg.sku)
        # Not retried here: its error escapes the handler, a crash; the retried turn
        # runs the activity anew.
        await ctx.activity(price_of, msg.sku, retry=Retry(max_attempts=1))
        if msg.qty < 0:
            raise ValueError(f"negative quantity {msg.qty}")  # crashes on every retry
        return self.stock

    @query
    def state(self) -> tuple[int, list[str]]:
        return self.stock, list(self.reserved)


class Payment(Actor, name="shop.Payment"):
    async def run(self, ctx: Context, amount: int) -> str:
        await ctx.sleep(0.1)
        if amount > 100:
            raise RuntimeError(f"card declined for {amount}")
        return f"paid {amount}"


class Checkout(Actor, name="shop.Checkout"):
    async def run(self, ctx: Context) -> list[str]:
        once = Supervision(restart=RestartType.TEMPORARY)  # never restarted
        small = await ctx.spawn(Payment, "pay-small", 20, supervision=once)
        large = await ctx.spawn(Payment, "pay-large", 500, supervision=once)
        ctx.watch(large)
        outcomes = [await small.result()]
        try:
            await large.result()
        except ActorFailed as error:
            outcomes.append(f"large payment failed: {error.error_message}")
        ended = await ctx.receive(Terminated)
        outcomes.append(f"watch: {ended.actor_id} {ended.status}")
        return outcomes


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="  log: %(message)s")
    quick = Supervision(backoff=Backoff(initial=0.05, max=0.2))
    async with ActorSystem.open(
        "supervision.db", actors=[Inventory, Payment, Checkout], supervision=quick
    ) as system:
        inventory = system.get(Inventory, "inventory")
        # Message ids make the asks idempotent: a second run gets the same replies.
        stock = await inventory.ask(Reserve("widget", 2), id="reserve-1")
        print("1. stock after reserving 2:", stock)
        print("   state:", await inventory.query(Inventory.state))
        try:
            await inventory.ask(Reserve("gadget", -1), id="reserve-2")
        except ActorFailed as error:
            print("2. poison message refused:", error.error_message)
        print("   dead letters:", [d.message for d in await system.dead_letters()])
        stock = await inventory.ask(Reserve("widget", 1), id="reserve-3")
        print("   stock after reserving 1:", stock)
        checkout = await system.spawn(Checkout, "checkout-1")
        print("3.", await checkout.result())


if __name__ == "__main__":
    asyncio.run(main())
