"""The journal contract: every backend must pass every test here."""

from __future__ import annotations

import asyncio

import pytest

from journal import (
    Commit,
    ConcurrencyError,
    Journal,
    JournalClosedError,
    MessageNotPendingError,
    Outgoing,
    Wakeup,
)


async def test_appends_are_numbered_from_one_without_gaps(journal: Journal) -> None:
    assert await journal.append("s", 0, [b"a", b"b"]) == 2
    assert await journal.append("s", 2, [b"c"]) == 3
    events = await journal.read("s")
    assert [(e.seq, e.data) for e in events] == [(1, b"a"), (2, b"b"), (3, b"c")]


async def test_read_after_seq_and_limit(journal: Journal) -> None:
    await journal.append("s", 0, [bytes([i]) for i in range(10)])
    assert [e.seq for e in await journal.read("s", after_seq=7)] == [8, 9, 10]
    assert [e.seq for e in await journal.read("s", after_seq=2, limit=3)] == [3, 4, 5]
    assert await journal.read("s", after_seq=10) == []
    assert await journal.read("unknown") == []


async def test_stale_expected_seq_raises_concurrency_error_and_writes_nothing(
    journal: Journal,
) -> None:
    await journal.append("s", 0, [b"a"])
    with pytest.raises(ConcurrencyError) as caught:
        await journal.commit(
            Commit(
                stream="s",
                expected_seq=0,
                events=[b"x"],
                status="running",
                schedule={"t": 5.0},
                send=[Outgoing(stream="o", key="k", data=b"m")],
            )
        )
    assert (caught.value.stream, caught.value.expected, caught.value.actual) == ("s", 0, 1)
    assert "'s'" in str(caught.value)
    assert [e.data for e in await journal.read("s")] == [b"a"]
    info = await journal.info("s")
    assert info is not None
    assert info.status is None
    assert await journal.wakeups("s") == []
    assert await journal.pending("o") == []


async def test_expected_seq_ahead_of_the_stream_is_refused(journal: Journal) -> None:
    with pytest.raises(ConcurrencyError) as caught:
        await journal.append("s", 3, [b"a"])
    assert caught.value.actual == 0
    assert await journal.info("s") is None


async def test_concurrent_writers_of_one_seq_never_both_succeed(journal: Journal) -> None:
    outcomes = await asyncio.gather(
        *(journal.append("s", 0, [f"w{i}".encode()]) for i in range(10)),
        return_exceptions=True,
    )
    assert outcomes.count(1) == 1
    assert all(isinstance(o, ConcurrencyError) for o in outcomes if o != 1)
    assert len(await journal.read("s")) == 1


async def test_info_reports_last_seq_status_and_metadata(journal: Journal) -> None:
    assert await journal.info("s") is None
    await journal.commit(
        Commit(stream="s", expected_seq=0, events=[b"a"], status="running", metadata=b"meta")
    )
    await journal.commit(Commit(stream="s", expected_seq=1, events=[b"b"]))
    info = await journal.info("s")
    assert info is not None
    assert (info.stream, info.last_seq, info.status, info.metadata) == ("s", 2, "running", b"meta")
    await journal.commit(Commit(stream="s", expected_seq=2, status="completed"))
    info = await journal.info("s")
    assert info is not None
    assert (info.last_seq, info.status, info.metadata) == (2, "completed", b"meta")


async def test_commit_without_events_still_checks_expected_seq(journal: Journal) -> None:
    await journal.append("s", 0, [b"a"])
    with pytest.raises(ConcurrencyError):
        await journal.commit(Commit(stream="s", expected_seq=0, status="done"))
    assert await journal.commit(Commit(stream="s", expected_seq=1, status="done")) == 1


async def test_streams_lists_by_name_filtered_by_status_and_paged(journal: Journal) -> None:
    for name, status in [("c", "running"), ("a", "running"), ("b", "done"), ("d", None)]:
        await journal.commit(Commit(stream=name, expected_seq=0, events=[b"x"], status=status))
    assert [s.stream for s in await journal.streams()] == ["a", "b", "c", "d"]
    assert [s.stream for s in await journal.streams(status="running")] == ["a", "c"]
    assert [s.stream for s in await journal.streams(status=["done", "running"])] == ["a", "b", "c"]
    assert [s.stream for s in await journal.streams(after="a", limit=2)] == ["b", "c"]
    listed = await journal.streams(status="done")
    assert listed[0].last_seq == 1


async def test_enqueue_accepts_a_key_once_even_after_consumption(journal: Journal) -> None:
    assert await journal.enqueue("s", "m1", b"hello") is True
    assert await journal.enqueue("s", "m1", b"again") is False
    pending = await journal.pending("s")
    assert [(m.key, m.data) for m in pending] == [("m1", b"hello")]
    await journal.commit(Commit(stream="s", expected_seq=0, events=[b"got"], consume=["m1"]))
    assert await journal.enqueue("s", "m1", b"retry") is False
    assert await journal.pending("s") == []


async def test_the_same_key_on_two_streams_is_two_messages(journal: Journal) -> None:
    assert await journal.enqueue("a", "k", b"1")
    assert await journal.enqueue("b", "k", b"2")
    assert [m.data for m in await journal.pending("a")] == [b"1"]
    assert [m.data for m in await journal.pending("b")] == [b"2"]


async def test_pending_lists_in_acceptance_order_with_limit(journal: Journal) -> None:
    for i in range(5):
        await journal.enqueue("s", f"k{4 - i}", bytes([i]))
    pending = await journal.pending("s")
    assert [m.key for m in pending] == ["k4", "k3", "k2", "k1", "k0"]
    assert [m.position for m in pending] == sorted(m.position for m in pending)
    assert [m.key for m in await journal.pending("s", limit=2)] == ["k4", "k3"]


async def test_pending_streams_lists_streams_with_pending_messages(journal: Journal) -> None:
    for name in ("c", "a", "b"):
        await journal.enqueue(name, "k", b"x")
    await journal.commit(Commit(stream="b", expected_seq=0, consume=["k"]))
    await journal.append("d", 0, [b"no mail"])
    assert await journal.pending_streams() == ["a", "c"]
    assert await journal.pending_streams(after="a") == ["c"]
    assert await journal.pending_streams(limit=1) == ["a"]


async def test_consuming_a_message_that_is_not_pending_writes_nothing(journal: Journal) -> None:
    await journal.enqueue("s", "m1", b"x")
    for consume in (["nope"], ["m1", "m1"], ["m1", "nope"]):
        with pytest.raises(MessageNotPendingError):
            await journal.commit(Commit(stream="s", expected_seq=0, events=[b"e"], consume=consume))
    assert await journal.read("s") == []
    assert [m.key for m in await journal.pending("s")] == ["m1"]


async def test_consuming_a_message_already_consumed_writes_nothing(journal: Journal) -> None:
    await journal.enqueue("s", "m1", b"x")
    await journal.commit(Commit(stream="s", expected_seq=0, events=[b"took m1"], consume=["m1"]))
    with pytest.raises(MessageNotPendingError) as caught:
        await journal.commit(Commit(stream="s", expected_seq=1, events=[b"again"], consume=["m1"]))
    assert (caught.value.stream, caught.value.key) == ("s", "m1")
    assert [e.data for e in await journal.read("s")] == [b"took m1"]
    assert await journal.pending("s") == []


async def test_consume_on_a_stream_that_never_existed_is_refused(journal: Journal) -> None:
    with pytest.raises(MessageNotPendingError) as caught:
        await journal.commit(Commit(stream="s", expected_seq=0, consume=["k"]))
    assert (caught.value.stream, caught.value.key) == ("s", "k")


async def test_commit_sends_into_other_inboxes_once_per_key(journal: Journal) -> None:
    out = Outgoing(stream="target", key="order-1", data=b"ship")
    await journal.commit(Commit(stream="s", expected_seq=0, events=[b"sent"], send=[out]))
    await journal.commit(Commit(stream="s", expected_seq=1, events=[b"resent"], send=[out]))
    assert [m.data for m in await journal.pending("target")] == [b"ship"]
    info = await journal.info("target")
    assert info is not None
    assert (info.last_seq, info.status) == (0, None)


async def test_wakeups_are_scheduled_moved_cancelled_and_listed_by_due_time(
    journal: Journal,
) -> None:
    await journal.commit(Commit(stream="a", expected_seq=0, schedule={"t1": 30.0, "t2": 10.0}))
    await journal.commit(Commit(stream="b", expected_seq=0, schedule={"t1": 20.0}))
    assert await journal.next_wakeup() == 10.0
    due = await journal.due_wakeups(until=25.0)
    assert due == [Wakeup(stream="a", key="t2", due=10.0), Wakeup(stream="b", key="t1", due=20.0)]
    assert len(await journal.due_wakeups(until=100.0, limit=1)) == 1
    await journal.commit(Commit(stream="a", expected_seq=0, schedule={"t2": 40.0}, cancel=["t1"]))
    assert await journal.wakeups("a") == [Wakeup(stream="a", key="t2", due=40.0)]
    await journal.commit(Commit(stream="a", expected_seq=0, cancel=["t2", "unknown"]))
    await journal.commit(Commit(stream="b", expected_seq=0, cancel=["t1"]))
    assert await journal.next_wakeup() is None
    assert await journal.due_wakeups(until=1e12) == []


async def test_a_whole_commit_lands_together(journal: Journal) -> None:
    await journal.enqueue("s", "in", b"msg")
    await journal.commit(Commit(stream="s", expected_seq=0, schedule={"old": 1.0}))
    seq = await journal.commit(
        Commit(
            stream="s",
            expected_seq=0,
            events=[b"e1", b"e2"],
            consume=["in"],
            send=[Outgoing(stream="t", key="k", data=b"out")],
            schedule={"new": 9.0},
            cancel=["old"],
            status="suspended",
            metadata=b"m",
        )
    )
    assert seq == 2
    assert [e.data for e in await journal.read("s")] == [b"e1", b"e2"]
    assert await journal.pending("s") == []
    assert [m.data for m in await journal.pending("t")] == [b"out"]
    assert await journal.wakeups("s") == [Wakeup(stream="s", key="new", due=9.0)]
    info = await journal.info("s")
    assert info is not None
    assert (info.status, info.metadata) == ("suspended", b"m")


async def test_many_streams_appending_concurrently_each_stay_gapless(journal: Journal) -> None:
    async def writer(name: str) -> None:
        for seq in range(20):
            await journal.append(name, seq, [f"{name}:{seq + 1}".encode()])

    await asyncio.gather(*(writer(f"s{i}") for i in range(50)))
    for i in range(50):
        events = await journal.read(f"s{i}")
        assert [e.data for e in events] == [f"s{i}:{n}".encode() for n in range(1, 21)]


async def test_a_closed_journal_refuses_every_call(journal: Journal) -> None:
    await journal.close()
    await journal.close()
    with pytest.raises(JournalClosedError):
        await journal.append("s", 0, [b"a"])
    with pytest.raises(JournalClosedError):
        await journal.read("s")
    with pytest.raises(JournalClosedError):
        await journal.enqueue("s", "k", b"")
