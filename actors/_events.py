"""The events of an actor's history, as stored in its journal stream.

An actor's stream is a sequence of *activations*. Each begins with one **input** (what
happened to the actor: it started, an activity finished, a timer fired, a signal or a
cancel arrived) followed by the **commands** its code issued while handling that input
(an activity scheduled, a timer started or cancelled, a version marker, the end of the
run). **Notes** record host facts that workflow code never sees (a failed activity
attempt). Payload values (arguments, results) are stored already encoded by the
system's codec, so an event decodes without knowing the user's types.

Stored format: the codec's tagged JSON, tag ``perdure.<Class>``; ``FORMAT`` is written
into each stream's metadata so a future change of replay order can be recognised.
"""

from __future__ import annotations

from typing import TypeAlias

import attrs

from ._exceptions import ErrorInfo
from ._supervision import Supervision

FORMAT = 1
"""Version of the history format and of replay order."""


# Inputs ---------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Started:
    """The actor's run began (spawn, or continue-as-new) with these arguments."""

    time: float
    args: bytes
    """The run's arguments, a list encoded by the codec."""
    run: int = 1
    """1 for the first run, +1 at each continue-as-new."""


@attrs.frozen(kw_only=True)
class ActivityCompleted:
    """An activity returned."""

    time: float
    cmd: int
    result: bytes


@attrs.frozen(kw_only=True)
class ActivityFailed:
    """An activity failed on its last attempt."""

    time: float
    cmd: int
    attempts: int
    failure: tuple[ErrorInfo, ...]


@attrs.frozen(kw_only=True)
class TimerFired:
    """A durable timer came due."""

    time: float
    cmd: int


@attrs.frozen(kw_only=True)
class SignalReceived:
    """A signal was applied to the actor's state."""

    time: float
    name: str
    args: bytes


@attrs.frozen(kw_only=True)
class MessageReceived:
    """A message was taken from the actor's mailbox (and consumed in the same commit)."""

    time: float
    key: str
    """The message's id: unique per receiving actor."""
    message: bytes
    reply_to: str | None = None
    """The asking actor, when another actor asked (its reply goes to that inbox)."""


@attrs.frozen(kw_only=True)
class ReplyReceived:
    """The reply to one of this actor's asks arrived."""

    time: float
    key: str
    """The key of the ask's message."""
    result: bytes | None = None
    failure: tuple[ErrorInfo, ...] | None = None


@attrs.frozen(kw_only=True)
class CancelRequested:
    """Someone asked the actor to cancel: ``CancelledError`` at its current await."""

    time: float


# Commands -------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ActivityScheduled:
    """Workflow code called an activity."""

    cmd: int
    name: str


@attrs.frozen(kw_only=True)
class TimerStarted:
    """Workflow code started a durable timer (``ctx.sleep``, ``asyncio.sleep``, timeouts)."""

    cmd: int
    fire_at: float


@attrs.frozen(kw_only=True)
class TimerCancelled:
    """A timer was cancelled before it fired."""

    cmd: int


@attrs.frozen(kw_only=True)
class Patched:
    """``ctx.patched(change_id)`` returned True here: the code after the change ran."""

    change_id: str


@attrs.frozen(kw_only=True)
class Replied:
    """A handler finished a message: its result (or error) answers the sender."""

    key: str
    result: bytes | None = None
    failure: tuple[ErrorInfo, ...] | None = None
    reply_to: str | None = None
    """Where the reply goes: the asking actor, or None (a tell, or a caller outside)."""


@attrs.frozen(kw_only=True)
class MessageSent:
    """Workflow code sent a message (tell, or ask when ``ask``) to another actor."""

    cmd: int
    target: str
    target_type: str
    message: bytes
    ask: bool = False


@attrs.frozen(kw_only=True)
class SignalSent:
    """Workflow code signalled another actor."""

    cmd: int
    target: str
    target_type: str
    name: str
    args: bytes


@attrs.frozen(kw_only=True)
class ActorSpawned:
    """Workflow code spawned another actor with these arguments."""

    cmd: int
    target: str
    target_type: str
    args: bytes
    supervision: Supervision | None = None
    """The child's supervision policy (None: the default ``Supervision()``)."""


@attrs.frozen(kw_only=True)
class WatchSent:
    """Workflow code asked to hear when another actor ends.

    ``result`` True: the end answers a pending ``result()`` (like an ask's reply);
    False: it arrives as a ``Terminated`` message (``ctx.watch``).
    """

    cmd: int
    target: str
    target_type: str
    result: bool = False


@attrs.frozen(kw_only=True)
class Completed:
    """The run returned this result: the actor completed."""

    result: bytes


@attrs.frozen(kw_only=True)
class Failed:
    """The run raised: the actor failed."""

    failure: tuple[ErrorInfo, ...]


@attrs.frozen(kw_only=True)
class Cancelled:
    """The run ended by cancellation."""


@attrs.frozen(kw_only=True)
class ContinuedAsNew:
    """The run ended to start again with these arguments from the current state."""

    args: bytes
    state: bytes
    """The actor's state as the new run starts from it (also saved as a snapshot)."""


@attrs.frozen(kw_only=True)
class Terminated:
    """The host stopped the actor at once."""

    time: float
    reason: str


# Notes ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AttemptFailed:
    """An activity attempt failed and will be retried."""

    time: float
    cmd: int
    attempt: int
    failure: tuple[ErrorInfo, ...]


@attrs.frozen(kw_only=True)
class TurnAborted:
    """A handler raised: the turn of message ``key`` is rolled back.

    Replay skips the turn's activations (from its ``MessageReceived`` on), keeping the
    signals applied meanwhile, and the message is handled again. ``next_cmd`` keeps
    command numbers unique past the aborted turn's.
    """

    time: float
    key: str
    failure: tuple[ErrorInfo, ...]
    next_cmd: int


@attrs.frozen(kw_only=True)
class MessageDropped:
    """The supervisor gave up on message ``key`` (a poison message).

    It went to dead letters with this error, and the actor goes on without it.
    """

    time: float
    key: str
    failure: tuple[ErrorInfo, ...]


@attrs.frozen(kw_only=True)
class GaveUp:
    """The supervisor gave up on the actor: it failed with this error (cause chain)."""

    time: float
    failure: tuple[ErrorInfo, ...]


Note: TypeAlias = AttemptFailed | TurnAborted | MessageDropped | GaveUp
NOTES = (AttemptFailed, TurnAborted, MessageDropped, GaveUp, Terminated)


Input: TypeAlias = (
    Started
    | ActivityCompleted
    | ActivityFailed
    | TimerFired
    | SignalReceived
    | MessageReceived
    | ReplyReceived
    | CancelRequested
)
Command: TypeAlias = (
    ActivityScheduled
    | TimerStarted
    | TimerCancelled
    | Patched
    | Replied
    | MessageSent
    | SignalSent
    | ActorSpawned
    | WatchSent
    | Completed
    | Failed
    | Cancelled
    | ContinuedAsNew
)
HistoryEvent: TypeAlias = Input | Command | Terminated | Note

INPUTS = (
    Started,
    ActivityCompleted,
    ActivityFailed,
    TimerFired,
    SignalReceived,
    MessageReceived,
    ReplyReceived,
    CancelRequested,
)
COMMANDS = (
    ActivityScheduled,
    TimerStarted,
    TimerCancelled,
    Patched,
    Replied,
    MessageSent,
    SignalSent,
    ActorSpawned,
    WatchSent,
    Completed,
    Failed,
    Cancelled,
    ContinuedAsNew,
)
ALL_EVENTS: tuple[type, ...] = (*INPUTS, *COMMANDS, *NOTES, ErrorInfo)


@attrs.frozen(kw_only=True)
class Mail:
    """What an actor's inbox holds: a message, a reply, a signal or a spawn request."""

    kind: str
    """``"message"``, ``"reply"``, ``"signal"``, ``"spawn"``, ``"watch"`` (tell the
    sender when this actor ends) or ``"stop"`` (its parent ended: terminate)."""
    target_type: str
    """The receiving actor's type name: a virtual actor is created as this type."""
    body: bytes = b""
    """The encoded message, reply value, signal arguments or spawn arguments."""
    name: str = ""
    """The signal's name."""
    reply_to: str | None = None
    """For an ask from another actor: the asker, whose inbox takes the reply."""
    failure: tuple[ErrorInfo, ...] | None = None
    """For a reply: the handler's error."""
    parent: str | None = None
    """For a spawn: the spawning actor."""
    supervision: Supervision | None = None
    """For a spawn: the child's supervision policy."""
    spawned_at: int = 0
    """For a spawn: the spawning command's number (orders siblings)."""
    result: bool = False
    """For a watch: answer with a reply (``result()``), not a ``Terminated`` message."""


_KINDS: dict[type, str] = {
    TimerStarted: "a timer",
    Replied: "a reply",
    TimerCancelled: "a timer cancellation",
    Completed: "completion",
    Failed: "failure",
    Cancelled: "cancellation",
    ContinuedAsNew: "continue-as-new",
}


def describe(command: Command) -> str:  # noqa: PLR0911 - one answer per kind
    """Name a command for a nondeterminism report: its kind and, where it has one, name."""
    if isinstance(command, ActivityScheduled):
        return f"activity {command.name!r}"
    if isinstance(command, Patched):
        return f"patch marker {command.change_id!r}"
    if isinstance(command, MessageSent):
        return f"{'ask' if command.ask else 'tell'} to {command.target!r}"
    if isinstance(command, SignalSent):
        return f"signal {command.name!r} to {command.target!r}"
    if isinstance(command, ActorSpawned):
        return f"spawn of {command.target!r}"
    if isinstance(command, WatchSent):
        return f"watch of {command.target!r}"
    return _KINDS[type(command)]


def same_command(recorded: Command, issued: Command) -> bool:
    """Whether ``issued`` replays ``recorded``: same kind and, where it has one, name."""
    if type(recorded) is not type(issued):
        return False
    if isinstance(recorded, ActivityScheduled):
        return recorded.name == issued.name  # type: ignore[union-attr]
    if isinstance(recorded, Patched):
        return recorded.change_id == issued.change_id  # type: ignore[union-attr]
    if isinstance(recorded, MessageSent | SignalSent | ActorSpawned | WatchSent):
        return recorded.target == issued.target  # type: ignore[union-attr]
    return True
