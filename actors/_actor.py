"""What users write: the ``Actor`` base class, ``@signal``, ``@query``, ``@activity``, ``Retry``.

An actor class is an attrs class (the base applies ``attrs.define`` to every subclass)
whose fields are its durable state; ``run(self, ctx, *args)`` is its workflow body.
The decorators only mark functions; the system reads the marks when it registers a
type, so a mistake (a field without a default, a signal that is a coroutine) fails
at registration, before anything is stored.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar, TypeVar, dataclass_transform, overload

import attrs

_F = TypeVar("_F", bound=Callable[..., Any])

_SIGNAL = "__perdure_signal__"
_HANDLER = "__perdure_handler__"
_QUERY = "__perdure_query__"
_ACTIVITY = "__perdure_activity__"


@dataclass_transform(field_specifiers=(attrs.field,))
class Actor:
    """Base class of durable actors; subclasses are attrs classes of durable state.

    Every field needs a default: the system creates the state as ``Cls()`` and then
    replays the history onto it. Define ``async def run(self, ctx, *args)`` as the
    workflow body; its return value is the actor's result. Name the type for storage
    with ``class Order(Actor, name="orders.Order")`` (default: the class's qualified
    name); keep the name when renaming the class.
    """

    __actor_name__: ClassVar[str]

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__actor_name__ = name or cls.__qualname__
        attrs.define(cls, slots=False)  # in place: a dict class keeps its identity

    async def run(self, ctx: Any, *args: Any) -> Any:
        """The workflow body. Override it; the default does nothing and returns None."""


def handler(fn: _F) -> _F:
    """Mark ``async def name(self, ctx, msg: MessageType) -> R`` as a message handler.

    The annotation of ``msg`` says which messages (of that type or a subclass) it
    takes. Handlers run one message at a time in mailbox order, each a durable
    coroutine like ``run``; the return value answers an ``ask``.
    """
    if not inspect.iscoroutinefunction(fn):
        msg = f"@handler {fn.__qualname__} must be an async def (self, ctx, message)"
        raise TypeError(msg)
    setattr(fn, _HANDLER, True)
    return fn


def handlers_of(cls: type) -> dict[type, Callable[..., Any]]:
    """Map each message type to the handler of ``cls`` that takes it (cached per class)."""
    cached: dict[type, Callable[..., Any]] | None = cls.__dict__.get("__perdure_handlers__")
    if cached is not None:
        return cached
    found: dict[type, Callable[..., Any]] = {}
    for name in dir(cls):
        member = getattr(cls, name, None)
        if not getattr(member, _HANDLER, False):
            continue
        assert member is not None
        hints = typing.get_type_hints(member)
        params = list(inspect.signature(member).parameters)
        if len(params) != 3 or params[2] not in hints:
            msg = (
                f"@handler {member.__qualname__} must be `async def {name}(self, ctx, "
                "message: MessageType)` with the message's type annotated"
            )
            raise TypeError(msg)
        message_type = hints[params[2]]
        if message_type in found:
            msg = f"{cls.__qualname__} has two handlers for {message_type.__qualname__}"
            raise TypeError(msg)
        found[message_type] = member
    type.__setattr__(cls, "__perdure_handlers__", found)
    return found


def signal(fn: _F) -> _F:
    """Mark a method as a signal: it changes state at once, even while ``run`` waits.

    A signal method is synchronous, returns None and is journaled (name and arguments)
    where it was applied, so replay applies it at the same point.
    """
    setattr(fn, _SIGNAL, True)
    return fn


def query(fn: _F) -> _F:
    """Mark a method as a query: a read-only, synchronous view of the state.

    Queries are answered from memory and never journaled; they must not change state.
    """
    setattr(fn, _QUERY, True)
    return fn


def is_signal(fn: object) -> bool:
    """Whether ``fn`` was marked with ``@signal``."""
    return getattr(fn, _SIGNAL, False) is True


def is_query(fn: object) -> bool:
    """Whether ``fn`` was marked with ``@query``."""
    return getattr(fn, _QUERY, False) is True


@attrs.frozen(kw_only=True)
class Retry:
    """How an activity is retried: exponential backoff up to ``max_attempts``."""

    max_attempts: int = 3
    """Attempts in all, the first included; 1 means no retry."""
    initial: float = 1.0
    """Seconds before the first retry."""
    backoff: float = 2.0
    """Each further delay is the previous one times this."""
    maximum: float = 60.0
    """No delay is longer than this many seconds."""
    non_retryable: tuple[type[BaseException], ...] = ()
    """Errors of these types fail the activity at once."""

    def __attrs_post_init__(self) -> None:
        if self.max_attempts < 1:
            msg = f"Retry.max_attempts must be at least 1, not {self.max_attempts}"
            raise ValueError(msg)
        if self.initial < 0 or self.maximum < 0 or self.backoff < 1:
            msg = "Retry needs initial >= 0, maximum >= 0 and backoff >= 1"
            raise ValueError(msg)

    def delay(self, attempt: int) -> float:
        """Return the seconds to wait after failed attempt number ``attempt`` (from 1)."""
        return float(min(self.maximum, self.initial * self.backoff ** (attempt - 1)))

    def retries(self, error: BaseException, attempt: int) -> bool:
        """Whether to try again after ``error`` ended attempt number ``attempt``."""
        return attempt < self.max_attempts and not isinstance(error, self.non_retryable)


@attrs.frozen(kw_only=True)
class ActivityOptions:
    """An activity's name, retry policy and per-attempt timeout."""

    name: str
    retry: Retry = Retry()
    timeout: float | None = None
    """Seconds one attempt may take; None for no limit."""


def seconds(value: float | timedelta | None) -> float | None:
    """Return ``value`` in seconds (a number is taken as seconds already)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return None if value is None else float(value)


@overload
def activity(fn: _F, /) -> _F: ...
@overload
def activity(
    *,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
    name: str | None = None,
) -> Callable[[_F], _F]: ...
def activity(
    fn: _F | None = None,
    /,
    *,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
    name: str | None = None,
) -> _F | Callable[[_F], _F]:
    """Set an activity function's defaults: retry policy, timeout per attempt, name.

    Plain functions are activities too; the decorator only changes their defaults.
    The name (default: the function's qualified name) is what the history records, so
    keep it when renaming the function.
    """

    def mark(f: _F) -> _F:
        options = ActivityOptions(
            name=name or f.__qualname__, retry=retry or Retry(), timeout=seconds(timeout)
        )
        setattr(f, _ACTIVITY, options)
        return f

    return mark if fn is None else mark(fn)


def activity_options(
    fn: Callable[..., Any], retry: Retry | None, timeout: float | timedelta | None
) -> ActivityOptions:
    """Return ``fn``'s options with a call's overrides applied."""
    base: ActivityOptions = getattr(fn, _ACTIVITY, None) or ActivityOptions(
        name=getattr(fn, "__qualname__", repr(fn))
    )
    if retry is None and timeout is None:
        return base
    return attrs.evolve(
        base,
        retry=retry or base.retry,
        timeout=base.timeout if timeout is None else seconds(timeout),
    )


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine (so it runs on the loop, not a thread)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an async callable object
    )
