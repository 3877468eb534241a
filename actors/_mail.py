"""What the runner puts in other actors' inboxes, and the dead-letter record.

Pure functions from committed commands to ``journal.Outgoing`` entries: the sends of
an activation go into the same commit as the activation (a transactional outbox), each
keyed so that a repeated commit enqueues nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from journal import Outgoing

from ._events import ActorSpawned, Command, Mail, MessageSent, Replied, SignalSent, WatchSent
from ._exceptions import ErrorInfo
from ._messages import sent_key
from ._supervision import Terminated

DEAD_LETTERS = "$dead-letters"
"""The stream whose inbox keeps every dead letter."""

SPAWN_KEY = "$spawn"
"""The inbox key of the message that creates a spawned actor."""

STOP_KEY = "$stop"
"""The inbox key of the request that stops a child whose parent ended."""

Encode = Callable[[object], bytes]


@attrs.frozen(kw_only=True)
class DeadLetterRecord:
    """A dead letter as stored: the message, where it was going, and why it died."""

    target: str
    key: str
    mail: bytes
    reason: str


def reply_key(key: str) -> str:
    """The inbox key of the reply to the ask whose message had ``key``."""
    return f"reply/{key}"


def outgoing(actor_id: str, commands: Sequence[Command], encode: Encode) -> list[Outgoing]:
    """The inbox entries that ``commands`` of ``actor_id`` send to other actors."""
    out: list[Outgoing] = []
    for command in commands:
        if isinstance(command, MessageSent):
            mail = Mail(
                kind="message",
                target_type=command.target_type,
                body=command.message,
                reply_to=actor_id if command.ask else None,
            )
            out.append(_entry(command.target, sent_key(actor_id, command.cmd), mail, encode))
        elif isinstance(command, SignalSent):
            mail = Mail(
                kind="signal", target_type=command.target_type, body=command.args, name=command.name
            )
            out.append(_entry(command.target, sent_key(actor_id, command.cmd), mail, encode))
        elif isinstance(command, ActorSpawned):
            mail = Mail(
                kind="spawn",
                target_type=command.target_type,
                body=command.args,
                parent=actor_id,
                supervision=command.supervision,
                spawned_at=command.cmd,
            )
            out.append(_entry(command.target, SPAWN_KEY, mail, encode))
        elif isinstance(command, WatchSent):
            mail = Mail(
                kind="watch",
                target_type=command.target_type,
                reply_to=actor_id,
                result=command.result,
            )
            out.append(_entry(command.target, sent_key(actor_id, command.cmd), mail, encode))
        elif isinstance(command, Replied) and command.reply_to is not None:
            out.append(reply_to(command.reply_to, command.key, command, encode))
    return out


def reply_to(asker: str, key: str, replied: Replied, encode: Encode) -> Outgoing:
    """The inbox entry carrying ``replied`` back to the asking actor."""
    mail = Mail(kind="reply", target_type="", body=replied.result or b"", failure=replied.failure)
    return _entry(asker, reply_key(key), mail, encode)


def stop_requests(children: Sequence[str], reason: str, encode: Encode) -> list[Outgoing]:
    """The entries that stop ``children`` (in the order given) because their parent ended."""
    mail = Mail(kind="stop", target_type="", name=reason)
    return [_entry(child, STOP_KEY, mail, encode) for child in children]


def ended_notice(
    actor_id: str,
    type_name: str,
    key: str,
    watch: Mail,
    *,
    ending: tuple[str, bytes | None, tuple[ErrorInfo, ...] | None],
    encode: Encode,
) -> Outgoing:
    """What the watcher whose watch has ``key`` gets now that ``actor_id`` has ended.

    ``ending`` is the status value, the run's result and the failure. A ``result()``
    watch gets a reply (the result, or the failure); a ``ctx.watch`` a ``Terminated``
    message.
    """
    status, result, failure = ending
    assert watch.reply_to is not None
    if watch.result:
        if failure is None and result is None:
            failure = (ErrorInfo(type="actors.ActorError", message=status, traceback=""),)
        replied = Replied(key=key, result=result if failure is None else None, failure=failure)
        return reply_to(watch.reply_to, key, replied, encode)
    reason = failure[0].message if failure else ""
    notice = Terminated(actor_id=actor_id, actor_type=type_name, status=status, reason=reason)
    mail = Mail(kind="message", target_type="", body=encode(notice))
    return _entry(watch.reply_to, f"{key}/ended", mail, encode)


def dead_letter(target: str, key: str, data: bytes, reason: str, encode: Encode) -> Outgoing:
    """The entry recording that message ``key`` to ``target`` died, and why."""
    record = DeadLetterRecord(target=target, key=key, mail=data, reason=reason)
    return Outgoing(stream=DEAD_LETTERS, key=f"{target}/{key}", data=encode(record))


def failure_reply(reason: str) -> tuple[ErrorInfo, ...]:
    """The failure an asker gets when its message became a dead letter."""
    return (ErrorInfo(type="actors.DeadLetter", message=reason, traceback=""),)


def _entry(target: str, key: str, mail: Mail, encode: Encode) -> Outgoing:
    return Outgoing(stream=target, key=key, data=encode(mail))
