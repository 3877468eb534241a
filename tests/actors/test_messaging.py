"""Tests for messages: handlers, tell and ask, selective receive, sends between actors.

Every system runs on a `VirtualClock` over memory stores; a restart is leaving the
system and opening a new one on the same stores. Nothing sleeps real time: background
work (an activation started by a delivery, a dead letter written after a run ended) is
awaited by polling observable state for a bounded number of loop turns. Exactly-once
is a list of activity calls, or a log in the receiver's state, that does not grow
across a restart.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import pytest

from actors import (
    Actor,
    ActorFailed,
    ActorNotFoundError,
    ActorSystem,
    ActorTypeError,
    Context,
    DeadLetter,
    Status,
    handler,
    query,
)
from actors._events import Mail, Started
from actors._ref import _fresh_id, _key
from journal import EncodeError

from ._support import Stores, calls, finishes, settle, step, until

_T = TypeVar("_T")

# Messages ----------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Add:
    n: int


@attrs.frozen(kw_only=True)
class Boom:
    text: str


@attrs.frozen(kw_only=True)
class Stray:
    """A message no actor here has a handler or a receive for."""

    note: str


@attrs.frozen(kw_only=True)
class A:
    label: str


@attrs.frozen(kw_only=True)
class B:
    label: str


@attrs.frozen(kw_only=True)
class Go:
    pass


@attrs.frozen(kw_only=True)
class Forward:
    to: str
    n: int


@attrs.frozen(kw_only=True)
class Stranger:
    """Never registered with any codec."""

    x: int


MESSAGES = {"Add": Add, "Boom": Boom, "Stray": Stray, "A": A, "B": B, "Go": Go}


# Actors ------------------------------------------------------------------------------


class Ledger(Actor):
    """Message-driven: records the start and end of each handler in its state."""

    total: int = 0
    log: list[str] = attrs.Factory(list)

    @handler
    async def add(self, ctx: Context, msg: Add) -> int:
        self.log.append(f"start {msg.n}")
        await ctx.activity(step, f"add {msg.n}")  # suspends: the next message must wait
        self.total += msg.n
        self.log.append(f"end {msg.n}")
        return self.total

    @handler
    async def boom(self, ctx: Context, msg: Boom) -> int:
        self.log.append("boom")
        raise ValueError(msg.text)

    @query
    def get_total(self) -> int:
        return self.total

    @query
    def get_log(self) -> list[str]:
        return self.log


class Relay(Actor):
    """Forwards an amount to a ledger with an ask from its handler."""

    @handler
    async def forward(self, ctx: Context, msg: Forward) -> int:
        reply: int = await ctx.get(Ledger, msg.to).ask(Add(n=msg.n))
        return reply


class Unlisted(Actor):
    """Listed with no system: workflow code naming it registers it."""

    @handler
    async def add(self, ctx: Context, msg: Add) -> int:
        return msg.n


class ToUnlisted(Actor):
    @handler
    async def forward(self, ctx: Context, msg: Forward) -> int:
        reply: int = await ctx.get(Unlisted, msg.to).ask(Add(n=msg.n))
        return reply


class Picky(Actor):
    """A workflow that takes B first, then A, whatever order they arrive in."""

    async def run(self, ctx: Context) -> list[str]:
        b = await ctx.receive(B)
        a = await ctx.receive(A)
        return [b.label, a.label]


class Sender(Actor):
    """Tells, tells through ctx, asks, then waits for Go: a restart replays the sends."""

    async def run(self, ctx: Context, target: str) -> int:
        ledger = ctx.get(Ledger, target)
        await ledger.tell(Add(n=1))
        await ctx.tell(ledger, Add(n=2))
        total: int = await ctx.ask(ledger, Add(n=3))
        await ctx.receive(Go)
        return total


class Child(Actor):
    async def run(self, ctx: Context, greeting: str) -> str:
        return await ctx.activity(step, f"child {greeting}")


class Parent(Actor):
    async def run(self, ctx: Context) -> str:
        child = await ctx.spawn(Child, "c1", "hello")
        await ctx.receive(Go)
        return f"parent of {child.actor_id}"


class Quick(Actor):
    async def run(self, ctx: Context) -> str:
        return "done"


# Helpers -----------------------------------------------------------------------------


async def dead_letter_for(system: ActorSystem, actor_id: str) -> DeadLetter:
    """Wait for the first dead letter addressed to ``actor_id`` and return it."""

    async def found() -> bool:
        return any(d.actor_id == actor_id for d in await system.dead_letters())

    await until(found, f"a dead letter for {actor_id!r}")
    return next(d for d in await system.dead_letters() if d.actor_id == actor_id)


async def history(system: ActorSystem, actor_id: str) -> list[Any]:
    return [system.codec.decode(e.data) for e in await system.journal.read(actor_id)]


async def total_is(system: ActorSystem, actor_id: str, total: int) -> bool:
    try:
        now: int = await system.get(Ledger, actor_id).query(Ledger.get_total)
    except ActorNotFoundError:  # its first message is still being delivered
        return False
    return now == total


async def exists(system: ActorSystem, actor_id: str) -> bool:
    info = await system.journal.info(actor_id)  # an inbox alone makes a stream: not enough
    return info is not None and info.status is not None


def one_after_another(*ns: int) -> list[str]:
    """The log of a ledger that handled adds of ``ns`` one at a time, in order."""
    return [entry for n in ns for entry in (f"start {n}", f"end {n}")]


# Handlers, tell and ask --------------------------------------------------------------


async def test_handlers_take_tells_and_asks_one_at_a_time_in_mailbox_order(
    system: ActorSystem,
) -> None:
    ledger = system.get(Ledger, "l")
    await ledger.tell(Add(n=1))
    await ledger.tell(Add(n=2))

    assert await ledger.ask(Add(n=3)) == 6
    # Each handler waits on an activity; the next one starts only after it ended.
    assert await ledger.query(Ledger.get_log) == one_after_another(1, 2, 3)
    assert calls == ["add 1", "add 2", "add 3"]


async def test_a_raising_handler_is_rolled_back_retried_then_dead_lettered_and_the_actor_goes_on(
    system: ActorSystem,
) -> None:
    ledger = system.get(Ledger, "l")
    assert await ledger.ask(Add(n=5)) == 5

    with pytest.raises(ActorFailed) as failed:
        await ledger.ask(Boom(text="the vault is closed"))

    assert failed.value.type == "ValueError"
    assert failed.value.error_message == "the vault is closed"
    assert "the vault is closed" in failed.value.traceback
    assert await ledger.ask(Add(n=1)) == 6
    # Each crashed turn was rolled back: what the handler changed before it raised
    # ("boom") is gone, however often it ran (1 + 3 restarts).
    assert await ledger.query(Ledger.get_log) == ["start 5", "end 5", "start 1", "end 1"]
    assert await ledger.status() is Status.IDLE
    [letter] = await system.dead_letters()
    assert letter.message == Boom(text="the vault is closed")
    assert "actor 'l' crashed more than 3 times" in letter.reason


# Idempotent send ---------------------------------------------------------------------


async def test_a_tell_sent_twice_with_one_id_is_handled_once(stores: Stores) -> None:
    async with stores.system() as system:
        ledger = system.get(Ledger, "l")
        await ledger.tell(Add(n=5), id="x")
        await ledger.tell(Add(n=5), id="x")
        assert await ledger.ask(Add(n=0)) == 5
        await ledger.tell(Add(n=5), id="x")  # once handled, the id is still remembered
        await settle(system)
    async with stores.system(Ledger) as system:
        await system.get(Ledger, "l").tell(Add(n=5), id="x")
        await settle(system)
        assert await system.get(Ledger, "l").query(Ledger.get_total) == 5
    assert calls == ["add 5", "add 0"]


async def test_an_ask_retried_with_its_id_returns_the_first_reply_without_handling_again(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        ledger = system.get(Ledger, "l")
        assert await ledger.ask(Add(n=7), id="y") == 7
        assert await ledger.ask(Add(n=1)) == 8
        assert await ledger.ask(Add(n=7), id="y") == 7
    async with stores.system(Ledger) as system:
        ledger = system.get(Ledger, "l")
        assert await ledger.ask(Add(n=7), id="y") == 7
        assert await ledger.query(Ledger.get_total) == 8
    assert calls == ["add 7", "add 1"]


async def test_an_ask_retried_after_its_message_became_a_dead_letter_fails_again(
    system: ActorSystem,
) -> None:
    ledger = system.get(Ledger, "l")
    with pytest.raises(ActorFailed):
        await ledger.ask(Stray(note="lost"), id="z")

    # The retry must not wait forever for a reply that will never be handled.
    with pytest.raises(ActorFailed) as failed:
        await finishes(ledger.ask(Stray(note="lost"), id="z"), "the retried ask's reply")
    assert failed.value.type == "actors.DeadLetter"


async def test_a_callers_message_id_never_collides_with_an_actors_journaled_send(
    system: ActorSystem,
) -> None:
    ledger = system.get(Ledger, "l")
    # An id that happens to look like the key of `Sender`'s first send ("s/1").
    await ledger.tell(Add(n=10), id="s/1")
    sender = await system.spawn(Sender, "s", "l")
    await sender.tell(Go())
    assert await sender.result() == 16  # 10, then the sender's 1, 2 and 3
    assert calls == ["add 10", "add 1", "add 2", "add 3"]


# Virtual actors ----------------------------------------------------------------------


async def test_an_ask_to_a_new_id_creates_the_actor_with_default_state(stores: Stores) -> None:
    async with stores.system() as system:
        assert await stores.journal.info("fresh") is None
        assert await system.get(Ledger, "fresh").ask(Add(n=4)) == 4
    async with stores.system(Ledger) as system:
        fresh = system.get(Ledger, "fresh")
        assert await fresh.query(Ledger.get_total) == 4
        assert await fresh.status() is Status.IDLE
        assert await fresh.ask(Add(n=1)) == 5


# Selective receive -------------------------------------------------------------------


async def test_receive_takes_the_type_it_waits_for_even_when_another_came_first(
    system: ActorSystem,
) -> None:
    picky = await system.spawn(Picky, "p")
    await picky.tell(A(label="a"))
    await picky.tell(B(label="b"))
    assert await picky.result() == ["b", "a"]


async def test_a_message_waiting_for_a_later_receive_survives_a_restart(stores: Stores) -> None:
    async with stores.system() as system:
        picky = await system.spawn(Picky, "p")
        await picky.tell(A(label="a"))
        await settle(system)
    async with stores.system(Picky) as system:
        picky = system.get(Picky, "p")
        await picky.tell(B(label="b"))
        # "a" was accepted before the restart: it must reach the run's second receive.
        assert await finishes(picky.result(), "the run to take A") == ["b", "a"]


async def test_an_unwanted_message_waits_while_run_lives_and_dies_when_run_ends(
    system: ActorSystem,
) -> None:
    picky = await system.spawn(Picky, "p")
    await picky.tell(Stray(note="early"), id="stray")
    await picky.tell(A(label="a"), id="a")
    await settle(system)
    assert await system.dead_letters() == []
    assert [m.key for m in await system.journal.pending("p")] == ["ext:stray", "ext:a"]

    await picky.tell(B(label="b"))
    assert await picky.result() == ["b", "a"]

    letter = await dead_letter_for(system, "p")
    assert letter.key == "stray"
    assert letter.message == Stray(note="early")
    assert "completed" in letter.reason
    assert await system.journal.pending("p") == []


# Actor to actor ----------------------------------------------------------------------


async def test_a_handler_asking_another_actor_gets_its_reply(system: ActorSystem) -> None:
    system.register(Ledger)
    relay = system.get(Relay, "r")
    assert await relay.ask(Forward(to="l", n=3)) == 3
    assert await relay.ask(Forward(to="l", n=4)) == 7
    assert await system.get(Ledger, "l").query(Ledger.get_total) == 7


async def test_sends_from_workflow_code_are_not_sent_again_after_a_restart(
    stores: Stores,
) -> None:
    async with stores.system(Ledger) as system:
        await system.spawn(Sender, "s", "l")
        await until(lambda: total_is(system, "l", 6), "the three sends handled")
        ledger_events = (await system.journal.info("l") or pytest.fail("no ledger")).last_seq
        await settle(system)
    async with stores.system(Ledger, Sender) as system:  # Sender is replayed
        sender = system.get(Sender, "s")
        await sender.tell(Go())
        assert await sender.result() == 6
        await settle(system)
        ledger = system.get(Ledger, "l")
        assert await ledger.query(Ledger.get_log) == one_after_another(1, 2, 3)
        info = await system.journal.info("l")
        assert info is not None
        assert info.last_seq == ledger_events
    assert calls == ["add 1", "add 2", "add 3"]


async def test_spawn_from_workflow_code_creates_the_child_once_across_a_restart(
    stores: Stores,
) -> None:
    async with stores.system(Child) as system:
        await system.spawn(Parent, "parent")
        await until(lambda: exists(system, "c1"), "the child spawned")
        assert await system.get(Child, "c1").result() == "child hello"
        await settle(system)
    async with stores.system(Child, Parent) as system:  # Parent is replayed
        parent = system.get(Parent, "parent")
        await parent.tell(Go())
        assert await parent.result() == "parent of c1"
        assert await system.get(Child, "c1").result() == "child hello"
        started = [e for e in await history(system, "c1") if isinstance(e, Started)]
        assert len(started) == 1
    assert calls == ["child hello"]


# Dead letters ------------------------------------------------------------------------


async def test_a_message_without_a_handler_is_a_dead_letter_and_its_ask_fails(
    system: ActorSystem,
) -> None:
    ledger = system.get(Ledger, "l")
    await ledger.tell(Stray(note="told"), id="told")

    letter = await dead_letter_for(system, "l")
    assert letter.key == "told"
    assert letter.message == Stray(note="told")
    assert "Stray" in letter.reason
    with pytest.raises(ActorFailed) as failed:
        await ledger.ask(Stray(note="asked"))
    assert failed.value.type == "actors.DeadLetter"
    assert "Stray" in failed.value.error_message
    assert await ledger.ask(Add(n=1)) == 1  # the actor goes on


async def test_a_message_to_a_completed_actor_is_a_dead_letter_naming_its_status(
    system: ActorSystem,
) -> None:
    quick = await system.spawn(Quick, "q")
    assert await quick.result() == "done"
    await settle(system)

    await quick.tell(Add(n=1))
    letter = await dead_letter_for(system, "q")
    assert letter.message == Add(n=1)
    assert "completed" in letter.reason
    with pytest.raises(ActorFailed) as failed:
        await finishes(quick.ask(Add(n=2)), "the ask to a completed actor")
    assert "completed" in failed.value.error_message


async def test_a_type_that_workflow_code_names_is_registered_with_the_system(
    system: ActorSystem,
) -> None:
    assert await system.get(ToUnlisted, "t").ask(Forward(to="u", n=1)) == 1
    assert await system.get(Unlisted, "u").status() is Status.IDLE


async def test_a_message_for_a_type_this_process_does_not_know_is_a_dead_letter(
    stores: Stores,
) -> None:
    async with stores.system() as system:  # written by code that had a type "gone.Type"
        mail = Mail(kind="message", target_type="gone.Type", body=system.codec.encode(Add(n=1)))
        assert await system.journal.enqueue("u", "ext:old", system.codec.encode(mail))
    async with stores.system() as system:  # recovery finds the message
        letter = await dead_letter_for(system, "u")
        assert letter.message == Add(n=1)
        assert "gone.Type" in letter.reason
        assert "registered" in letter.reason
        assert not await system.journal.pending("u")


# Type safety -------------------------------------------------------------------------


async def test_a_tell_through_a_ref_of_another_type_to_a_live_actor_raises(
    system: ActorSystem,
) -> None:
    ledger = system.get(Ledger, "l")
    assert await ledger.ask(Add(n=1)) == 1

    with pytest.raises(ActorTypeError) as wrong:
        await system.get(Relay, "l").tell(Add(n=5))
    assert wrong.value.actual == "Ledger"
    assert wrong.value.expected == "Relay"
    assert await system.journal.pending("l") == []
    assert await ledger.query(Ledger.get_total) == 1


async def test_a_tell_through_a_ref_of_another_type_to_an_actor_not_in_memory_raises(
    stores: Stores,
) -> None:
    async with stores.system() as system:
        assert await system.get(Ledger, "l").ask(Add(n=1)) == 1
    async with stores.system(Ledger) as system:  # "l" is in the journal, not in memory
        with pytest.raises(ActorTypeError):
            await system.get(Relay, "l").tell(Add(n=5))
        await settle(system)
        assert await system.get(Ledger, "l").query(Ledger.get_total) == 1


async def test_a_message_the_codec_cannot_encode_fails_at_the_call_and_enqueues_nothing(
    system: ActorSystem,
) -> None:
    fresh = system.get(Ledger, "fresh")
    with pytest.raises(EncodeError):
        await fresh.tell(Stranger(x=1))
    with pytest.raises(EncodeError):
        await fresh.ask(Stranger(x=2))

    assert await system.journal.pending("fresh") == []
    assert await system.journal.info("fresh") is None
    assert "fresh" not in system._runners


@pytest.fixture
def stores() -> Stores:
    return Stores(messages=tuple(MESSAGES.values()))  # receive-only: in no signature


def test_messages_sent_without_an_id_get_keys_unique_across_processes() -> None:
    keys = [_key(None) for _ in range(1000)]
    assert len(set(keys)) == len(keys)
    assert all(key.startswith("ext:") for key in keys)
    assert _key("order-7") == "ext:order-7"
    _fresh_id._reset()  # what a forked child does: a prefix of its own
    prefix = keys[-1].rsplit("-", 1)[0]
    assert not _key(None).startswith(prefix)
