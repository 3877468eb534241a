"""Supervision policies: what a supervisor does when one of its children crashes.

These are plain values: ``ctx.spawn(..., supervision=Supervision(...))`` journals the
child's policy with its spawn, and ``ActorSystem(supervision=...)`` sets the root's
policy for top-level actors. The decisions themselves are made by the host (see
``actors/_supervisor.py``); nothing here does I/O.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from datetime import timedelta

import attrs

from ._actor import seconds
from ._exceptions import ErrorInfo


class Strategy(enum.Enum):
    """Which children a supervisor restarts when one crashes (as OTP defines them)."""

    ONE_FOR_ONE = "one_for_one"
    """Only the child that crashed."""
    ONE_FOR_ALL = "one_for_all"
    """Every live child of the same parent (stopped in reverse spawn order, then
    rebuilt in spawn order)."""
    REST_FOR_ONE = "rest_for_one"
    """The child that crashed and the live children spawned after it."""


class RestartType(enum.Enum):
    """When a crashed child is restarted."""

    TRANSIENT = "transient"
    """Restarted after a crash, within the budget (the default): a durable actor that
    ends normally (completes, is cancelled or terminated) stays ended."""
    TEMPORARY = "temporary"
    """Never restarted: its first crash fails it, and its parent is not affected."""
    PERMANENT = "permanent"
    """Restarted after a crash, and also when its run ends normally (completes or is
    cancelled): a new run starts with its spawn arguments and a fresh state. Only
    ``terminate`` (or its parent's end) stops it for good."""


class OnPoison(enum.Enum):
    """What happens once a message's handler has crashed the actor past the budget."""

    DEAD_LETTER = "dead_letter"
    """The message goes to dead letters with the error (an asker gets the error) and
    the actor goes on with its next message (the default)."""
    FAIL = "fail"
    """The crash escalates like any other: the supervisor fails or restarts itself."""


def _to_seconds(value: float | timedelta) -> float:
    result = seconds(value)
    assert result is not None
    if result < 0:
        msg = f"a supervision duration cannot be negative, got {value!r}"
        raise ValueError(msg)
    return result


@attrs.frozen(kw_only=True)
class Backoff:
    """The delay before the n-th restart: ``initial * 2**(n-1)`` capped at ``max``.

    ``jitter`` spreads each delay by up to that fraction either way, so actors that
    crashed together do not all restart in the same instant.
    """

    initial: float = attrs.field(default=0.1, converter=_to_seconds)
    max: float = attrs.field(default=2.0, converter=_to_seconds)
    jitter: float = 0.1

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.jitter <= 1:
            msg = f"Backoff jitter is a fraction in [0, 1], got {self.jitter!r}"
            raise ValueError(msg)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The delay before restart number ``attempt`` (1 for the first)."""
        base: float = min(self.max, self.initial * 2.0 ** max(0, attempt - 1))
        return max(0.0, base * (1 + self.jitter * (2 * rng.random() - 1)))


@attrs.frozen(kw_only=True)
class Supervision:
    """How a supervisor treats a child's crashes.

    The defaults allow 3 restarts within 5 seconds, with backoff from 0.1 s doubling
    to 2 s: a deterministic crash gives up within seconds and is reported.
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    """Restarts allowed within ``period``; one more crash gives up (escalates)."""
    period: float = attrs.field(default=5.0, converter=_to_seconds)
    """The sliding window, in seconds (a ``timedelta`` is taken too)."""
    backoff: Backoff = attrs.Factory(Backoff)
    restart: RestartType = RestartType.TRANSIENT
    on_poison: OnPoison = OnPoison.DEAD_LETTER

    def __attrs_post_init__(self) -> None:
        if self.max_restarts < 0:
            msg = f"max_restarts cannot be negative, got {self.max_restarts!r}"
            raise ValueError(msg)


MEMORY = 3600.0
"""Seconds a window remembers a restart at least, whatever the periods asked about."""


class RestartWindow:
    """The restarts a supervisor made recently (its intensity).

    Children of one supervisor may have policies with different periods: each check
    counts the restarts within its own policy's period. A restart is forgotten only
    once it is older than an hour and than the longest period asked about, so a child
    with a long period still counts the restarts of a sibling with a short one.
    """

    def __init__(self) -> None:
        self._times: deque[float] = deque()
        self._longest = MEMORY

    def allow(self, now: float, policy: Supervision) -> int | None:
        """Record a restart at ``now`` if the policy allows one; return its number.

        Returns:
            The restart's number within the policy's period (1 for the first), or
            None when the budget is spent: the supervisor gives up.
        """
        times = self._times
        self._longest = max(self._longest, policy.period)
        while times and times[0] <= now - self._longest:
            times.popleft()
        recent = sum(1 for t in times if t > now - policy.period)
        if recent >= policy.max_restarts:
            return None
        times.append(now)
        return recent + 1

    def reset(self) -> None:
        """Forget every restart (a poison message was dropped)."""
        self._times.clear()


@attrs.frozen(kw_only=True)
class Terminated:
    """The message ``ctx.watch(ref)`` delivers when the watched actor ends.

    It arrives in the watcher's mailbox like any message: take it with
    ``ctx.receive(Terminated)`` or a ``@handler`` for ``Terminated``.
    """

    actor_id: str
    """The actor that ended."""
    actor_type: str
    """Its registered type name."""
    status: str
    """How it ended: a ``Status`` value (``"completed"``, ``"failed"``, ...)."""
    reason: str = ""
    """For a failure, termination or cancellation: what happened."""


@attrs.frozen(kw_only=True)
class Crash:
    """Why an actor crashed: what raised, the error, and the message it was handling."""

    source: str
    """``"run"``, ``"signal"``, ``"handler"``, ``"driver"`` (a journal or host failure)
    or ``"child"`` (a child's crashes escalated)."""
    failure: tuple[ErrorInfo, ...]
    key: str | None = None
    """For a handler: the key of the message whose turn crashed."""
    message: bytes = b""
    """For a handler: that message, encoded."""
    reply_to: str | None = None
    """For a handler: the asking actor, if an actor asked."""

    @property
    def cause(self) -> str:
        """The outermost error as ``"type: message"``, for logs and reasons."""
        if not self.failure:
            return "?"
        head = self.failure[0]
        return f"{head.type}: {head.message}"
