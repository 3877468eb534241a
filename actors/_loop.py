"""The deterministic event loop that workflow code runs on.

Theory of operation: each actor's workflow runs on its own `DeterministicLoop`, an
`asyncio.AbstractEventLoop` that does no I/O, reads no clock and draws no randomness.
The driver (the replay engine) resolves one input, calls `run_until_quiescent()`, and
the loop runs ready callbacks until none is left. Live execution and replay make the
same calls in the same order, so tasks interleave identically in both. Ordinary asyncio
code (gather, wait, wait_for, timeout, sleep, Event, Lock, Queue, Condition, tasks)
runs unmodified because asyncio only asks its loop for what this module provides.

Invariants:

1. Ready callbacks run strictly in the order they were scheduled: one FIFO queue.
2. Time moves only when the driver calls `set_time()`, and never backwards.
3. A callback due later than `time()` is a durable timer: it goes to the `TimerSink`
   and runs only after the driver calls `fire_timer()`; the loop never fires one by
   itself. A pending timer that gets cancelled is reported to the sink exactly once.
4. The loop is the thread's running loop only inside `run_until_quiescent()`; the host
   loop (and its async-generator hooks) are restored on the way out, whatever happens.
5. Whatever would reach the world (sockets, threads, subprocesses, signals, the futures
   of another loop) raises `WorkflowSandboxError`: real I/O belongs in an activity.
"""

import asyncio
import collections
import sys
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from contextvars import Context
from typing import Any, NoReturn, Protocol, TypeVar, TypeVarTuple

from ._exceptions import WorkflowLivelockError, WorkflowSandboxError

__all__ = ["DeterministicLoop", "TimerSink"]

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")
# asyncio's exception-handler context is an open dict; its type is fixed by typeshed.
_ErrorContext = dict[str, Any]
_ExceptionHandler = Callable[[asyncio.AbstractEventLoop, _ErrorContext], object]

_DRIVEN_FIX = (
    "the actor runtime drives this loop, so `await` the work instead; "
    "real I/O belongs in an activity: `await ctx.activity(fn, ...)`"
)


class TimerSink(Protocol):
    """Receives the durable timers a `DeterministicLoop` starts and cancels.

    An exception from either method propagates into the workflow code that started or
    cancelled the timer; a timer whose start was refused is not pending.
    """

    def timer_started(self, handle: asyncio.TimerHandle) -> None:
        """Record that workflow code started a timer due at `handle.when()`."""

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """Record that a timer previously started was cancelled before it fired."""


def _refuse(name: str, fix: str | None = None) -> Callable[..., NoReturn]:
    """Build a loop method that refuses to run inside workflow code."""

    def refused(self: asyncio.AbstractEventLoop, *args: object, **kwargs: object) -> NoReturn:
        action = f"called loop.{name}()"
        raise WorkflowSandboxError(action, fix=fix)

    refused.__name__ = name
    refused.__qualname__ = f"DeterministicLoop.{name}"
    refused.__doc__ = f"Refuse `{name}`: workflow code must not do I/O or use threads."
    return refused


class _Sandboxed(Coroutine[Any, Any, _T]):
    """A task's coroutine, screened so it never hands its task a foreign future.

    Left alone, a task whose coroutine yields another loop's future throws a
    RuntimeError "... attached to a different loop" back into it on the next step. The
    C Task (`_asyncio.Task`, the default) builds that error inside an opaque
    `TaskStepMethWrapper` it passes to `call_soon` with no arguments, so the loop
    cannot see or replace it there; and by then the foreign future is left marked as
    awaited, so its own loop's next `await` on it fails. Both the C and the Python
    Task step their coroutine through `send` and `throw`, so this wrapper looks at
    what the coroutine yields instead: a foreign future is unmarked and a
    `WorkflowSandboxError` is thrown back in at the `await`, before the task sees it.
    """

    __slots__ = ("_coro", "_loop")

    def __init__(self, coro: Coroutine[Any, Any, _T], loop: asyncio.AbstractEventLoop) -> None:
        self._coro = coro
        self._loop = loop

    def send(self, value: Any) -> Any:
        return self._screen(self._coro.send(value))

    def throw(self, *exc_info: Any) -> Any:
        return self._screen(self._coro.throw(*exc_info))

    def _screen(self, yielded: Any) -> Any:
        # Only futures carry _asyncio_future_blocking; a bare `yield` (sleep(0)) is None.
        while (
            getattr(yielded, "_asyncio_future_blocking", None) is not None
            and yielded.get_loop() is not self._loop
        ):
            yielded._asyncio_future_blocking = False  # as if never awaited
            error = WorkflowSandboxError(
                f"awaited {yielded!r}, a future of another event loop (I/O, a host task, or "
                "an asyncio primitive created outside the workflow)"
            )
            yielded = self._coro.throw(error)
        return yielded

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, _T]:
        return self._coro.__await__()

    def __getattr__(self, name: str) -> object:
        # Task reprs and Task.get_stack() read cr_frame, cr_code, __qualname__, ...
        return getattr(self._coro, name)


class DeterministicLoop(asyncio.AbstractEventLoop):
    """A per-actor event loop whose every step is decided by its driver.

    Args:
        timer_sink: Told about each durable timer started and cancelled.
        start_time: The logical time `time()` returns until `set_time()` moves it.
        max_steps: How many callbacks one `run_until_quiescent()` may run before it
            decides the workflow is livelocked.

    Attributes:
        unhandled_errors: The contexts passed to the default exception handler (a
            callback that raised, a task destroyed while pending, an exception never
            retrieved), oldest first, for the driver to read. Nothing is printed.
    """

    def __init__(
        self, timer_sink: TimerSink, *, start_time: float = 0.0, max_steps: int = 1_000_000
    ) -> None:
        self._sink = timer_sink
        self._time = start_time
        self._max_steps = max_steps
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        # Keyed by id(): TimerHandle's __eq__/__hash__ compare by deadline and callback.
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._running = False
        self._closed = False
        self._debug = False
        self._exception_handler: _ExceptionHandler | None = None
        self.unhandled_errors: list[_ErrorContext] = []

    # Driver interface.

    def set_time(self, t: float) -> None:
        """Move logical time forward to `t`.

        Raises:
            ValueError: If `t` is earlier than the current time.
        """
        if t < self._time:
            msg = (
                f"logical time cannot go backwards: the loop is at {self._time} and "
                f"set_time() got {t}; feed inputs in journal order"
            )
            raise ValueError(msg)
        self._time = t

    def fire_timer(self, handle: asyncio.TimerHandle) -> None:
        """Queue a pending timer's callback behind the ready callbacks; ignore a cancelled one.

        Raises:
            ValueError: If the timer is not pending here: it already fired, or it
                belongs to another loop.
        """
        if handle.cancelled():
            return
        if self._timers.pop(id(handle), None) is None:
            msg = (
                f"timer {handle!r} is not pending on this loop: it already fired or was "
                "never started here"
            )
            raise ValueError(msg)
        self._ready.append(handle)

    def pending_timers(self) -> list[asyncio.TimerHandle]:
        """Return the timers started and neither fired nor cancelled, oldest first."""
        return list(self._timers.values())

    def has_ready(self) -> bool:
        """Return whether a callback is waiting to run."""
        return any(not handle.cancelled() for handle in self._ready)

    def run_until_quiescent(self) -> None:
        """Run ready callbacks in order, including new ones, until none is left.

        Raises:
            WorkflowLivelockError: If more than `max_steps` callbacks ran; the callback
                that would have been next stays queued.
            RuntimeError: If the loop is closed or already running.
        """
        self._check_closed()
        if self._running:
            msg = "run_until_quiescent() is already running; a workflow cannot drive its own loop"
            raise RuntimeError(msg)
        host_loop = asyncio.events._get_running_loop()
        host_hooks = sys.get_asyncgen_hooks()
        asyncio.events._set_running_loop(self)
        # An async generator first iterated here must be closed here, not on the host.
        sys.set_asyncgen_hooks(firstiter=None, finalizer=self._finalize_asyncgen)
        self._running = True
        try:
            steps = 0
            while self._ready:
                handle = self._ready.popleft()
                if handle.cancelled():
                    continue
                if steps == self._max_steps:
                    self._ready.appendleft(handle)
                    raise WorkflowLivelockError(steps)
                steps += 1
                handle._run()
        finally:
            self._running = False
            sys.set_asyncgen_hooks(*host_hooks)
            asyncio.events._set_running_loop(host_loop)

    # Scheduling.

    def call_soon(
        self, callback: Callable[[*_Ts], object], *args: *_Ts, context: Context | None = None
    ) -> asyncio.Handle:
        """Queue `callback(*args)` behind the ready callbacks."""
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        """Run `callback(*args)` after `delay` seconds of logical time; see `call_at`."""
        return self.call_at(self._time + delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: Context | None = None,
    ) -> asyncio.TimerHandle:
        """Run `callback(*args)` at logical time `when`.

        A deadline already reached is queued like `call_soon`; a later one becomes a
        durable timer handed to the timer sink, run only when the driver fires it.
        """
        self._check_closed()
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        if when <= self._time:
            self._ready.append(handle)
        else:
            # Told first: a sink that refuses the timer leaves nothing pending.
            self._sink.timer_started(handle)
            self._timers[id(handle)] = handle
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # asyncio calls this once, from TimerHandle.cancel(); fired timers stay silent.
        if self._timers.pop(id(handle), None) is not None:
            self._sink.timer_cancelled(handle)

    def time(self) -> float:
        """Return the logical time the driver last set."""
        return self._time

    # Futures and tasks.

    def create_future(self) -> asyncio.Future[Any]:
        """Create a future bound to this loop."""
        return asyncio.Future(loop=self)

    def create_task(
        self,
        coro: Generator[Any, None, _T] | Coroutine[Any, Any, _T],
        *,
        name: str | None = None,
        context: Context | None = None,
    ) -> asyncio.Task[_T]:
        """Schedule `coro` as a task on this loop."""
        self._check_closed()
        if isinstance(coro, Coroutine):
            coro = _Sandboxed(coro, self)
        return asyncio.Task(coro, loop=self, name=name, context=context)

    def get_task_factory(self) -> None:
        """Return None: this loop always creates plain asyncio tasks."""

    set_task_factory = _refuse(
        "set_task_factory", "the workflow loop creates its own tasks so it can sandbox them"
    )

    def _finalize_asyncgen(self, agen: AsyncGenerator[Any, Any]) -> None:
        if not self._closed:
            self.create_task(agen.aclose())

    # Errors.

    def call_exception_handler(self, context: _ErrorContext) -> None:
        """Pass an unhandled error to the custom handler, or record it."""
        if self._exception_handler is None:
            self.default_exception_handler(context)
            return
        try:
            self._exception_handler(self, context)
        except Exception as exc:  # noqa: BLE001 - the handler's failure is itself recorded
            failure = {"message": "Unhandled error in exception handler", "exception": exc}
            self.default_exception_handler(failure | {"context": context})

    def default_exception_handler(self, context: _ErrorContext) -> None:
        """Record `context` in `unhandled_errors`; never print or log it."""
        self.unhandled_errors.append(context)

    def set_exception_handler(self, handler: _ExceptionHandler | None) -> None:
        """Set the handler for unhandled errors; None restores the recording one."""
        self._exception_handler = handler

    def get_exception_handler(self) -> _ExceptionHandler | None:
        """Return the custom exception handler, if any."""
        return self._exception_handler

    # State.

    def is_running(self) -> bool:
        """Return whether `run_until_quiescent()` is running."""
        return self._running

    def is_closed(self) -> bool:
        """Return whether the loop was closed."""
        return self._closed

    def close(self) -> None:
        """Mark the loop closed; nothing is cancelled, nothing more may be scheduled."""
        self._closed = True

    def get_debug(self) -> bool:
        """Return the debug flag (False unless set)."""
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        """Store the debug flag; asyncio then keeps creation tracebacks on handles."""
        self._debug = enabled

    async def shutdown_asyncgens(self) -> None:
        """Do nothing: async generators are closed as they are dropped."""

    async def shutdown_default_executor(self) -> None:
        """Do nothing: this loop has no executor."""

    def _check_closed(self) -> None:
        if self._closed:
            msg = "the workflow loop is closed; a closed actor activation cannot schedule work"
            raise RuntimeError(msg)

    # Refused: each of these would do I/O, use threads, or run the loop from inside.
    # mypy cannot match a `...` signature against asyncio's TypeVarTuple ones, hence
    # the ignores below.

    run_forever = _refuse("run_forever", _DRIVEN_FIX)
    run_until_complete = _refuse("run_until_complete", _DRIVEN_FIX)
    stop = _refuse("stop", _DRIVEN_FIX)
    call_soon_threadsafe = _refuse("call_soon_threadsafe")  # type: ignore[assignment]
    run_in_executor = _refuse("run_in_executor")  # type: ignore[assignment]
    set_default_executor = _refuse("set_default_executor")
    getaddrinfo = _refuse("getaddrinfo")
    getnameinfo = _refuse("getnameinfo")
    create_connection = _refuse("create_connection")
    create_server = _refuse("create_server")
    create_unix_connection = _refuse("create_unix_connection")
    create_unix_server = _refuse("create_unix_server")
    create_datagram_endpoint = _refuse("create_datagram_endpoint")
    connect_accepted_socket = _refuse("connect_accepted_socket")
    connect_read_pipe = _refuse("connect_read_pipe")
    connect_write_pipe = _refuse("connect_write_pipe")
    start_tls = _refuse("start_tls")
    sendfile = _refuse("sendfile")
    sock_recv = _refuse("sock_recv")
    sock_recv_into = _refuse("sock_recv_into")
    sock_recvfrom = _refuse("sock_recvfrom")
    sock_recvfrom_into = _refuse("sock_recvfrom_into")
    sock_sendall = _refuse("sock_sendall")
    sock_sendto = _refuse("sock_sendto")
    sock_connect = _refuse("sock_connect")
    sock_accept = _refuse("sock_accept")
    sock_sendfile = _refuse("sock_sendfile")
    add_reader = _refuse("add_reader")  # type: ignore[assignment]
    remove_reader = _refuse("remove_reader")
    add_writer = _refuse("add_writer")  # type: ignore[assignment]
    remove_writer = _refuse("remove_writer")
    add_signal_handler = _refuse("add_signal_handler")  # type: ignore[assignment]
    remove_signal_handler = _refuse("remove_signal_handler")
    subprocess_exec = _refuse("subprocess_exec")
    subprocess_shell = _refuse("subprocess_shell")
