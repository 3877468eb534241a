"""The engine's mailbox side: handlers, selective receive, asks, sends. No I/O.

Theory of operation. A message enters an engine only as a ``MessageReceived`` input,
and the runner feeds one only when ``wants()`` says the code can take it now: a
``ctx.receive`` waiting for its type (first come, first served), or else an idle
``@handler`` for its type. Handlers run one at a time as tasks on the deterministic
loop, interleaved with ``run``; when one returns or raises, a ``Replied`` command
records the answer. What workflow code sends (tell, ask, signal, spawn) becomes a
command whose payload the runner puts in the receiver's inbox in the same commit
(a transactional outbox); an ask's reply comes back as a ``ReplyReceived`` input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._actor import Actor, handlers_of
from ._events import (
    ActorSpawned,
    MessageReceived,
    MessageSent,
    Replied,
    ReplyReceived,
    SignalSent,
    WatchSent,
)
from ._exceptions import Rejected, actor_failed
from ._failures import failure_info
from ._supervision import Crash, Supervision

if TYPE_CHECKING:
    from ._replay import Engine


def sent_key(actor_id: str, cmd: int) -> str:
    """The inbox key of the message that command ``cmd`` of ``actor_id`` sent.

    Keys of actors' sends start with ``act:``, callers' with ``ext:`` (see
    ``ActorRef``): the two can never collide in one inbox.
    """
    return f"act:{actor_id}/{cmd}"


class Mailbox:
    """Handlers, receives and asks of one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._handlers = handlers_of(type(engine.actor))
        self._receives: list[tuple[tuple[type, ...], asyncio.Future[Any]]] = []
        self._asks: dict[str, tuple[str, asyncio.Future[Any]]] = {}
        self.handling = False
        """Whether a handler is running (the next message waits)."""
        self._last: tuple[bytes, object] | None = None

    def decode(self, data: bytes) -> object:
        """Decode a message body; the same bytes object decodes once (runner, then engine)."""
        last = self._last
        if last is not None and last[0] is data:
            return last[1]
        message = self._engine.codec.decode(data)
        self._last = (data, message)
        return message

    def handler_for(self, message: object) -> Callable[..., Any] | None:
        """The handler of ``message``'s type (or a base type), or None."""
        for cls in type(message).__mro__:
            found = self._handlers.get(cls)
            if found is not None:
                return found
        return None

    def wants(self, message: object) -> bool:
        """Whether the code can take ``message`` now."""
        if any(isinstance(message, types) for types, f in self._receives if not f.done()):
            return True
        return not self.handling and self.handler_for(message) is not None

    def refuses(self, message: object) -> bool:
        """Whether no code of this actor will ever take ``message`` (a dead letter)."""
        return self.handler_for(message) is None and not self._engine.has_run

    def pending_asks(self) -> set[str]:
        """Keys of this engine's asks still waiting for their reply."""
        return set(self._asks)

    def deliver(self, event: MessageReceived) -> None:
        """Apply a received message: wake a ``receive``, or start its handler."""
        message = self.decode(event.message)
        for entry in self._receives:
            types, future = entry
            if not future.done() and isinstance(message, types):
                self._receives.remove(entry)
                future.set_result(message)
                return
        handler = self.handler_for(message)
        assert handler is not None, "the runner feeds only messages the engine wants"
        self.handling = True
        task = self._engine.loop.create_task(self._handle(handler, message, event))
        task.add_done_callback(_retrieve)

    async def _handle(
        self, handler: Callable[..., Any], message: object, event: MessageReceived
    ) -> None:
        engine = self._engine
        try:
            value = await handler(engine.actor, engine.context, message)
            reply = Replied(
                key=event.key, result=engine.codec.encode(value), reply_to=event.reply_to
            )
        except Rejected as error:  # a deliberate failure: it answers the sender
            reply = Replied(key=event.key, failure=failure_info(error), reply_to=event.reply_to)
        except Exception as error:  # noqa: BLE001 - a crash: the supervisor decides
            engine.crashed(
                Crash(
                    source="handler",
                    failure=failure_info(error),
                    key=event.key,
                    message=event.message,
                    reply_to=event.reply_to,
                )
            )
            return
        finally:
            self.handling = False
        engine.issue(reply)

    def reply(self, event: ReplyReceived) -> None:
        """Resolve the ask that ``event`` answers."""
        target, future = self._asks.pop(event.key)
        if future.done():
            return
        if event.failure is not None:
            future.set_exception(actor_failed(target, event.failure))
        else:
            assert event.result is not None
            future.set_result(self._engine.codec.decode(event.result))

    async def receive(self, types: tuple[type, ...]) -> Any:
        """Wait for the first message of one of ``types`` (selective receive)."""
        future: asyncio.Future[Any] = self._engine.loop.create_future()
        entry = (types, future)
        self._receives.append(entry)
        try:
            return await future
        finally:
            if entry in self._receives:
                self._receives.remove(entry)

    def send(self, target: str, target_type: type[Actor], message: object, ask: bool) -> str:
        """Issue a tell or ask of ``message`` to ``target``; return the message's key."""
        engine = self._engine
        cmd = engine.next_command()
        engine.issue(
            MessageSent(
                cmd=cmd,
                target=target,
                target_type=target_type.__actor_name__,
                message=engine.codec.encode(message),
                ask=ask,
            )
        )
        return sent_key(engine.actor_id, cmd)

    async def ask(self, target: str, target_type: type[Actor], message: object) -> Any:
        """Send ``message`` and wait for the receiver's reply."""
        key = self.send(target, target_type, message, ask=True)
        future: asyncio.Future[Any] = self._engine.loop.create_future()
        self._asks[key] = (target, future)
        return await future

    def signal(self, target: str, target_type: type[Actor], name: str, args: list[Any]) -> None:
        """Issue a signal to another actor."""
        engine = self._engine
        engine.issue(
            SignalSent(
                cmd=engine.next_command(),
                target=target,
                target_type=target_type.__actor_name__,
                name=name,
                args=engine.codec.encode(args),
            )
        )

    def spawn(
        self,
        target: str,
        target_type: type[Actor],
        args: list[Any],
        supervision: Supervision | None,
    ) -> None:
        """Issue the spawn of a child actor."""
        engine = self._engine
        engine.issue(
            ActorSpawned(
                cmd=engine.next_command(),
                target=target,
                target_type=target_type.__actor_name__,
                args=engine.codec.encode(args),
                supervision=supervision,
            )
        )
        if target not in engine.children:
            engine.children.append(target)

    def watch(self, target: str, target_type: type[Actor]) -> None:
        """Issue a watch: a ``Terminated`` message arrives when ``target`` ends."""
        engine = self._engine
        name = target_type.__actor_name__
        engine.issue(WatchSent(cmd=engine.next_command(), target=target, target_type=name))

    async def result(self, target: str, target_type: type[Actor]) -> Any:
        """Wait for ``target``'s end and return its run's result (a reply, journaled)."""
        engine = self._engine
        cmd = engine.next_command()
        name = target_type.__actor_name__
        engine.issue(WatchSent(cmd=cmd, target=target, target_type=name, result=True))
        future: asyncio.Future[Any] = engine.loop.create_future()
        self._asks[sent_key(engine.actor_id, cmd)] = (target, future)
        return await future


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # handled inside; never let asyncio report it as lost
