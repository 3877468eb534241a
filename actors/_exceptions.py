"""Errors the actor runtime raises.

Every error derives from `ActorError`, so `except ActorError` catches them all::

    ActorError
    ├── WorkflowSandboxError      workflow code reached past its deterministic loop
    ├── WorkflowLivelockError     workflow code never let its loop go quiet
    ├── NondeterminismError       replayed code issued other commands than its history
    ├── ActivityError             an activity failed for good (raised in workflow code)
    ├── ActorFailed               an actor ended with an error (from result())
    │   ├── ActorCancelled        ... because it was cancelled
    │   └── ActorTerminated       ... because it was terminated
    ├── ActorNotFoundError        no actor has this id
    ├── ActorTypeError            an id belongs to another type, or a type is unknown
    └── ActorNotRunningError      a signal or cancel reached an actor that has ended
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen(kw_only=True)
class ErrorInfo:
    """One exception of a failure's chain, as text: it crosses processes and crashes."""

    type: str
    """The exception's qualified class name, e.g. ``"ValueError"``."""
    message: str
    """``str()`` of the exception."""
    traceback: str
    """The formatted traceback, as far as it was known."""


class ActorError(Exception):
    """Root of every error the actor runtime raises."""


class WorkflowSandboxError(ActorError, RuntimeError):
    """Raised when workflow code reaches past its deterministic event loop.

    Workflow code must replay identically, so sockets, threads, subprocesses, signals
    and the futures of other event loops are refused.

    Attributes:
        action: What the workflow code did, e.g. ``"called loop.sock_recv()"``.
        fix: What to do instead; by default, move the I/O into an activity.
    """

    def __init__(self, action: str, *, fix: str | None = None) -> None:
        self.action = action
        self.fix = fix or "real I/O belongs in an activity: `await ctx.activity(fn, ...)`"
        super().__init__(f"workflow code {action}; {self.fix}")


class WorkflowLivelockError(ActorError):
    """Raised when workflow code keeps its loop busy without ever going quiet.

    Attributes:
        steps: How many callbacks ran in the activation before the loop gave up.
    """

    def __init__(self, steps: int) -> None:
        self.steps = steps
        super().__init__(
            f"workflow code ran {steps} callbacks in one activation without the loop going "
            "quiet: it keeps scheduling work without ever waiting on something durable; "
            "make each iteration await a timer (asyncio.sleep(seconds > 0)), a message or "
            "an activity"
        )


class NondeterminismError(ActorError):
    """Raised when replayed workflow code issues other commands than its history holds.

    The actor is suspended, not failed, and nothing is written: deploy code that
    replays the history (guard changes with ``ctx.patched(...)``) and reopen.
    """

    def __init__(self, actor_id: str, event: int, expected: str, got: str) -> None:
        self.actor_id = actor_id
        self.event = event
        self.expected = expected
        self.got = got
        super().__init__(
            f"actor {actor_id!r} replayed {got} at event {event} but the history has "
            f"{expected}; workflow code changed incompatibly: guard the change with "
            "ctx.patched(...) or restore the old code; the actor is suspended and "
            "nothing was written"
        )


class ActivityError(ActorError):
    """Raised in workflow code when an activity failed on its last attempt.

    ``__cause__`` is the activity's error when it was raised in this process;
    ``failure`` holds the chain as text in any case (also after a replay).
    """

    def __init__(self, name: str, attempts: int, failure: Sequence[ErrorInfo]) -> None:
        self.name = name
        self.attempts = attempts
        self.failure = tuple(failure)
        head = self.failure[0] if self.failure else ErrorInfo(type="?", message="", traceback="")
        super().__init__(
            f"activity {name!r} failed after {attempts} attempt(s): {head.type}: {head.message}"
        )


class ActorFailed(ActorError):
    """Raised by ``result()`` when an actor ended with an error.

    Attributes:
        actor_id: the actor.
        failure: the error chain, outermost first (type, message, traceback text).
    """

    def __init__(self, actor_id: str, failure: Sequence[ErrorInfo]) -> None:
        self.actor_id = actor_id
        self.failure = tuple(failure)
        super().__init__(self._describe())

    @property
    def type(self) -> str:
        """The outermost error's type name."""
        return self.failure[0].type if self.failure else ""

    @property
    def error_message(self) -> str:
        """The outermost error's message."""
        return self.failure[0].message if self.failure else ""

    @property
    def traceback(self) -> str:
        """The outermost error's traceback text."""
        return self.failure[0].traceback if self.failure else ""

    def _describe(self) -> str:
        chain = " <- ".join(f"{e.type}: {e.message}" for e in self.failure)
        return f"actor {self.actor_id!r} failed: {chain}"


class ActorCancelled(ActorFailed):
    """Raised by ``result()`` when an actor ended because it was cancelled."""

    def _describe(self) -> str:
        return f"actor {self.actor_id!r} was cancelled"


class ActorTerminated(ActorFailed):
    """Raised by ``result()`` when an actor was terminated."""

    def _describe(self) -> str:
        return f"actor {self.actor_id!r} was terminated"


class Rejected(ActorError):
    """Raise it (or a subclass) from workflow code to fail on purpose, not crash.

    From a handler: the asker gets ``ActorFailed`` with this error at once, the
    handler's changes stay, and the actor takes its next message (no restart, no
    rollback). From ``run``: the actor fails at once (no restart). Any other exception
    is a crash, which the supervisor handles (restart, rollback, dead letters).
    """


def actor_failed(actor_id: str, failure: Sequence[ErrorInfo]) -> ActorFailed:
    """The exception a failure reply about ``actor_id`` means.

    An ended actor's reply names ``actors.ActorCancelled`` or ``actors.ActorTerminated``
    as its outermost type when it was cancelled or terminated.
    """
    kind = failure[0].type if failure else ""
    if kind == "actors.ActorCancelled":
        return ActorCancelled(actor_id, failure)
    if kind == "actors.ActorTerminated":
        return ActorTerminated(actor_id, failure)
    return ActorFailed(actor_id, failure)


class ActorNotFoundError(ActorError):
    """Raised when no actor has the given id."""

    def __init__(self, actor_id: str) -> None:
        self.actor_id = actor_id
        super().__init__(f"no actor {actor_id!r} exists; spawn it first")


class ActorTypeError(ActorError):
    """Raised when an id belongs to an actor of another type, or a type is unknown."""

    def __init__(self, actor_id: str, expected: str, actual: str) -> None:
        self.actor_id = actor_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"actor {actor_id!r} is a {actual!r}, not a {expected!r}; use another id, or "
            f"register the {actual!r} type with the system if it was renamed"
        )


class ActorNotRunningError(ActorError):
    """Raised when a signal or cancel is sent to an actor that has ended."""

    def __init__(self, actor_id: str, status: str) -> None:
        self.actor_id = actor_id
        self.status = status
        super().__init__(
            f"actor {actor_id!r} is {status} and takes no more signals; read its result"
        )
