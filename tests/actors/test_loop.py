"""Tests for the deterministic event loop that workflow code runs on.

Most tests are `async def`: pytest-asyncio runs them inside a host loop, which is where
the actor runtime drives a DeterministicLoop from.
"""

import _asyncio
import asyncio
import contextvars
import gc
import sys
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from actors._exceptions import ActorError, WorkflowLivelockError, WorkflowSandboxError
from actors._loop import DeterministicLoop

T = TypeVar("T")


class RecordingSink:
    def __init__(self) -> None:
        self.started: list[asyncio.TimerHandle] = []
        self.cancelled: list[asyncio.TimerHandle] = []

    def timer_started(self, handle: asyncio.TimerHandle) -> None:
        self.started.append(handle)

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self.cancelled.append(handle)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def loop(sink: RecordingSink) -> Iterator[DeterministicLoop]:
    loop = DeterministicLoop(sink, start_time=100.0)
    yield loop
    loop.close()


def start(loop: DeterministicLoop, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    task = loop.create_task(coro)
    loop.run_until_quiescent()
    return task


def boom() -> None:
    raise ValueError


# Ordering and determinism.


def test_callbacks_run_in_fifo_order_including_those_scheduled_while_running(
    loop: DeterministicLoop,
) -> None:
    trace: list[str] = []

    def first() -> None:
        trace.append("first")
        loop.call_soon(trace.append, "scheduled by first")

    loop.call_soon(first)
    loop.call_soon(trace.append, "second")
    cancelled = loop.call_soon(trace.append, "cancelled")
    cancelled.cancel()
    assert loop.has_ready()
    loop.run_until_quiescent()

    assert trace == ["first", "second", "scheduled by first"]
    assert not loop.has_ready()
    assert not loop.is_running()
    assert asyncio.events._get_running_loop() is None


def interleaving_program(trace: list[str]) -> Coroutine[Any, Any, list[str]]:
    async def worker(name: str, steps: int) -> str:
        for i in range(steps):
            trace.append(f"{name}{i}")
            await asyncio.sleep(0)
        return name

    async def main() -> list[str]:
        first = asyncio.create_task(worker("a", 3))
        results = await asyncio.gather(worker("b", 2), worker("c", 3))
        trace.append("gathered")
        return [await first, *results]

    return main()


async def test_same_program_produces_the_same_trace_on_every_run() -> None:
    traces: list[list[str]] = []
    for _ in range(2):
        trace: list[str] = []
        loop = DeterministicLoop(RecordingSink())
        task = start(loop, interleaving_program(trace))
        assert task.result() == ["a", "b", "c"]
        traces.append(trace)

    assert traces[0] == traces[1]
    assert traces[0] == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "c2", "gathered"]


def test_every_event_loop_method_is_implemented_or_refused() -> None:
    inherited = [
        name
        for name, value in vars(asyncio.AbstractEventLoop).items()
        if callable(value) and getattr(DeterministicLoop, name) is value
    ]
    assert inherited == []


# Time and durable timers.


async def test_sleep_starts_a_durable_timer_that_completes_only_when_fired(
    loop: DeterministicLoop, sink: RecordingSink
) -> None:
    async def workflow() -> float:
        await asyncio.sleep(10)
        return loop.time()

    task = start(loop, workflow())
    [timer] = sink.started
    assert timer.when() == 110.0
    assert loop.pending_timers() == [timer]
    assert not loop.has_ready()

    loop.set_time(110.0)
    loop.run_until_quiescent()
    assert not task.done(), "the loop must never fire a timer by itself"

    loop.fire_timer(timer)
    assert loop.has_ready()
    loop.run_until_quiescent()
    assert task.result() == 110.0
    assert loop.pending_timers() == []
    assert sink.cancelled == [], "sleep cancels its fired timer on the way out; not reported"


async def test_sleep_zero_and_past_due_call_at_start_no_timer(
    loop: DeterministicLoop, sink: RecordingSink
) -> None:
    trace: list[str] = []

    async def workflow() -> None:
        await asyncio.sleep(0)
        asyncio.get_running_loop().call_at(99.0, trace.append, "past due")
        asyncio.get_running_loop().call_later(0, trace.append, "due now")
        await asyncio.sleep(0)

    start(loop, workflow()).result()
    assert trace == ["past due", "due now"]
    assert sink.started == []


async def test_pending_timers_are_listed_in_creation_order_until_fired_or_cancelled(
    loop: DeterministicLoop,
) -> None:
    async def sleeper(seconds: float) -> None:
        await asyncio.sleep(seconds)

    late = start(loop, sleeper(20))
    start(loop, sleeper(10))
    assert [timer.when() for timer in loop.pending_timers()] == [120.0, 110.0]

    late.cancel()
    loop.run_until_quiescent()
    assert [timer.when() for timer in loop.pending_timers()] == [110.0]

    loop.set_time(110.0)
    loop.fire_timer(loop.pending_timers()[0])
    loop.run_until_quiescent()
    assert loop.pending_timers() == []


async def test_cancelling_a_sleeping_task_reports_its_timer_cancelled_once(
    loop: DeterministicLoop, sink: RecordingSink
) -> None:
    task = start(loop, asyncio.sleep(30))
    [timer] = sink.started

    task.cancel()
    loop.run_until_quiescent()
    assert task.cancelled()
    assert sink.cancelled == [timer]

    timer.cancel()
    loop.fire_timer(timer)
    assert sink.cancelled == [timer]
    assert not loop.has_ready()


async def test_timer_refused_by_the_sink_fails_the_workflow_and_is_not_pending() -> None:
    class RefusingSink(RecordingSink):
        def timer_started(self, handle: asyncio.TimerHandle) -> None:
            raise LookupError

    loop = DeterministicLoop(RefusingSink())
    task = start(loop, asyncio.sleep(10))
    assert isinstance(task.exception(), LookupError)
    assert loop.pending_timers() == []


def test_fire_timer_rejects_a_timer_that_already_fired(loop: DeterministicLoop) -> None:
    trace: list[str] = []
    timer = loop.call_later(5, trace.append, "fired")
    loop.fire_timer(timer)

    with pytest.raises(ValueError, match="not pending on this loop"):
        loop.fire_timer(timer)

    loop.run_until_quiescent()
    assert trace == ["fired"]


async def test_wait_for_that_finishes_first_reports_its_timer_cancelled_once(
    loop: DeterministicLoop, sink: RecordingSink
) -> None:
    activity_result = loop.create_future()

    async def workflow() -> str:
        result: str = await asyncio.wait_for(activity_result, 30)
        return result

    task = start(loop, workflow())
    [timer] = sink.started
    assert timer.when() == 130.0

    activity_result.set_result("charged")
    loop.run_until_quiescent()
    assert task.result() == "charged"
    assert sink.cancelled == [timer]
    assert loop.pending_timers() == []


async def test_wait_for_times_out_when_its_timer_fires(
    loop: DeterministicLoop, sink: RecordingSink
) -> None:
    never = loop.create_future()
    task = start(loop, asyncio.wait_for(never, 30))
    [timer] = sink.started

    loop.set_time(timer.when())
    loop.fire_timer(timer)
    loop.run_until_quiescent()
    assert isinstance(task.exception(), TimeoutError)
    assert never.cancelled()
    assert sink.cancelled == []


async def test_timeout_block_reports_its_cancelled_timer_once(
    loop: DeterministicLoop, sink: RecordingSink
) -> None:
    async def workflow() -> str:
        async with asyncio.timeout(5):
            await asyncio.sleep(1)
        return "in time"

    task = start(loop, workflow())
    deadline, nap = sink.started
    assert (deadline.when(), nap.when()) == (105.0, 101.0)

    loop.set_time(nap.when())
    loop.fire_timer(nap)
    loop.run_until_quiescent()
    assert task.result() == "in time"
    assert sink.cancelled == [deadline]


def test_set_time_refuses_to_go_backwards(loop: DeterministicLoop) -> None:
    loop.set_time(100.0)
    loop.set_time(150.0)

    with pytest.raises(ValueError, match=r"cannot go backwards: the loop is at 150\.0"):
        loop.set_time(149.5)
    assert loop.time() == 150.0


# asyncio primitives and context.


async def test_event_lock_queue_and_condition_coordinate_tasks(loop: DeterministicLoop) -> None:
    async def workflow() -> tuple[list[str], list[int], str]:
        trace: list[str] = []
        lock = asyncio.Lock()
        queue: asyncio.Queue[int] = asyncio.Queue(maxsize=1)
        event = asyncio.Event()
        condition = asyncio.Condition()
        state = {"ready": False}

        async def locked(name: str) -> None:
            async with lock:
                trace.append(f"{name} in")
                await asyncio.sleep(0)
                trace.append(f"{name} out")

        async def produce() -> None:
            for item in (1, 2, 3, -1):
                await queue.put(item)

        async def consume() -> list[int]:
            items: list[int] = []
            while (item := await queue.get()) >= 0:
                items.append(item)
            return items

        async def await_condition() -> str:
            await event.wait()
            async with condition:
                await condition.wait_for(lambda: state["ready"])
            return "notified"

        async def notify() -> None:
            event.set()
            await asyncio.sleep(0)
            async with condition:
                state["ready"] = True
                condition.notify_all()

        _, _, _, items, notified, _ = await asyncio.gather(
            locked("a"), locked("b"), produce(), consume(), await_condition(), notify()
        )
        return trace, items, notified

    task = start(loop, workflow())
    assert task.result() == (["a in", "a out", "b in", "b out"], [1, 2, 3], "notified")


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


async def test_contextvars_propagate_to_tasks(loop: DeterministicLoop) -> None:
    async def child() -> str:
        return request_id.get()

    async def workflow() -> str:
        request_id.set("req-7")
        return await asyncio.create_task(child())

    assert start(loop, workflow()).result() == "req-7"
    assert request_id.get(None) is None, "the workflow's context must not leak to the host"


# Running-loop discipline.


async def test_workflow_code_runs_with_the_deterministic_loop_as_running_loop(
    loop: DeterministicLoop,
) -> None:
    host = asyncio.get_running_loop()
    host_hooks = sys.get_asyncgen_hooks()
    seen: list[tuple[asyncio.AbstractEventLoop, bool, asyncio.Task[Any] | None]] = []

    async def workflow() -> None:
        running = asyncio.get_running_loop()
        seen.append((running, running.is_running(), asyncio.current_task()))

    task = start(loop, workflow())
    assert seen == [(loop, True, task)]
    assert asyncio.get_running_loop() is host
    assert asyncio.current_task() is not task
    assert sys.get_asyncgen_hooks() == host_hooks
    assert not loop.is_running()


async def test_host_loop_is_restored_when_a_callback_raises(loop: DeterministicLoop) -> None:
    host = asyncio.get_running_loop()
    host_hooks = sys.get_asyncgen_hooks()

    def interrupt() -> None:
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_quiescent()

    assert asyncio.get_running_loop() is host
    assert sys.get_asyncgen_hooks() == host_hooks
    assert not loop.is_running()


def test_run_until_quiescent_refuses_reentry(loop: DeterministicLoop) -> None:
    errors: list[RuntimeError] = []

    def reenter() -> None:
        try:
            loop.run_until_quiescent()
        except RuntimeError as exc:
            errors.append(exc)

    loop.call_soon(reenter)
    loop.run_until_quiescent()
    [error] = errors
    assert "already running" in str(error)


async def test_livelock_guard_stops_a_busy_loop_and_keeps_its_next_step(
    sink: RecordingSink,
) -> None:
    host = asyncio.get_running_loop()
    loop = DeterministicLoop(sink, max_steps=50)

    async def spin() -> None:
        while True:  # noqa: ASYNC110 - the busy loop is what the guard must stop
            await asyncio.sleep(0)

    task = loop.create_task(spin())
    with pytest.raises(WorkflowLivelockError, match="without ever waiting on something durable"):
        loop.run_until_quiescent()

    assert asyncio.get_running_loop() is host
    assert loop.has_ready()
    task.cancel()
    loop.run_until_quiescent()
    assert task.cancelled()


def test_livelock_error_carries_the_step_count() -> None:
    error = WorkflowLivelockError(50)
    assert error.steps == 50
    assert isinstance(error, ActorError)
    assert "ran 50 callbacks" in str(error)


async def test_dropped_async_generator_is_closed_on_the_workflow_loop(
    loop: DeterministicLoop,
) -> None:
    closed_on: list[asyncio.AbstractEventLoop] = []

    async def numbers() -> Any:
        try:
            yield 1
            yield 2
        finally:
            closed_on.append(asyncio.get_running_loop())

    async def workflow() -> None:
        agen = numbers()
        async for _ in agen:
            break
        del agen

    start(loop, workflow()).result()
    assert closed_on == [loop]


def test_closed_loop_refuses_new_work(loop: DeterministicLoop) -> None:
    loop.close()
    assert loop.is_closed()

    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(5, print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_quiescent()


# The sandbox.


@pytest.fixture(params=["C Task", "Python Task"])
def task_class(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type[Any]:
    if request.param == "C Task":
        assert asyncio.Task is _asyncio.Task, "the C-accelerated Task is the default"
        return _asyncio.Task
    python_task: type[Any] = vars(asyncio.tasks)["_PyTask"]
    monkeypatch.setattr(asyncio, "Task", python_task)
    return python_task


async def test_awaiting_a_host_future_raises_sandbox_error_inside_workflow_code(
    loop: DeterministicLoop, task_class: type[Any]
) -> None:
    host = asyncio.get_running_loop()
    host_futures = [host.create_future(), host.create_future()]
    caught: list[WorkflowSandboxError] = []

    async def workflow() -> str:
        for host_future in host_futures:
            try:
                await host_future
            except WorkflowSandboxError as exc:
                caught.append(exc)
        return "recovered"

    task = start(loop, workflow())
    assert type(task) is task_class
    assert task.result() == "recovered"
    assert len(caught) == 2
    error = caught[0]
    assert isinstance(error, RuntimeError)
    assert isinstance(error, ActorError)
    assert "awaited <Future pending>, a future of another event loop" in str(error)
    assert "await ctx.activity(fn, ...)" in str(error)

    host_futures[0].set_result("still usable")
    assert await host_futures[0] == "still usable", "the host future must not be left marked"
    host_futures[1].cancel()


async def test_awaiting_a_host_task_fails_the_workflow_task_with_sandbox_error(
    loop: DeterministicLoop, task_class: type[Any]
) -> None:
    host_task = asyncio.create_task(asyncio.sleep(0))

    async def workflow() -> None:
        await host_task

    task = start(loop, workflow())
    assert isinstance(task.exception(), WorkflowSandboxError)
    await host_task


REFUSED = [
    "run_forever",
    "run_until_complete",
    "stop",
    "call_soon_threadsafe",
    "run_in_executor",
    "set_default_executor",
    "getaddrinfo",
    "getnameinfo",
    "create_connection",
    "create_server",
    "create_unix_connection",
    "create_unix_server",
    "create_datagram_endpoint",
    "connect_accepted_socket",
    "connect_read_pipe",
    "connect_write_pipe",
    "start_tls",
    "sendfile",
    "sock_recv",
    "sock_recv_into",
    "sock_recvfrom",
    "sock_recvfrom_into",
    "sock_sendall",
    "sock_sendto",
    "sock_connect",
    "sock_accept",
    "sock_sendfile",
    "add_reader",
    "remove_reader",
    "add_writer",
    "remove_writer",
    "add_signal_handler",
    "remove_signal_handler",
    "subprocess_exec",
    "subprocess_shell",
]


@pytest.mark.parametrize("name", REFUSED)
def test_refused_methods_raise_sandbox_error_naming_themselves(
    loop: DeterministicLoop, name: str
) -> None:
    method = getattr(loop, name)
    with pytest.raises(WorkflowSandboxError, match=rf"called loop\.{name}\(\)") as excinfo:
        method("any", "arguments", flag=True)

    assert "await ctx.activity(fn, ...)" in str(excinfo.value)
    assert method.__name__ == name


def test_task_factory_is_none_and_cannot_be_replaced(loop: DeterministicLoop) -> None:
    as_seen_by_asyncio: asyncio.AbstractEventLoop = loop
    assert as_seen_by_asyncio.get_task_factory() is None
    with pytest.raises(WorkflowSandboxError, match=r"loop\.set_task_factory\(\)"):
        loop.set_task_factory(None)


async def test_to_thread_in_workflow_code_is_refused_inside_the_coroutine(
    loop: DeterministicLoop,
) -> None:
    calls: list[int] = []

    async def workflow() -> None:
        with pytest.raises(WorkflowSandboxError, match="run_in_executor"):
            await asyncio.to_thread(calls.append, 1)

    start(loop, workflow()).result()
    assert calls == []


# Errors, debug and shutdown.


async def test_exceptions_in_callbacks_are_recorded_not_printed(
    loop: DeterministicLoop, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    loop.call_soon(boom)
    loop.run_until_quiescent()

    [context] = loop.unhandled_errors
    assert isinstance(context["exception"], ValueError)
    assert capsys.readouterr() == ("", "")
    assert caplog.records == []


def test_task_exception_never_retrieved_is_recorded(loop: DeterministicLoop) -> None:
    async def fail() -> None:
        raise ValueError

    task = start(loop, fail())
    del task
    gc.collect()

    [context] = loop.unhandled_errors
    assert context["message"] == "Task exception was never retrieved"
    assert isinstance(context["exception"], ValueError)


def test_custom_exception_handler_gets_errors_and_its_own_failure_is_recorded(
    loop: DeterministicLoop,
) -> None:
    seen: list[tuple[asyncio.AbstractEventLoop, dict[str, Any]]] = []
    loop.set_exception_handler(lambda lp, context: seen.append((lp, context)))
    assert loop.get_exception_handler() is not None
    loop.call_soon(boom)
    loop.run_until_quiescent()
    [(handler_loop, context)] = seen
    assert handler_loop is loop
    assert isinstance(context["exception"], ValueError)
    assert loop.unhandled_errors == []

    def broken_handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        raise KeyError

    loop.set_exception_handler(broken_handler)
    loop.call_soon(boom)
    loop.run_until_quiescent()
    [recorded] = loop.unhandled_errors
    assert isinstance(recorded["exception"], KeyError)
    assert isinstance(recorded["context"]["exception"], ValueError)


async def test_debug_flag_and_shutdown_hooks_are_inert(loop: DeterministicLoop) -> None:
    assert loop.get_debug() is False
    loop.set_debug(True)
    assert loop.get_debug() is True
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()


async def test_task_repr_and_stack_show_the_workflow_coroutine(loop: DeterministicLoop) -> None:
    async def workflow() -> None:
        await asyncio.sleep(5)

    task = start(loop, workflow())
    assert "workflow()" in repr(task)
    assert [frame.f_code.co_name for frame in task.get_stack()] == ["workflow"]
    task.cancel()
    loop.run_until_quiescent()
