"""What becomes of an actor's mail when it ends, or when its supervisor gives up on it.

An actor that has ended takes no more messages, but everything waiting for it must
still be answered: a watcher hears how it ended, an asker gets a failure, a message
goes to dead letters with the reason, a stop request has nothing left to do. A message
taken earlier but not handled for good (a poison message, or a turn rolled back and
waiting to run again) is dead-lettered too, and a ``MessageDropped`` note says so in
the actor's history. Each of these is one commit on the actor's stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from journal import Outgoing

from ._events import Completed, Failed, GaveUp, Mail, MessageDropped, MessageReceived, Replied
from ._exceptions import ErrorInfo
from ._mail import dead_letter, ended_notice, failure_reply, reply_to
from ._status import Status
from ._supervision import Crash

if TYPE_CHECKING:
    from ._runner import Runner


def taken_by(crash: Crash | None, now: float) -> MessageReceived | None:
    """The message whose handler ``crash`` came from, if a handler crashed."""
    if crash is None or crash.source != "handler" or crash.key is None:
        return None
    return MessageReceived(time=now, key=crash.key, message=crash.message, reply_to=crash.reply_to)


def ending_of(runner: Runner) -> tuple[str, bytes | None, tuple[ErrorInfo, ...] | None]:
    """How the actor ended: its status, its run's result, its failure."""
    status, outcome = runner.status, runner.engine.outcome
    if isinstance(outcome, Completed):
        return status.value, outcome.result, None
    if isinstance(outcome, Failed):
        return status.value, None, outcome.failure
    kind = "ActorTerminated" if status is Status.TERMINATED else "ActorCancelled"
    message = f"actor {runner.actor_id!r} is {status.value}"
    return status.value, None, (ErrorInfo(type=f"actors.{kind}", message=message, traceback=""),)


async def bury_mail(runner: Runner, crash: Crash | None = None) -> None:
    """Answer watchers, and move other mail to dead letters: the actor has ended.

    Messages taken but not handled for good (the turn ``crash`` ended, turns rolled
    back and waiting to run again) go to dead letters too, their askers answered.
    """
    reason = f"actor {runner.actor_id!r} is {runner.status.value}"
    crashed = taken_by(crash, runner.system.clock.now())
    if crash is not None and crashed is not None:
        await drop_message(runner, crashed, crash.failure, reason)
    while runner.retry:
        again = runner.retry.popleft()
        if crashed is None or again.key != crashed.key:
            await drop_message(runner, again, failure_reply(reason), reason)
    for key in list(runner.mail):
        await discard(runner, key, reason)


async def discard(runner: Runner, key: str, reason: str | None) -> None:
    """Consume inbox entry ``key`` without an input: a dead letter, or a duplicate.

    A watch is answered instead (the actor has ended, or never existed), and a stop
    request for an actor that has ended has nothing left to do.
    """
    message, mail = runner.mail.pop(key)
    send: list[Outgoing] = []
    encode = runner.system.codec.encode
    if mail.kind == "watch":
        ending = (
            ending_of(runner)
            if runner.engine.ended
            else ("failed", None, failure_reply(reason or ""))
        )
        send.append(
            ended_notice(runner.actor_id, runner.type_name, key, mail, ending=ending, encode=encode)
        )
    elif mail.kind != "stop" and reason is not None:
        send.append(dead_letter(runner.actor_id, key, message.data, reason, encode))
        replied = Replied(key=key, failure=failure_reply(reason), reply_to=mail.reply_to)
        if mail.reply_to is not None:
            send.append(reply_to(mail.reply_to, key, replied, encode))
        else:
            runner.system._replied(runner.actor_id, replied)
    await runner.commit([], consume=key, send=send)


async def drop_message(
    runner: Runner, taken: MessageReceived, failure: tuple[ErrorInfo, ...], reason: str
) -> None:
    """Commit that a message taken earlier goes to dead letters, never handled.

    Its handler kept crashing (a poison message), or the actor ended while the message
    waited to be handled again. The asker, if any, gets ``failure``.
    """
    encode = runner.system.codec.encode
    mail = Mail(
        kind="message", target_type=runner.type_name, body=taken.message, reply_to=taken.reply_to
    )
    replied = Replied(key=taken.key, failure=failure, reply_to=taken.reply_to)
    send = [dead_letter(runner.actor_id, taken.key, encode(mail), reason, encode)]
    if taken.reply_to is not None:
        send.append(reply_to(taken.reply_to, taken.key, replied, encode))
    now = runner.system.clock.now()
    await runner.commit([MessageDropped(time=now, key=taken.key, failure=failure)], send=send)
    if taken.reply_to is None:
        runner.system._replied(runner.actor_id, replied)


async def give_up(runner: Runner, crash: Crash) -> None:
    """Commit that the supervisor gave up: the actor failed with ``crash``'s error.

    Its timers go, its children are stopped, its watchers hear of it, the message whose
    handler crashed is answered with the error, and its mailbox goes to dead letters.
    """
    cancel = runner.timer_keys()
    note = GaveUp(time=runner.system.clock.now(), failure=crash.failure)
    runner.engine.note(note)
    await runner.commit([note], status=Status.FAILED, cancel=cancel)
    runner.end()
    await bury_mail(runner, crash)
