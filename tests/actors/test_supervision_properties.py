"""Properties of supervision: random crash schedules against a three-level tree.

A root workflow spawns 2-3 supervisors (message-driven), each of which spawns 2-3
message-driven workers; the policy at every level is drawn (strategy, budget, period,
backoff without jitter, poison handling, TEMPORARY for some children). The test sends
pokes into the tree, asks to supervisors and workers and tells to the root, in drawn
batches with drawn gaps of virtual time between them. Each poke says how often it
crashes its receiver before it is taken: a module-level count of its handlings, so
"crash the first k times" holds across rolled-back retries and replays alike. After
each batch the system settles (time moves to each backoff's end, only while the
system is idle) and, at the end, before and after the root is finished:

1. no actor is live (RUNNING or IDLE) whose parent has ended; once the root has ended,
   nothing is;
2. per supervisor, the restarts logged within any ``period`` of virtual time never
   exceed the policy's ``max_restarts``. A window starts afresh where the runtime
   resets it: when the supervisor was restarted, after a crash of its own or with its
   parent ("actor %r restarted"), or a child's poison message was dropped. Each
   restart's logged attempt number is that count, and a TEMPORARY child is never
   restarted;
3. an answered ask was counted exactly once in its receiver's state, a failed ask not
   at all: a rolled-back turn leaves no trace.

Restarts are read from the "actors" log, each record stamped with the virtual clock's
time (``record.created`` is real time). Every ask is answered or fails once the
system has settled: one still waiting would be a message lost in the tree.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from actors import (
    Actor,
    ActorFailed,
    ActorRef,
    ActorSystem,
    Backoff,
    Context,
    OnPoison,
    RestartType,
    Status,
    Strategy,
    Supervision,
    handler,
    query,
)
from actors.testing import VirtualClock

from ._support import Stores, actors_log, finishes, until

HANDLED: Counter[int] = Counter()
"""How often each poke was handled in this process (replays included): its crash count."""

ROOT = "root"


class Boom(Exception):
    """The crash a poke asks for."""


def trip(poke: Poke) -> None:
    """Crash the first ``poke.crashes`` times ``poke`` is handled in this process."""
    HANDLED[poke.id] += 1
    if HANDLED[poke.id] <= poke.crashes:
        msg = f"poke {poke.id}, handling {HANDLED[poke.id]} of {poke.crashes}"
        raise Boom(msg)


@pytest.fixture(autouse=True)
def _clear_handled() -> Iterator[None]:
    HANDLED.clear()
    yield
    HANDLED.clear()


# Messages ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Poke:
    id: int
    crashes: int


@attrs.frozen(kw_only=True)
class Finish:
    pass


@attrs.frozen(kw_only=True)
class Group:
    """One supervisor: how the root supervises it, and how it supervises its workers."""

    supervisor: str
    supervision: Supervision
    workers: list[str]
    policy: Supervision
    """For the workers not listed in ``temporary``."""
    temporary: list[str]


@attrs.frozen(kw_only=True)
class Build:
    group: Group


@attrs.frozen(kw_only=True)
class Plan:
    groups: list[Group]


# Actors ------------------------------------------------------------------------------


class Worker(Actor):
    seen: list[int] = attrs.Factory(list)

    @handler
    async def poke(self, ctx: Context, msg: Poke) -> int:
        self.seen.append(msg.id)
        trip(msg)
        return msg.id

    @query
    def handled(self) -> list[int]:
        return self.seen


class Supervisor(Worker):
    """A worker that also builds its group of workers."""

    @handler
    async def build(self, ctx: Context, msg: Build) -> None:
        group = msg.group
        for worker in group.workers:
            policy = group.policy
            if worker in group.temporary:
                policy = attrs.evolve(policy, restart=RestartType.TEMPORARY)
            await ctx.spawn(Worker, worker, supervision=policy)


class Root(Actor):
    seen: list[int] = attrs.Factory(list)
    built: bool = False

    async def run(self, ctx: Context, plan: Plan) -> list[int]:
        for group in plan.groups:
            sup = await ctx.spawn(Supervisor, group.supervisor, supervision=group.supervision)
            await sup.ask(Build(group=group))
        self.built = True
        while True:
            msg: Poke | Finish = await ctx.receive(Poke, Finish)
            if isinstance(msg, Finish):
                return self.seen
            self.seen.append(msg.id)
            trip(msg)

    @query
    def handled(self) -> list[int]:
        return self.seen

    @query
    def is_built(self) -> bool:
        return self.built


# The drawn tree and schedule ---------------------------------------------------------


@attrs.frozen(kw_only=True)
class Tree:
    root_policy: Supervision
    """The system's policy for the root."""
    plan: Plan

    def parent(self, actor_id: str) -> str | None:
        for group in self.plan.groups:
            if actor_id == group.supervisor:
                return ROOT
            if actor_id in group.workers:
                return group.supervisor
        return None

    def policy(self, actor_id: str) -> Supervision:
        """The policy ``actor_id``'s supervisor applies to it."""
        for group in self.plan.groups:
            if actor_id == group.supervisor:
                return group.supervision
            if actor_id in group.temporary:
                return attrs.evolve(group.policy, restart=RestartType.TEMPORARY)
            if actor_id in group.workers:
                return group.policy
        return self.root_policy

    def types(self) -> dict[str, type[Root | Supervisor | Worker]]:
        """Every actor of the tree, by id, with its type."""
        found: dict[str, type[Root | Supervisor | Worker]] = {ROOT: Root}
        for group in self.plan.groups:
            found[group.supervisor] = Supervisor
            found.update(dict.fromkeys(group.workers, Worker))
        return found


@attrs.frozen(kw_only=True)
class Step:
    id: int
    target: str
    crashes: int


@attrs.frozen(kw_only=True)
class Scenario:
    tree: Tree
    batches: list[list[Step]]
    gaps: list[float]
    """Virtual seconds the clock moves before each batch."""


def policies(draw: st.DrawFn, label: str) -> Supervision:
    return Supervision(
        strategy=draw(st.sampled_from(Strategy), label=f"{label} strategy"),
        max_restarts=draw(st.integers(0, 3), label=f"{label} max_restarts"),
        period=draw(st.sampled_from([0.25, 1.0, 5.0]), label=f"{label} period"),
        # No jitter: the supervisor's jitter is unseeded, and examples must replay.
        backoff=Backoff(
            initial=draw(st.sampled_from([0.05, 0.1, 0.4]), label=f"{label} backoff"),
            max=1.0,
            jitter=0.0,
        ),
        on_poison=draw(st.sampled_from(OnPoison), label=f"{label} on_poison"),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    groups = []
    for s in range(draw(st.integers(2, 3), label="supervisors")):
        supervisor = f"s{s}"
        workers = [f"s{s}w{w}" for w in range(draw(st.integers(2, 3), label="workers"))]
        supervision = policies(draw, supervisor)
        if draw(st.integers(0, 3), label=f"{supervisor} temp") == 0:
            supervision = attrs.evolve(supervision, restart=RestartType.TEMPORARY)
        temporary = [w for w in workers if draw(st.integers(0, 3), label=f"{w} temp") == 0]
        groups.append(
            Group(
                supervisor=supervisor,
                supervision=supervision,
                workers=workers,
                policy=policies(draw, f"{supervisor}'s workers"),
                temporary=temporary,
            )
        )
    tree = Tree(root_policy=policies(draw, ROOT), plan=Plan(groups=groups))
    targets = [ROOT, *(g.supervisor for g in groups), *(w for g in groups for w in g.workers)]
    target = st.sampled_from(targets[1 + len(groups) :]) | st.sampled_from(targets)  # workers 2:1
    crashes = st.sampled_from([0, 0, 1, 1, 2, 3, 4])
    raw = draw(
        st.lists(
            st.lists(st.tuples(target, crashes), min_size=1, max_size=4), min_size=1, max_size=4
        )
    )
    ids = iter(range(1, 100))
    batches = [[Step(id=next(ids), target=t, crashes=c) for t, c in batch] for batch in raw]
    gaps = draw(
        st.lists(
            st.sampled_from([0.0, 0.3, 2.0, 10.0]), min_size=len(batches), max_size=len(batches)
        )
    )
    return Scenario(tree=tree, batches=batches, gaps=gaps)


# Observing ---------------------------------------------------------------------------


def is_restart(record: logging.LogRecord) -> bool:
    return record.levelno == logging.WARNING and hasattr(record, "attempt")


def is_own_restart(record: logging.LogRecord) -> bool:
    """A supervisor's restart (its own, or with its parent's group or tree): its
    children's window starts afresh."""
    return record.levelno == logging.INFO and record.msg in (
        "actor %r restarted",
        "actor %r restarted with %r",
    )


def is_poison_drop(record: logging.LogRecord) -> bool:
    return record.levelno == logging.ERROR and hasattr(record, "message_key")


def kind_of(record: logging.LogRecord) -> str:
    """What a warning or error of the "actors" logger reports, for hypothesis's events."""
    if is_restart(record):
        return "a restart"
    if is_poison_drop(record):
        return "a poison message dropped"
    if hasattr(record, "child"):
        return "a failure escalated"
    return "an actor failed"


def window_of(tree: Tree, actor_id: str) -> str:
    """The restart window that counts ``actor_id``'s restarts (per supervisor)."""
    parent = tree.parent(actor_id)
    return parent if parent is not None else f"$root/{actor_id}"


def check_restart_windows(tree: Tree, records: list[tuple[float, logging.LogRecord]]) -> None:
    """Property 2: replay the log through a model of each supervisor's window."""
    windows: dict[str, deque[float]] = {}
    for now, record in records:
        actor_id: str = getattr(record, "actor_id", "")
        if is_own_restart(record):
            windows.pop(actor_id, None)
        elif is_poison_drop(record):
            windows.pop(window_of(tree, actor_id), None)
        elif is_restart(record):
            policy = tree.policy(actor_id)
            assert policy.restart is not RestartType.TEMPORARY, (
                f"TEMPORARY {actor_id!r} was restarted at {now}"
            )
            # Children of one supervisor may have different periods: count within
            # this restart's own period, never forgetting what a longer one counts.
            times = windows.setdefault(window_of(tree, actor_id), deque())
            times.append(now)
            recent = [t for t in times if t > now - policy.period]
            assert len(recent) <= policy.max_restarts, (
                f"{len(recent)} restarts under {window_of(tree, actor_id)!r} within "
                f"{policy.period} s (at {recent}), allowed {policy.max_restarts}"
            )
            assert getattr(record, "attempt", None) == len(recent), (
                f"{actor_id!r}'s restart at {now} logged attempt "
                f"{getattr(record, 'attempt', None)}, but it is restart {len(recent)} "
                f"of its window"
            )


async def statuses(tree: Tree, system: ActorSystem) -> dict[str, Status]:
    return {a: await system.get(cls, a).status() for a, cls in tree.types().items()}


async def check_no_orphans(tree: Tree, system: ActorSystem) -> dict[str, Status]:
    """Property 1: no actor is live whose parent has ended."""
    now = await statuses(tree, system)
    for actor_id, status in now.items():
        parent = tree.parent(actor_id)
        if parent is not None and now[parent].ended:
            assert status.ended, (
                f"{actor_id!r} is {status.value} but its parent {parent!r} is "
                f"{now[parent].value}: {now}"
            )
    return now


async def check_counted_once(
    tree: Tree, system: ActorSystem, sent: dict[int, Step], answered: dict[int, bool | None]
) -> None:
    """Property 3: an answered ask counted once, a failed one never; nothing twice.

    An ask left hanging may still be taken later (querying its receiver activates it),
    so it is held to "at most once" only.
    """
    for actor_id, cls in tree.types().items():
        seen: list[int] = await system.get(cls, actor_id).query(cls.handled)
        counts = Counter(seen)
        assert all(sent[i].target == actor_id for i in counts), (actor_id, seen)
        assert all(n == 1 for n in counts.values()), f"{actor_id!r} counted twice: {seen}"
        if actor_id == ROOT:
            continue  # told, not asked: a crash in run keeps what it did (it replays)
        for i, step in sent.items():
            if step.target == actor_id and answered[i] is not None:
                expected = 1 if answered[i] else 0
                assert counts[i] == expected, (
                    f"poke {i} to {actor_id!r} was {'answered' if answered[i] else 'failed'}"
                    f" but is counted {counts[i]} times: {seen}"
                )


async def went_idle(system: ActorSystem, turns: int = 2_000) -> bool:
    """Whether the system goes idle (no input queued or being handled) within ``turns``."""
    quiet = 0
    for _ in range(turns):
        quiet = quiet + 1 if system.busy == 0 else 0
        if quiet >= 5:
            return True
        await asyncio.sleep(0)
    return False


async def quiesce(system: ActorSystem, clock: VirtualClock) -> None:
    """Return once nothing is queued, held for a restart, or waiting out a backoff.

    Time moves only to the next sleeper's deadline, and only while the system is
    idle, as it would for a waiting caller. A waiting ask moves the clock too, so the
    final state must hold for several rounds: a sleeper it just woke may not have run.
    """
    stuck = 0
    for _ in range(1_000):
        idle = await went_idle(system)
        due = [deadline for deadline, _, future in clock._sleepers if not future.done()]
        if due and not idle:
            pytest.fail(f"the virtual clock stalled: busy={system.busy}, a sleeper due {due}")
        if due:
            stuck = 0
            await clock.advance(max(0.0, min(due) - clock.now()))
            continue
        stuck += 1
        if stuck < 20:
            continue
        if not idle:
            pytest.fail(f"never idle, with nothing to wait for (busy={system.busy})")
        if system._activating:
            pytest.fail(f"held forever, with nothing left to wake them: {list(system._activating)}")
        return
    pytest.fail("the system never settled")


async def send(
    system: ActorSystem, cls: type[Actor], step: Step, answered: dict[int, bool | None]
) -> None:
    """Tell the root (its run takes pokes with receive), ask anyone else."""
    poke = Poke(id=step.id, crashes=step.crashes)
    if cls is Root:
        await system.get(Root, ROOT).tell(poke)
        return
    try:
        reply = await system.get(cls, step.target).ask(poke)
    except ActorFailed:
        answered[step.id] = False
    else:
        assert reply == step.id
        answered[step.id] = True


async def send_batch(
    tree: Tree,
    system: ActorSystem,
    clock: VirtualClock,
    batch: list[Step],
    answered: dict[int, bool | None],
) -> set[int]:
    """Send ``batch`` at once and let the system settle; return the asks left hanging.

    An ask still waiting once nothing in the system moves (a lost message: the
    property fails on it) is noted as None, neither answered nor failed, and
    cancelled.
    """
    types = tree.types()
    tasks = {
        step.id: asyncio.ensure_future(send(system, types[step.target], step, answered))
        for step in batch
    }
    await quiesce(system, clock)
    hanging = {i for i, task in tasks.items() if not task.done()}
    for i in hanging:
        tasks[i].cancel()
        answered[i] = None
    await asyncio.gather(*tasks.values(), return_exceptions=True)
    for i, task in tasks.items():
        if i not in hanging:
            task.result()  # an unexpected error (not ActorFailed) fails the example
    return hanging


async def play(scenario: Scenario) -> None:
    tree = scenario.tree
    stores = Stores(messages=(Poke, Finish))  # the root takes them with receive
    with actors_log(stores.clock.now) as log:
        async with stores.system(Root, Supervisor, Worker, supervision=tree.root_policy) as system:
            root = await system.spawn(Root, ROOT, tree.plan)
            await until(lambda: root.query(Root.is_built), "the tree built")
            sent: dict[int, Step] = {}
            answered: dict[int, bool | None] = {}
            for gap, batch in zip(scenario.gaps, scenario.batches, strict=True):
                await stores.clock.advance(gap)
                sent.update((step.id, step) for step in batch)
                hanging = await send_batch(tree, system, stores.clock, batch, answered)
                assert not hanging, f"asks never answered: {sorted(hanging)}"

            await check_no_orphans(tree, system)
            await check_counted_once(tree, system, sent, answered)

            # The root's end stops the whole tree.
            if not (await root.status()).ended:
                await root.tell(Finish())
            await quiesce(system, stores.clock)
            ended = await check_no_orphans(tree, system)
            assert all(s.ended for s in ended.values()), ended
            await check_counted_once(tree, system, sent, answered)
    check_restart_windows(tree, log.records)
    for _, record in log.records:
        if record.levelno >= logging.WARNING:
            event(kind_of(record))


@settings(max_examples=200, deadline=None)
@given(scenario=scenarios())
def test_random_crash_schedules_never_orphan_an_actor_or_exceed_a_restart_budget(
    scenario: Scenario,
) -> None:
    HANDLED.clear()
    asyncio.run(play(scenario))


# Bugs the property found, reduced to examples (each was a hang: an ask never answered,
# or a deviation from the policy) -----------------------------------------------------

ONCE = Poke(id=1, crashes=1)
"""Crashes its receiver's first handling, then is taken."""


async def took(root: ActorRef[Root], poke: int) -> bool:
    handled: list[int] = await root.query(Root.handled)
    return poke in handled


def policy(**changes: Any) -> Supervision:
    return Supervision(backoff=Backoff(initial=0.1, max=1.0, jitter=0.0), **changes)


@pytest.mark.parametrize("temporary", [False, True], ids=["top-level FAIL", "temporary child"])
async def test_an_ask_whose_handler_crash_fails_its_actor_gets_the_failure(
    temporary: bool,
) -> None:
    stores = Stores()
    root = policy(max_restarts=0, on_poison=OnPoison.FAIL)
    async with stores.system(Supervisor, Worker, supervision=root) as system:
        if temporary:
            group = Group(
                supervisor="s",
                supervision=policy(),
                workers=["w"],
                policy=policy(),
                temporary=["w"],
            )
            await system.get(Supervisor, "s").ask(Build(group=group))
        worker = system.get(Worker, "w")

        with pytest.raises(ActorFailed):
            await finishes(worker.ask(ONCE), "the ask whose handler crashed")
        assert await worker.status() is Status.FAILED


async def test_an_ask_whose_crash_escalated_to_the_root_is_answered_after_the_restart() -> None:
    stores = Stores(messages=(Poke, Finish))
    group = Group(
        supervisor="s",
        supervision=policy(max_restarts=0),
        workers=["w"],
        policy=policy(max_restarts=0, on_poison=OnPoison.FAIL),
        temporary=[],
    )
    async with stores.system(
        Root, Supervisor, Worker, supervision=policy(max_restarts=1)
    ) as system:
        root = await system.spawn(Root, ROOT, Plan(groups=[group]))
        await until(lambda: root.query(Root.is_built), "the tree built")

        # w crashes past its budget (0): s crashes past its budget (0): the root restarts.
        assert await finishes(system.get(Worker, "w").ask(ONCE), "the escalated ask") == 1


async def test_a_child_escalating_while_its_parent_backs_off_does_not_stall_the_virtual_clock() -> (
    None
):
    stores = Stores(messages=(Poke, Finish))
    group = Group(
        supervisor="s",
        supervision=policy(max_restarts=0, on_poison=OnPoison.FAIL),
        workers=[],
        policy=policy(),
        temporary=[],
    )
    async with stores.system(
        Root, Supervisor, Worker, supervision=policy(max_restarts=3)
    ) as system:
        root = await system.spawn(Root, ROOT, Plan(groups=[group]))
        await until(lambda: root.query(Root.is_built), "the tree built")

        # At once: the root crashes (a restart after a backoff), and s crashes past its
        # budget, so its failure escalates to the root while the root backs off.
        told = asyncio.ensure_future(root.tell(Poke(id=1, crashes=1)))
        asked = system.get(Supervisor, "s").ask(Poke(id=2, crashes=1))
        assert await finishes(asked, "the ask to the escalating supervisor") == 2
        await told


async def test_a_supervisor_restarted_with_its_parent_starts_with_a_fresh_budget() -> None:
    stores = Stores(messages=(Poke, Finish))
    group = Group(
        supervisor="s",
        supervision=policy(),
        workers=["w"],
        policy=policy(max_restarts=1),
        temporary=[],
    )
    async with stores.system(Root, Supervisor, Worker, supervision=policy()) as system:
        root = await system.spawn(Root, ROOT, Plan(groups=[group]))
        await until(lambda: root.query(Root.is_built), "the tree built")
        worker = system.get(Worker, "w")
        assert await worker.ask(Poke(id=1, crashes=1)) == 1  # s's one restart is spent

        await root.tell(Poke(id=2, crashes=1))  # the root restarts: s is stopped and rebuilt
        await until(lambda: took(root, 2), "the root back, with poke 2 taken")

        assert await worker.ask(Poke(id=3, crashes=1)) == 3  # a fresh s may restart w again
