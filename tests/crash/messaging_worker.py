"""Child process for the messaging crash test: 100 actors pass chains of messages.

Usage: ``python messaging_worker.py DB LEDGER GENERATION``. It opens the system on DB
(recovering whatever a killed predecessor left) and starts every chain of ``PLAN``:
even chains with ``ask(id=f"chain-{c}")`` from outside, odd ones with
``tell(id=f"chain-{c}")``. Each hop is a ``Hop`` handled by a ``Node``, which records
it and forwards the next hop with ``ctx.get(Node, ...).ask`` or ``.tell`` as the plan
says (an ask adds the downstream reply to its own). Asks are sent again in every
generation (the same id never enqueues twice, and returns the first ask's reply); a
tell whose acknowledgement LEDGER holds is never sent again, so losing it would leave
its chain unfinished. LEDGER gets ``ack chain generation`` once a tell returned and
``reply chain value generation`` once an ask returned. Snapshots are frequent and only
``MAX_ACTIVE`` actors stay in memory, so actors are passivated and reactivated all the
time.

Hops report to ten ``Sink`` actors (see ``reports``). Once all reports are in (asking
only the sinks, so that waiting wakes no node), stdout gets one ``state`` line (JSON)
per node and per sink, then ``done``. If that takes longer than ``LIMIT`` seconds, it
exits with code 3 and lists on stderr the chains unfinished and the inbox entries still
waiting (an entry that waits while nothing runs was lost to the actor).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys

import attrs

from actors import Actor, ActorNotFoundError, ActorSystem, Context, handler, query

NODES = 100
CHAINS = 100
TTL = 5
LIMIT = 15.0
SNAPSHOT_EVERY = 6
MAX_ACTIVE = 30
LEDGER = ""
GENERATION = 0


@attrs.frozen
class Step:
    """One planned hop: the node that handles it, what it adds, how it forwards."""

    node: int
    amount: int
    ask: bool
    """Whether this hop forwards the next one with ask (else tell); False at the end."""


def plan_chain(chain: int) -> list[Step]:
    """The hops of ``chain``, steps 0..TTL, a pure function of the chain number.

    An ask only goes to a node with a greater number, so no two handlers ever wait on
    each other (a node takes one message at a time); a tell goes anywhere.
    """
    rng = random.Random(chain)
    asking = chain % 2 == 0
    node = chain * 37 % NODES  # with CHAINS == NODES, every node heads one chain
    steps: list[Step] = []
    for step in range(TTL + 1):
        ask = step < TTL and node < NODES - 1 and rng.random() < (0.8 if asking else 0.3)
        steps.append(Step(node=node, amount=rng.randrange(1, 1000), ask=ask))
        node = rng.randrange(node + 1, min(NODES, node + 25)) if ask else rng.randrange(NODES)
    return steps


PLAN = {chain: plan_chain(chain) for chain in range(CHAINS)}


def expected_reply(chain: int, step: int = 0) -> int:
    """What the handler of hop ``step`` of ``chain`` returns."""
    hop = PLAN[chain][step]
    return hop.amount + (expected_reply(chain, step + 1) if hop.ask else 0)


@attrs.frozen
class Hop:
    chain: int
    step: int
    amount: int


@attrs.frozen
class Done:
    chain: int
    step: int


class Node(Actor, name="crash.Node"):
    seen: list[str] = attrs.Factory(list)
    """``chain:step`` of every hop handled, in order."""
    total: int = 0
    """The sum of the amounts of the hops handled."""
    replies: list[str] = attrs.Factory(list)
    """``chain:step=value``: the reply this node's ask for hop ``step`` got."""

    @handler
    async def hop(self, ctx: Context, msg: Hop) -> int:
        self.seen.append(f"{msg.chain}:{msg.step}")
        self.total += msg.amount
        sink = ctx.get(Sink, sink_of(msg.chain))
        if msg.step == TTL:
            await sink.tell(Done(msg.chain, msg.step))
            return msg.amount
        plan = PLAN[msg.chain]
        target = ctx.get(Node, f"n{plan[msg.step + 1].node}")
        forward = Hop(msg.chain, msg.step + 1, plan[msg.step + 1].amount)
        if not plan[msg.step].ask:
            await target.tell(forward)
            return msg.amount
        reply: int = await target.ask(forward)
        self.replies.append(f"{msg.chain}:{msg.step + 1}={reply}")
        await sink.tell(Done(msg.chain, msg.step))
        return msg.amount + reply

    @query
    def state(self) -> dict[str, object]:
        return {"seen": list(self.seen), "total": self.total, "replies": list(self.replies)}


class Sink(Actor, name="crash.Sink"):
    """Where hops report their end, so that waiting for the end wakes no ``Node``.

    A chain's last hop reports, and so does every hop that asked, once it has its reply:
    when all reports are in, every hop was handled and every reply came back.
    """

    done: list[str] = attrs.Factory(list)
    """``chain:step`` of every report, in order."""

    @handler
    async def finished(self, ctx: Context, msg: Done) -> None:
        self.done.append(f"{msg.chain}:{msg.step}")

    @query
    def reports(self) -> list[str]:
        return list(self.done)


SINKS = 10
"""Sinks ``sink0``...: one would take every report one at a time, slowing the test."""


def sink_of(chain: int) -> str:
    return f"sink{chain % SINKS}"


def reports(chain: int) -> list[str]:
    """The ``chain:step`` reports that ``chain`` makes when it is complete."""
    steps = PLAN[chain]
    return [f"{chain}:{step}" for step, hop in enumerate(steps) if hop.ask or step == TTL]


def record(line: str) -> None:
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def acked_tells() -> set[int]:
    if not os.path.exists(LEDGER):
        return set()
    with open(LEDGER) as ledger:
        return {int(line.split()[1]) for line in ledger if line.startswith("ack ")}


async def send(system: ActorSystem, chain: int, acked: set[int]) -> None:
    await asyncio.sleep(0.01 * (chain % 20))  # spread the sends over the first 0.2 s
    head = PLAN[chain][0]
    ref = system.get(Node, f"n{head.node}")
    message = Hop(chain, 0, head.amount)
    if chain % 2 == 0:
        value = await ref.ask(message, id=f"chain-{chain}")
        record(f"reply {chain} {value} {GENERATION}")
    elif chain not in acked:
        await ref.tell(message, id=f"chain-{chain}")
        record(f"ack {chain} {GENERATION}")


async def sink_state(system: ActorSystem, sink: str) -> list[str]:
    try:
        done: list[str] = await system.get(Sink, sink).query(Sink.reports)
    except ActorNotFoundError:  # no report reached it yet
        return []
    return done


async def finished(system: ActorSystem) -> set[int]:
    """The chains all of whose reports are in."""
    done: set[str] = set()
    for sink in range(SINKS):
        done.update(await sink_state(system, f"sink{sink}"))
    return {chain for chain in PLAN if done.issuperset(reports(chain))}


async def stuck(system: ActorSystem) -> str:
    """The chains unfinished and every inbox entry waiting, read from the journal only."""
    left = sorted(set(PLAN) - await finished(system))
    lines = [f"generation {GENERATION}: chains unfinished after {LIMIT}s: {left}"]
    for stream in await system.journal.pending_streams():
        keys = [message.key for message in await system.journal.pending(stream)]
        lines.append(f"{stream}: inbox entries still waiting: {keys}")
    return "\n".join(lines) + "\n"


async def main(db: str) -> None:
    acked = acked_tells()
    async with ActorSystem.open(
        db, actors=[Node, Sink], snapshot_every=SNAPSHOT_EVERY, max_active=MAX_ACTIVE
    ) as system:
        try:
            async with asyncio.timeout(LIMIT):
                await asyncio.gather(*(send(system, chain, acked) for chain in PLAN))
                while len(await finished(system)) < CHAINS:  # noqa: ASYNC110 - a query, not an event
                    await asyncio.sleep(0.02)
        except TimeoutError:
            sys.stderr.write(await stuck(system))
            sys.stderr.flush()
            os._exit(3)
        for node in range(NODES):
            state = await system.get(Node, f"n{node}").query(Node.state)
            os.write(1, f"state n{node} {json.dumps(state)}\n".encode())
        for sink in range(SINKS):
            done = await sink_state(system, f"sink{sink}")
            os.write(1, f"state sink{sink} {json.dumps(done)}\n".encode())
    os.write(1, b"done\n")


if __name__ == "__main__":
    LEDGER = sys.argv[2]
    GENERATION = int(sys.argv[3])
    asyncio.run(main(sys.argv[1]))
