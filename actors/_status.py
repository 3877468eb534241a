"""An actor's status, as stored in its stream and reported by ``ActorRef.status()``."""

from __future__ import annotations

import enum


class Status(enum.Enum):
    """Where an actor is in its life."""

    RUNNING = "running"
    """Its run is in progress (possibly waiting on an activity, timer or signal)."""
    IDLE = "idle"
    """A message-driven actor between messages, nothing in flight: it may be passivated
    (dropped from memory) and is reactivated by a message, signal, query or timer."""
    SUSPENDED = "suspended"
    """Its code no longer replays its history (see ``NondeterminismError``); it resumes
    when code that replays is deployed and the system reopened."""
    COMPLETED = "completed"
    """Its run returned; ``result()`` returns the value."""
    FAILED = "failed"
    """Its run raised; ``result()`` raises ``ActorFailed``."""
    CANCELLED = "cancelled"
    """It was cancelled; ``result()`` raises ``ActorCancelled``."""
    TERMINATED = "terminated"
    """It was stopped at once; ``result()`` raises ``ActorTerminated``."""

    @property
    def ended(self) -> bool:
        """Whether the actor will never run again."""
        return self not in (Status.RUNNING, Status.IDLE, Status.SUSPENDED)
