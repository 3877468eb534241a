"""Child process for the actor crash test: runs 50 actors until done or killed.

Usage: ``python actor_worker.py DB LEDGER GENERATION``. It opens the system on DB
(recovering whatever a killed predecessor left), spawns the 50 actors (idempotent:
existing ones are found, not doubled), and sends each actor its one signal once a
query shows it has none yet. Every activity run appends ``actor step generation`` to
LEDGER before returning; ``signal actor generation`` is printed once a signal is
acknowledged, ``result actor value`` once an actor is done. Exits when all are done.
"""

from __future__ import annotations

import asyncio
import os
import sys

import attrs

from actors import Actor, ActorRef, ActorSystem, Context, activity_info, query, signal

ACTORS = 50
STEPS = 5
LEDGER = ""
GENERATION = 0


async def step(actor_id: str, index: int) -> str:
    info = activity_info()
    assert info.idempotency_key.startswith(actor_id)
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{actor_id} {index} {GENERATION}\n".encode())
    finally:
        os.close(fd)
    await asyncio.sleep(0.005)
    return f"{index}@{GENERATION}"


class Crashy(Actor, name="crash.Crashy"):
    done: list[str] = attrs.Factory(list)
    signals: int = 0

    async def run(self, ctx: Context, actor_id: str) -> dict[str, object]:
        for index in range(STEPS):
            self.done.append(await ctx.activity(step, actor_id, index))
            if index == 2:
                await ctx.sleep(0.5)
        await ctx.wait_until(lambda: self.signals > 0)
        return {"steps": list(self.done), "signals": self.signals}

    @signal
    def poke(self) -> None:
        self.signals += 1

    @query
    def signalled(self) -> bool:
        return self.signals > 0


async def main(db: str) -> None:
    async with ActorSystem.open(db, actors=[Crashy]) as system:
        refs = [await system.spawn(Crashy, f"a{i}", f"a{i}") for i in range(ACTORS)]

        async def drive(ref: ActorRef[Crashy]) -> None:
            if not await ref.query(Crashy.signalled):
                await asyncio.sleep(0.05 * (hash(ref.actor_id) % 10))
                await ref.signal(Crashy.poke)
                os.write(1, f"signal {ref.actor_id} {GENERATION}\n".encode())
            result = await ref.result()
            os.write(1, f"result {ref.actor_id} {result!r}\n".encode())

        await asyncio.gather(*(drive(ref) for ref in refs))


if __name__ == "__main__":
    LEDGER = sys.argv[2]
    GENERATION = int(sys.argv[3])
    asyncio.run(main(sys.argv[1]))
