"""The README's message example: accounts as virtual actors exchanging asks.

Run it: ``python examples/bank.py`` (writes ``bank.db`` in the working directory;
run it again and the balances carry on, while the same message ids are not redone).
"""

from __future__ import annotations

import asyncio

import attrs

from actors import Actor, ActorFailed, ActorSystem, Context, Rejected, handler, query


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class Transfer:
    to: str
    amount: int


class Account(Actor, name="bank.Account"):
    balance: int = 0

    @handler
    async def deposit(self, ctx: Context, msg: Deposit) -> int:
        self.balance += msg.amount
        return self.balance  # answers an ask

    @handler
    async def transfer(self, ctx: Context, msg: Transfer) -> int:
        if msg.amount > self.balance:
            raise Rejected("insufficient funds")  # the asker gets ActorFailed; no crash
        self.balance -= msg.amount
        balance: int = await ctx.get(Account, msg.to).ask(Deposit(msg.amount))  # journaled
        return balance

    @query
    def get_balance(self) -> int:
        return self.balance


async def main() -> None:
    async with ActorSystem.open("bank.db", actors=[Account]) as system:
        alice = system.get(Account, "alice")  # no I/O; activated on demand
        await alice.tell(Deposit(10), id="deposit-1")  # durable; the same id enqueues once
        print("bob after transfer:", await alice.ask(Transfer("bob", 4), id="transfer-1"))
        try:
            await alice.ask(Transfer("bob", 1000))
        except ActorFailed as error:
            print("refused:", error.error_message)
        print("alice:", await alice.query(Account.get_balance))
        print("bob:", await system.get(Account, "bob").query(Account.get_balance))


if __name__ == "__main__":
    asyncio.run(main())
