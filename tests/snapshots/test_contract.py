"""The contract every snapshot store keeps, run against each backend.

The ``store`` and ``make_store`` fixtures (conftest.py) are parametrized over the
backends; nothing here knows which one it is talking to.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshots import Snapshot, SnapshotError, SnapshotStore, SnapshotStoreClosedError

# The type of the make_store fixture (conftest modules are not imported by tests).
StoreFactory = Callable[[int], Awaitable[SnapshotStore]]


async def seqs(store: SnapshotStore, stream: str) -> list[int]:
    return [snapshot.seq for snapshot in await store.all(stream)]


async def test_latest_of_unknown_stream_is_none(store: SnapshotStore) -> None:
    assert await store.latest("Order/1") is None


async def test_all_of_unknown_stream_is_empty(store: SnapshotStore) -> None:
    assert list(await store.all("Order/1")) == []


async def test_latest_returns_the_snapshot_with_the_highest_seq(store: SnapshotStore) -> None:
    await store.save("Order/1", 5, b"five")
    await store.save("Order/1", 9, b"nine")
    await store.save("Order/1", 7, b"seven")

    assert await store.latest("Order/1") == Snapshot(stream="Order/1", seq=9, data=b"nine")


async def test_all_lists_snapshots_newest_first(store: SnapshotStore) -> None:
    await store.save("Order/1", 2, b"two")
    await store.save("Order/1", 10, b"ten")
    await store.save("Order/1", 4, b"four")

    assert list(await store.all("Order/1")) == [
        Snapshot(stream="Order/1", seq=10, data=b"ten"),
        Snapshot(stream="Order/1", seq=4, data=b"four"),
        Snapshot(stream="Order/1", seq=2, data=b"two"),
    ]


async def test_save_keeps_only_the_newest_keep_snapshots(make_store: StoreFactory) -> None:
    store = await make_store(2)
    for seq in range(1, 6):
        await store.save("Order/1", seq, f"state {seq}".encode())

    assert list(await store.all("Order/1")) == [
        Snapshot(stream="Order/1", seq=5, data=b"state 5"),
        Snapshot(stream="Order/1", seq=4, data=b"state 4"),
    ]


async def test_keep_one_keeps_only_the_latest(make_store: StoreFactory) -> None:
    store = await make_store(1)
    await store.save("Order/1", 1, b"a")
    await store.save("Order/1", 2, b"b")

    assert await seqs(store, "Order/1") == [2]


async def test_saving_a_seq_older_than_the_kept_ones_keeps_nothing_new(
    make_store: StoreFactory,
) -> None:
    store = await make_store(2)
    await store.save("Order/1", 5, b"five")
    await store.save("Order/1", 6, b"six")

    await store.save("Order/1", 3, b"three")

    assert await seqs(store, "Order/1") == [6, 5]


async def test_saving_an_older_seq_within_keep_inserts_it_in_order(
    store: SnapshotStore,
) -> None:
    await store.save("Order/1", 5, b"five")
    await store.save("Order/1", 3, b"three")

    assert await seqs(store, "Order/1") == [5, 3]


async def test_saving_the_same_seq_again_replaces_its_data(store: SnapshotStore) -> None:
    await store.save("Order/1", 4, b"old")
    await store.save("Order/1", 4, b"new")

    assert list(await store.all("Order/1")) == [Snapshot(stream="Order/1", seq=4, data=b"new")]


async def test_replacing_a_seq_does_not_count_twice_toward_keep(
    make_store: StoreFactory,
) -> None:
    store = await make_store(2)
    await store.save("Order/1", 1, b"one")
    await store.save("Order/1", 2, b"two")
    await store.save("Order/1", 2, b"two again")

    assert list(await store.all("Order/1")) == [
        Snapshot(stream="Order/1", seq=2, data=b"two again"),
        Snapshot(stream="Order/1", seq=1, data=b"one"),
    ]


async def test_streams_are_independent(make_store: StoreFactory) -> None:
    store = await make_store(2)
    await store.save("Order/1", 1, b"order one")
    await store.save("Order/2", 7, b"order two")
    for seq in range(2, 6):
        await store.save("Order/1", seq, b"more")

    assert await seqs(store, "Order/1") == [5, 4]
    assert list(await store.all("Order/2")) == [
        Snapshot(stream="Order/2", seq=7, data=b"order two")
    ]


async def test_delete_drops_every_snapshot_of_the_stream_and_no_other(
    store: SnapshotStore,
) -> None:
    await store.save("Order/1", 1, b"a")
    await store.save("Order/1", 2, b"b")
    await store.save("Order/2", 1, b"c")

    await store.delete("Order/1")

    assert await store.latest("Order/1") is None
    assert list(await store.all("Order/1")) == []
    assert await seqs(store, "Order/2") == [1]


async def test_delete_of_an_unknown_stream_is_no_error(store: SnapshotStore) -> None:
    await store.delete("Order/1")

    assert await store.latest("Order/1") is None


async def test_a_stream_can_be_saved_again_after_delete(store: SnapshotStore) -> None:
    await store.save("Order/1", 8, b"before")
    await store.delete("Order/1")
    await store.save("Order/1", 3, b"after")

    assert list(await store.all("Order/1")) == [Snapshot(stream="Order/1", seq=3, data=b"after")]


@pytest.mark.parametrize("data", [b"", b"\x00\xff\x00", bytes(range(256)) * 4096])
async def test_data_comes_back_byte_for_byte(store: SnapshotStore, data: bytes) -> None:
    await store.save("Order/1", 1, data)

    latest = await store.latest("Order/1")

    assert latest is not None
    assert latest.data == data
    assert type(latest.data) is bytes


async def test_concurrent_saves_all_land(store: SnapshotStore) -> None:
    streams = [f"Order/{n}" for n in range(10)]

    await asyncio.gather(
        *(
            store.save(stream, seq, f"{stream}@{seq}".encode())
            for stream in streams
            for seq in (1, 2)
        )
    )

    for stream in streams:
        assert list(await store.all(stream)) == [
            Snapshot(stream=stream, seq=2, data=f"{stream}@2".encode()),
            Snapshot(stream=stream, seq=1, data=f"{stream}@1".encode()),
        ]


@pytest.mark.parametrize("seq", [0, -1])
async def test_save_rejects_a_seq_below_one(store: SnapshotStore, seq: int) -> None:
    with pytest.raises(ValueError, match=rf"seq must be at least 1, got {seq}"):
        await store.save("Order/1", seq, b"state")

    assert await store.latest("Order/1") is None


@pytest.mark.parametrize("keep", [0, -3])
async def test_opening_a_store_rejects_keep_below_one(make_store: StoreFactory, keep: int) -> None:
    with pytest.raises(ValueError, match=rf"keep must be at least 1, got {keep}"):
        await make_store(keep)


CALLS: dict[str, Callable[[SnapshotStore], Awaitable[object]]] = {
    "save": lambda store: store.save("Order/1", 1, b"state"),
    "latest": lambda store: store.latest("Order/1"),
    "all": lambda store: store.all("Order/1"),
    "delete": lambda store: store.delete("Order/1"),
}


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_every_method_raises_closed_error_after_close(
    store: SnapshotStore, method: str
) -> None:
    await store.save("Order/1", 1, b"state")
    await store.close()

    with pytest.raises(SnapshotStoreClosedError, match="is closed; open a new store") as info:
        await CALLS[method](store)

    assert isinstance(info.value, SnapshotError)


async def test_close_is_idempotent(store: SnapshotStore) -> None:
    await store.close()
    await store.close()

    with pytest.raises(SnapshotStoreClosedError):
        await store.latest("Order/1")


async def test_async_with_closes_the_store_on_exit(make_store: StoreFactory) -> None:
    async with await make_store(3) as store:
        await store.save("Order/1", 1, b"state")
        assert await seqs(store, "Order/1") == [1]

    with pytest.raises(SnapshotStoreClosedError):
        await store.latest("Order/1")


STREAMS = ["A", "B", "C"]
SAVES = st.tuples(
    st.sampled_from(STREAMS),
    st.integers(min_value=1, max_value=12),
    st.binary(max_size=8),
)
OPS = st.lists(st.one_of(SAVES, st.sampled_from(STREAMS)), max_size=25)


# Each example opens its own fresh store from the factory (a new file for SQLite),
# so sharing the function-scoped fixture across examples leaks no state.
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(keep=st.integers(min_value=1, max_value=4), ops=OPS)
async def test_store_matches_a_dict_model_under_random_saves_and_deletes(
    make_store: StoreFactory, keep: int, ops: list[tuple[str, int, bytes] | str]
) -> None:
    model: dict[str, dict[int, bytes]] = {stream: {} for stream in STREAMS}
    store = await make_store(keep)
    try:
        for op in ops:
            if isinstance(op, str):
                await store.delete(op)
                model[op].clear()
            else:
                stream, seq, data = op
                await store.save(stream, seq, data)
                model[stream][seq] = data
                for old in sorted(model[stream])[:-keep]:
                    del model[stream][old]
            for stream, kept in model.items():
                expected = [
                    Snapshot(stream=stream, seq=seq, data=kept[seq])
                    for seq in sorted(kept, reverse=True)
                ]
                assert list(await store.all(stream)) == expected
                assert await store.latest(stream) == (expected[0] if expected else None)
    finally:
        await store.close()
