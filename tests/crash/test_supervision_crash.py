"""SIGKILL a three-level supervision tree while its workers crash and restart, then check.

The tree: a ``Root`` workflow spawns three ``Team`` workflows, each of which spawns three
message-driven ``Worker`` children under its own strategy (one-for-one, one-for-all,
rest-for-one) with a short backoff. The driver sends every worker ten ``Work`` messages,
half by ``ask``, half by ``tell``, each with an id so it can be sent again after a kill.
Seven in ten hit a transient fault the first time they are handled in a process (an
activity that fails; an activity that reports a service down, before or after a durable
sleep): the handler has already changed the state when it crashes, so its turn must be
rolled back, the worker (and, per strategy, its siblings) restarted after the backoff,
and the message handled again. Most kills land while a restart is pending. The root's
own policy restarts nothing, so a worker that a recovery detached from its team would
fail at its first fault. After the last, unkilled run, and again after a clean restart,
the states and the ledger the driver writes prove:

- every message was handled exactly once, by its worker: no rolled-back turn left a
  trace (the ``seen`` lists and the totals), no accepted message was lost;
- every ask got the reply of the turn that counted (its place in ``seen``), the same in
  every generation that printed it, and every tell was acknowledged once;
- the tree is as the journal says: each worker's parent is its team, each team's is the
  root; the teams completed and their workers were terminated with them (no worker runs
  under an ended parent); the root's result is the tallies the teams asked their
  workers for, which match the workers' states;
- no supervisor gave up and no driver failed: no dead letter and no error logged, in
  any run (two live runners for one actor, say, show up as a failed commit);
- a clean restart changes nothing.

This module is also the worker: ``python -m tests.crash.test_supervision_crash DB
LEDGER GENERATION`` opens the system on DB (recovering what a killed predecessor left),
drives the workload and prints the final states; each restart the supervisor logs is
printed as it happens, so a killed run's output shows the restarts still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import random
import subprocess
import sys
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest

from actors import (
    Actor,
    ActorNotFoundError,
    ActorNotRunningError,
    ActorRef,
    ActorSystem,
    Backoff,
    Context,
    Retry,
    Status,
    Strategy,
    Supervision,
    handler,
    query,
)
from actors import signal as actor_signal

from ._rounds import generations, kill_in_rounds, start_module

MODULE = "tests.crash.test_supervision_crash"
KILLS = 22
TEAMS = 3
WORKERS = 3
"""Workers per team."""
MESSAGES = 10
"""Messages per worker."""
STRATEGIES = (Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE)
WORKER_POLICY = {
    strategy: Supervision(
        strategy=strategy,
        # A team's budget covers all its workers; each fault costs one restart, so
        # the budget is wide: a message that reached dead letters would be lost.
        max_restarts=50,
        period=0.5,
        backoff=Backoff(initial=0.05, max=0.2),
    )
    for strategy in STRATEGIES
}
TEAM_POLICY = Supervision(backoff=Backoff(initial=0.05, max=0.2))
ROOT_POLICY = Supervision(max_restarts=0)
"""The root and the teams never crash, so the root restarts nothing: a worker that a
recovery detached from its team (supervised by the root) fails at its first fault."""
LIMIT = 30.0
"""Seconds a run may take before it gives up and lists what is still waiting."""
LEDGER = ""
GENERATION = 0


# The workload -------------------------------------------------------------------------


class Fault(enum.Enum):
    """How handling a message goes wrong the first time in a process."""

    NONE = "none"
    ACTIVITY = "activity"
    """An activity fails (no retry), so the handler raises ``ActivityError``."""
    DOWN = "down"
    """An activity reports a service down and the handler raises."""
    SLOW_DOWN = "slow_down"
    """As ``DOWN``, after a durable sleep: the turn spans a timer."""


@attrs.frozen(kw_only=True)
class Work:
    key: str
    amount: int
    fault: Fault


@attrs.frozen(kw_only=True)
class Tally:
    """A team's request for a worker's count and total, once the work is done."""


@attrs.frozen(kw_only=True)
class Planned:
    worker: str
    work: Work
    ask: bool


def team_id(team: int) -> str:
    return f"team{team}"


def workers_of(team: int) -> list[str]:
    return [f"w{team}.{index}" for index in range(WORKERS)]


def plan_worker(worker: str) -> list[Planned]:
    """The messages ``worker`` gets, a pure function of its id."""
    rng = random.Random(worker)
    faults = list(Fault)
    return [
        Planned(
            worker=worker,
            work=Work(key=f"{worker}-m{i}", amount=rng.randrange(1, 1000), fault=faults[i % 4]),
            ask=i % 2 == 0,
        )
        for i in range(MESSAGES)
    ]


PLAN = {worker: plan_worker(worker) for team in range(TEAMS) for worker in workers_of(team)}


# The tree -----------------------------------------------------------------------------

HEALED: set[str] = set()
"""Keys whose fault fired in this process: the next try succeeds (a transient fault)."""


class TransientFaultError(Exception):
    """Raised the first time a message is handled in a process."""


def first_try(key: str) -> bool:
    first = key not in HEALED
    HEALED.add(key)
    return first


async def flaky(key: str) -> None:
    """An activity that fails the first time it runs for ``key`` in this process."""
    if first_try(key):
        raise TransientFaultError(key)


async def service_up(key: str) -> bool:
    """An activity saying whether the service ``key`` needs is up: not at first."""
    return not first_try(key)


class Worker(Actor, name="crash.Worker"):
    seen: list[str] = attrs.Factory(list)
    """The key of every message handled, in order."""
    total: int = 0
    """The sum of the amounts of the messages handled."""

    @handler
    async def work(self, ctx: Context, msg: Work) -> int:
        # The state changes before the fault, so a turn not rolled back would show.
        self.seen.append(msg.key)
        self.total += msg.amount
        if msg.fault is Fault.ACTIVITY:
            await ctx.activity(flaky, msg.key, retry=Retry(max_attempts=1))
        elif msg.fault is not Fault.NONE:
            if msg.fault is Fault.SLOW_DOWN:
                await ctx.sleep(0.02)
            if not await ctx.activity(service_up, msg.key):
                raise TransientFaultError(msg.key)
        return len(self.seen)

    @handler
    async def tally(self, ctx: Context, msg: Tally) -> dict[str, int]:
        return {"handled": len(self.seen), "total": self.total}

    @query
    def state(self) -> dict[str, object]:
        return {"seen": list(self.seen), "total": self.total}


class Team(Actor, name="crash.Team"):
    closing: bool = False

    async def run(self, ctx: Context, team: int) -> dict[str, dict[str, int]]:
        policy = WORKER_POLICY[STRATEGIES[team]]
        workers = [await ctx.spawn(Worker, w, supervision=policy) for w in workers_of(team)]
        await ctx.wait_until(lambda: self.closing)
        return {ref.actor_id: await ref.ask(Tally()) for ref in workers}

    @actor_signal
    def close(self) -> None:
        self.closing = True


class Root(Actor, name="crash.Root"):
    async def run(self, ctx: Context) -> dict[str, dict[str, dict[str, int]]]:
        teams = [
            await ctx.spawn(Team, team_id(t), t, supervision=TEAM_POLICY) for t in range(TEAMS)
        ]
        return {ref.actor_id: await ref.result() for ref in teams}


# The worker process -------------------------------------------------------------------


def write(line: str) -> None:
    os.write(1, f"{line}\n".encode())  # unbuffered: a kill keeps what was written


def record(line: str) -> None:
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class Episodes(logging.Handler):
    """Print each restart's start and end, and every error logged.

    A restart starts with a warning that has the restart's ``attempt`` and ``delay``,
    and ends with an info record with its ``attempt`` (a sibling restarted with it has
    none).
    """

    def emit(self, record: logging.LogRecord) -> None:
        actor = getattr(record, "actor_id", None)
        attempt = getattr(record, "attempt", None)
        if record.levelno >= logging.ERROR:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            write(f"error {json.dumps(text)}")
        elif record.levelno == logging.WARNING and hasattr(record, "delay"):
            write(f"restart {actor}")
        elif record.levelno == logging.INFO and attempt is not None:
            write(f"restarted {actor}")


def acked_tells() -> set[str]:
    if not os.path.exists(LEDGER):
        return set()
    with open(LEDGER) as ledger:
        return {line.split()[1] for line in ledger if line.startswith("ack ")}


async def spawned(system: ActorSystem, worker: str) -> ActorRef[Worker]:
    """The worker's ref once its team has spawned it.

    A message sent to it before would create it as a top-level actor.
    """
    ref = system.get(Worker, worker)
    while True:
        try:
            await ref.status()
        except ActorNotFoundError:
            await asyncio.sleep(0.01)
        else:
            return ref


async def send(ref: ActorRef[Worker], planned: Planned, acked: set[str]) -> None:
    key = planned.work.key
    if planned.ask:
        reply = await ref.ask(planned.work, id=key)
        record(f"reply {key} {reply} {GENERATION}")
    elif key not in acked:
        await ref.tell(planned.work, id=key)
        record(f"ack {key} {GENERATION}")


async def drive_team(system: ActorSystem, team: int, acked: set[str]) -> None:
    async def drive_worker(worker: str) -> None:
        ref = await spawned(system, worker)
        await asyncio.gather(*(send(ref, planned, acked) for planned in PLAN[worker]))

    await asyncio.gather(*(drive_worker(worker) for worker in workers_of(team)))
    with contextlib.suppress(ActorNotRunningError):  # it closed in an earlier run
        await system.get(Team, team_id(team)).signal(Team.close)


async def place(system: ActorSystem, ref: ActorRef[Any]) -> dict[str, object]:
    """An actor's status and its parent, as its stream says."""
    info = await system.journal.info(ref.actor_id)
    assert info is not None
    assert info.metadata is not None
    meta = system.codec.decode(info.metadata)
    return {"status": (await ref.status()).value, "parent": getattr(meta, "parent", "?")}


async def report(system: ActorSystem, root: ActorRef[Root]) -> None:
    write(f"result {json.dumps(await root.result())}")
    write(f"actor root {json.dumps(await place(system, root))}")
    for team in range(TEAMS):
        ref = system.get(Team, team_id(team))
        write(f"actor {ref.actor_id} {json.dumps(await place(system, ref))}")
    for worker in PLAN:
        worker_ref = system.get(Worker, worker)
        found = await place(system, worker_ref)
        found["state"] = await worker_ref.query(Worker.state)
        write(f"actor {worker} {json.dumps(found)}")
    letters = [f"{letter.actor_id}/{letter.key}" for letter in await system.dead_letters()]
    write(f"dead {json.dumps(letters)}")


async def main(db: str) -> None:
    actors_logger = logging.getLogger("actors")
    actors_logger.setLevel(logging.INFO)
    actors_logger.addHandler(Episodes())
    acked = acked_tells()
    async with ActorSystem.open(
        db, actors=[Root, Team, Worker], snapshot_every=4, supervision=ROOT_POLICY
    ) as system:
        try:
            async with asyncio.timeout(LIMIT):
                root = await system.spawn(Root, "root")
                await asyncio.gather(*(drive_team(system, t, acked) for t in range(TEAMS)))
                await root.result()
        except TimeoutError:
            waiting = [
                f"{stream}: {[m.key for m in await system.journal.pending(stream)]}"
                for stream in await system.journal.pending_streams()
            ]
            sys.stderr.write(f"generation {GENERATION}: still waiting after {LIMIT}s: {waiting}\n")
            sys.stderr.flush()
            os._exit(3)
        await report(system, root)
    write("done")


# The test -----------------------------------------------------------------------------


@attrs.define
class Run:
    """What one run of the worker printed."""

    result: object = None
    actors: dict[str, dict[str, object]] = attrs.Factory(dict)
    dead: list[str] = attrs.Factory(list)
    errors: list[str] = attrs.Factory(list)
    restarts: Counter[str] = attrs.Factory(Counter)
    """Restarts begun minus restarts done, per actor."""
    done: bool = False

    @classmethod
    def parse(cls, out: bytes) -> Run:
        run = cls()
        for line in out.decode().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "result":
                run.result = json.loads(rest)
            elif kind == "actor":
                actor, _, found = rest.partition(" ")
                run.actors[actor] = json.loads(found)
            elif kind == "dead":
                run.dead = json.loads(rest)
            elif kind == "error":
                run.errors.append(json.loads(rest))
            elif kind == "restart":
                run.restarts[rest] += 1
            elif kind == "restarted":
                run.restarts[rest] -= 1
            elif kind == "done":
                run.done = True
        return run

    @property
    def pending_restarts(self) -> list[str]:
        return sorted(actor for actor, open_ in self.restarts.items() if open_ > 0)


def check_tree(run: Run) -> None:
    """The final run's report: states, tree and result as the workload implies."""
    assert run.done
    assert run.dead == [], f"messages went to dead letters: {run.dead}"
    actors = dict(run.actors)
    assert actors.pop("root") == {"status": Status.COMPLETED.value, "parent": None}
    tallies: dict[str, dict[str, dict[str, int]]] = {}
    for team in range(TEAMS):
        found = actors.pop(team_id(team))
        assert found == {"status": Status.COMPLETED.value, "parent": "root"}, team_id(team)
        tallies[team_id(team)] = {}
        for worker in workers_of(team):
            found = actors.pop(worker)
            assert found["parent"] == team_id(team), f"{worker} has another parent: {found}"
            # Its team completed, so it was stopped with it.
            assert found["status"] == Status.TERMINATED.value, f"{worker} outlived its team"
            state = found["state"]
            assert isinstance(state, dict)
            seen = state["seen"]
            assert isinstance(seen, list)
            twice = sorted(key for key, count in Counter(seen).items() if count > 1)
            assert not twice, f"{worker} counted {twice} twice: a rolled-back turn left a trace"
            expected = [planned.work for planned in PLAN[worker]]
            assert sorted(seen) == sorted(work.key for work in expected), f"{worker} lost mail"
            total = sum(work.amount for work in expected)
            assert state["total"] == total, f"{worker} added an amount twice or not at all"
            tallies[team_id(team)][worker] = {"handled": len(seen), "total": total}
    assert not actors, f"unexpected actors: {sorted(actors)}"
    assert run.result == tallies, "the root's result is not what the workers hold"


def check_ledger(ledger: Path, final: Run) -> None:
    """Each ask got its turn's reply, always the same; each tell was acknowledged once."""
    replies: dict[str, set[int]] = defaultdict(set)
    acks: Counter[str] = Counter()
    for line in ledger.read_text().splitlines():
        kind, key, *rest = line.split()
        if kind == "reply":
            replies[key].add(int(rest[0]))
        else:
            acks[key] += 1
    for worker, planned_list in PLAN.items():
        state = final.actors[worker]["state"]
        assert isinstance(state, dict)
        seen = state["seen"]
        assert isinstance(seen, list)
        for planned in planned_list:
            key = planned.work.key
            if planned.ask:
                assert replies[key] == {seen.index(key) + 1}, f"{key}: replies {replies[key]}"
            else:
                # A tell that returned is never sent again; one whose ack a kill cut
                # off is sent again: one ack in all.
                assert acks[key] == 1, f"{key}: the tell was acknowledged {acks[key]} times"


def start(db: Path, ledger: Path, generation: int) -> subprocess.Popen[bytes]:
    return start_module(MODULE, db, ledger, generation)


def run_round(tmp: Path, rng: random.Random, max_kills: int, *, mid_restart: list[bool]) -> int:
    """Kill the worker at random moments until it finishes by itself; check; return kills.

    ``mid_restart`` gets, per kill, whether a restart was pending (begun, not done).
    """
    db, ledger = tmp / "tree.db", tmp / "ledger.txt"
    kills = 0
    number = 0
    for generation in generations(lambda g: start(db, ledger, g), rng, max_kills, (0.35, 1.2)):
        run = Run.parse(generation.out)
        assert not run.errors, f"generation {generation.number}: {run.errors}"
        number = generation.number
        if generation.killed:
            kills += 1
            mid_restart.append(bool(run.pending_restarts))
    final = run
    check_tree(final)
    # A clean restart re-sends every ask and the unacknowledged tells: the replies come
    # from the journal, nothing is handled again, the tree stays as it is.
    child = start(db, ledger, number + 1)
    again, err = child.communicate(timeout=120)
    assert child.returncode == 0, err.decode()
    rerun = Run.parse(again)
    assert not rerun.errors, f"the clean restart: {rerun.errors}"
    assert (rerun.result, rerun.actors, rerun.dead) == (final.result, final.actors, final.dead)
    check_ledger(ledger, final)  # the restart's replies too
    return kills


@pytest.mark.crash
def test_sigkilled_supervision_tree_recovers_with_every_message_counted_once(
    tmp_path: Path,
) -> None:
    mid_restart: list[bool] = []
    assert kill_in_rounds(tmp_path, partial(run_round, mid_restart=mid_restart), KILLS) >= KILLS
    # Most kills land while a restart waits out its backoff (about 9 in 10 here).
    assert sum(mid_restart) >= len(mid_restart) // 4, f"{sum(mid_restart)} kills mid-restart"


if __name__ == "__main__":
    LEDGER = sys.argv[2]
    GENERATION = int(sys.argv[3])
    asyncio.run(main(sys.argv[1]))
