"""Errors the actor runtime raises.

Every error derives from `ActorError`, so `except ActorError` catches them all::

    ActorError
    ├── WorkflowSandboxError   (also a RuntimeError)
    └── WorkflowLivelockError
"""


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
