"""The supervisor tree at work: what happens after an actor crashes.

Theory of operation. Every actor has a supervisor: the actor that spawned it, or the
root for actors the system spawned. A crash (an exception escaped workflow code, or
the actor's driver failed) ends the actor's runner and starts an *episode* here,
during which the actor is held: messages wait in its inbox and callers that need it
wait for the episode's end. The episode applies the crashed actor's policy
(``Supervision``): within the supervisor's restart budget it waits out the backoff,
stops the siblings its strategy names (reverse spawn order) and the crashed actor's
own children, rebuilds the actor from snapshot and journal, and rebuilds the others
(spawn order). Past the budget it gives up: a message whose handler keeps crashing
goes to dead letters and the actor goes on; otherwise a top-level (or temporary)
actor is durably failed, and a child's failure escalates: its parent crashes in turn.

Restart budgets live in memory (as in OTP): a process restart starts them afresh. What
a restart rebuilds is in the journal, so nothing committed is lost by any of this.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from journal import JournalError

from ._endings import drop_message, give_up, taken_by
from ._exceptions import ErrorInfo
from ._runner import Runner
from ._supervision import Crash, OnPoison, RestartType, RestartWindow, Strategy, Supervision

if TYPE_CHECKING:
    from ._system import ActorSystem

logger = logging.getLogger("actors")

Queued = list[tuple[Any, "asyncio.Future[None] | None"]]
Held = tuple[Runner, Queued, "asyncio.Future[Runner | None]"]
"""An actor an episode stopped: its old runner, its queued inputs, the hold on it."""


class Supervisor:
    """Decides and carries out what follows each crash, for every actor of a system."""

    def __init__(self, system: ActorSystem, root: Supervision) -> None:
        self._system = system
        self.root = root
        """The policy for top-level actors."""
        self._windows: dict[str, RestartWindow] = {}
        self._random = random.Random()  # jitter only: never part of any history

    def policy(self, runner: Runner) -> Supervision:
        """The policy ``runner``'s supervisor applies to it."""
        if runner.meta.supervision is not None:
            return runner.meta.supervision
        return self.root if runner.meta.parent is None else Supervision()

    def _window(self, runner: Runner) -> RestartWindow:
        # A parent's budget covers all its children; the root's is per top-level actor,
        # so one crash loop cannot fail its unrelated neighbours.
        parent = runner.meta.parent
        key = parent if parent is not None else f"$root/{runner.actor_id}"
        return self._windows.setdefault(key, RestartWindow())

    # Episodes -----------------------------------------------------------------------

    def crashed(
        self,
        runner: Runner,
        crash: Crash,
        queued: Queued,
        gate: asyncio.Future[Runner | None] | None = None,
    ) -> None:
        """Start the episode of a crashed runner (its ``run`` has returned).

        ``gate``: the hold on the actor, if the caller took it already.
        """
        system = self._system
        if system._runners.get(runner.actor_id) is runner:
            del system._runners[runner.actor_id]
        runner._stop_work()
        if gate is None:
            gate = system._hold(runner.actor_id)
        system.busy += 1  # the virtual clock waits for the episode, except its backoff
        system._drivers.start(self._episode(runner, crash, queued, gate))

    async def _episode(
        self,
        runner: Runner,
        crash: Crash,
        queued: Queued,
        gate: asyncio.Future[Runner | None],
    ) -> None:
        system = self._system
        result: Runner | None = None
        after: list[Held] = []  # stopped with it, rebuilt after it
        escalated = False
        try:
            while True:
                policy = self.policy(runner)
                window = self._window(runner)
                now = system.clock.now()
                attempt = None
                if policy.restart is not RestartType.TEMPORARY:
                    attempt = window.allow(now, policy)
                if attempt is None:
                    outcome = await self._give_up(runner, crash, policy, queued)
                    if outcome != "dropped":
                        escalated = outcome == "escalated"
                        return
                    window.reset()
                else:
                    after += await self._back_off(runner, crash, policy, attempt, now)
                replacement = await system._rebuild(runner, queued)
                queued = []
                if replacement is None:
                    return
                if replacement.engine.crash is not None:  # the crash recurred in replay
                    runner, crash = replacement, replacement.engine.crash
                    continue
                result = replacement  # rebuilt and started
                self._windows.pop(replacement.actor_id, None)  # a fresh supervisor
                logger.info(
                    "actor %r restarted",
                    replacement.actor_id,
                    extra={"actor_id": replacement.actor_id, "attempt": attempt},
                )
                return
        finally:
            system._release(runner.actor_id, gate, result)
            try:
                await self._restart_held(after, restart=not escalated)
                if result is not None:
                    await self._wake_children(result)
            finally:
                system.busy -= 1

    async def _back_off(
        self, runner: Runner, crash: Crash, policy: Supervision, attempt: int, now: float
    ) -> list[Held]:
        """Stop the strategy's group, wait out the backoff, rebuild the earlier siblings.

        The siblings spawned before ``runner`` are rebuilt here, before it.

        Returns:
            The rest of the stopped group, to rebuild after ``runner``.
        """
        system = self._system
        delay = policy.backoff.delay(attempt, self._random)
        _log_restart(runner, crash, attempt, policy, delay)
        before, after = await self._hold_group(runner, policy)
        system.busy -= 1
        try:
            await system.clock.sleep_until(now + delay)
        finally:
            system.busy += 1
        await self._restart_held(before, restart=True)
        return after

    async def _wake_children(self, runner: Runner) -> None:
        """Bring back every child of a restarted actor that is not live (eagerly).

        A child that has ended stays as it is.
        """
        system = self._system
        for child in runner.engine.children:
            if child not in system._runners and child not in system._activating:
                self._windows.pop(child, None)  # restarted with its parent: a fresh budget
                woken = await system._load_held(child)  # a crash starts its own episode
                if woken is not None:
                    _log_rebuilt(child, runner.actor_id)
                    await self._wake_children(woken)

    async def _hold_group(
        self, runner: Runner, policy: Supervision
    ) -> tuple[list[Held], list[Held]]:
        """Stop (in memory) the siblings ``policy.strategy`` restarts with ``runner``.

        The children of all of them go too, and ``runner``'s own: reverse spawn order,
        children first.

        Returns:
            What was stopped of the siblings spawned before ``runner``, and the rest,
            each in the order to rebuild them (spawn order, parents first).
        """
        parent, spawned_at = runner.meta.parent, runner.meta.spawned_at
        siblings: list[Runner] = []
        if policy.strategy is not Strategy.ONE_FOR_ONE and parent is not None:
            siblings = [
                r
                for r in self._live_children(parent)
                if r is not runner
                and (policy.strategy is Strategy.ONE_FOR_ALL or r.meta.spawned_at > spawned_at)
            ]
        before: list[Held] = []
        after: list[Held] = []
        for sibling in reversed(siblings):
            stopped = await self._hold_tree(sibling)
            if sibling.meta.spawned_at < spawned_at:
                before[:0] = stopped
            else:
                after[:0] = stopped
        for child in reversed(self._live_children(runner.actor_id)):
            after[:0] = await self._hold_tree(child)
        return before, after

    def _live_children(self, actor_id: str) -> list[Runner]:
        children = [r for r in self._system._runners.values() if r.meta.parent == actor_id]
        return sorted(children, key=lambda r: r.meta.spawned_at)

    async def _hold_tree(self, runner: Runner) -> list[Held]:
        """Stop ``runner``'s live subtree in memory, children first; hold each actor.

        Returns:
            What was stopped, in the order to rebuild it: parents first, spawn order.
        """
        held: list[Held] = []
        for child in reversed(self._live_children(runner.actor_id)):
            held[:0] = await self._hold_tree(child)
        halted = await self._system._halt(runner)
        if halted is not None:
            held.insert(0, (runner, *halted))
        return held

    async def _restart_held(self, held: list[Held], *, restart: bool) -> None:
        """Rebuild (or, after an escalation, just release) the actors an episode stopped."""
        system = self._system
        for runner, queued, gate in held:
            replacement: Runner | None = None
            try:
                if restart:
                    replacement = await system._rebuild(runner, queued, supervise=True)
                    self._windows.pop(runner.actor_id, None)  # a fresh supervisor
                    if replacement is not None:
                        _log_rebuilt(runner.actor_id, runner.meta.parent)
                else:
                    runner._fail(queued)
            finally:
                system._release(runner.actor_id, gate, replacement)

    # Giving up ----------------------------------------------------------------------

    async def _give_up(
        self, runner: Runner, crash: Crash, policy: Supervision, queued: Queued
    ) -> str:
        """Act on a spent budget; return ``"dropped"``, ``"failed"`` or ``"escalated"``."""
        system = self._system
        actor_id = runner.actor_id
        cause = crash.cause
        if (
            crash.source == "handler"
            and crash.key is not None
            and policy.on_poison is OnPoison.DEAD_LETTER
            and policy.restart is not RestartType.TEMPORARY
        ):
            reason = (
                f"actor {actor_id!r} crashed more than {policy.max_restarts} times within "
                f"{policy.period:g} s, the last time handling this message: {cause}"
            )
            logger.error(
                "actor %r: message %r goes to dead letters (%s)",
                actor_id,
                crash.key,
                cause,
                extra={"actor_id": actor_id, "message_key": crash.key, "error": cause},
            )
            taken = taken_by(crash, system.clock.now())
            assert taken is not None
            if not await _recorded(drop_message(runner, taken, crash.failure, reason), actor_id):
                return "failed"
            return "dropped"
        runner.add_mail(system._early_mail.pop(actor_id, []))
        if runner.meta.parent is None or policy.restart is RestartType.TEMPORARY:
            logger.error(
                "actor %r failed: its supervisor gave up after %s",
                actor_id,
                cause,
                extra={"actor_id": actor_id, "error": cause},
            )
            runner._fail(queued)
            await _recorded(give_up(runner, crash), actor_id)
            return "failed"
        parent = runner.meta.parent
        escalation = ErrorInfo(
            type="actors.ChildFailed",
            message=(
                f"child {actor_id!r} crashed more than {policy.max_restarts} times within "
                f"{policy.period:g} s: {cause}"
            ),
            traceback="",
        )
        logger.error(
            "actor %r: child %r exhausted its restarts; the failure escalates",
            parent,
            actor_id,
            extra={"actor_id": parent, "child": actor_id, "error": cause},
        )
        runner._fail(queued)
        if await system._escalate(
            parent, Crash(source="child", failure=(escalation, *crash.failure))
        ):
            return "escalated"
        await _recorded(give_up(runner, crash), actor_id)  # no parent to escalate to
        return "failed"


def _log_rebuilt(actor_id: str, by: str | None) -> None:
    """Log that ``actor_id`` was rebuilt as part of a restart of ``by``'s group or tree."""
    logger.info("actor %r restarted with %r", actor_id, by, extra={"actor_id": actor_id})


async def _recorded(commit: Coroutine[Any, Any, None], actor_id: str) -> bool:
    """Await a supervisor's commit; if the journal refuses it, say so and go on.

    The actor then stays down until something activates it again: it is rebuilt from
    its journal, which does not hold the decision, and crashes again.
    """
    try:
        await commit
    except JournalError as error:
        logger.error(  # noqa: TRY400 - the error says it all
            "actor %r: could not record the supervisor's decision (%s); it stays down "
            "until it is activated again",
            actor_id,
            error,
            extra={"actor_id": actor_id, "error": str(error)},
        )
        return False
    return True


def _log_restart(
    runner: Runner, crash: Crash, attempt: int, policy: Supervision, delay: float
) -> None:
    error = crash.cause
    logger.warning(
        "actor %r crashed (%s, in %s); restart %d of %d in %.2f s",
        runner.actor_id,
        error,
        crash.source,
        attempt,
        policy.max_restarts,
        delay,
        extra={
            "actor_id": runner.actor_id,
            "error": error,
            "source": crash.source,
            "attempt": attempt,
            "delay": delay,
        },
    )
