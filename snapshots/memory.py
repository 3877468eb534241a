"""An in-process snapshot store: a real backend for tests and users' tests.

Each stream maps to a dict of seq to bytes holding at most ``keep`` entries; every
method runs to completion without awaiting, so calls are atomic with respect to one
another. Nothing survives the process.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from ._exceptions import SnapshotStoreClosedError
from ._protocol import Snapshot, check_keep, check_seq

__all__ = ["MemorySnapshotStore"]

_NAME = "memory snapshot store"


class MemorySnapshotStore:
    """A :class:`~snapshots.SnapshotStore` held in memory.

    Args:
        keep: how many snapshots of each stream to keep, newest by seq; at least 1.

    Raises:
        ValueError: ``keep`` is below 1.
    """

    def __init__(self, keep: int = 3) -> None:
        check_keep(keep)
        self._keep = keep
        self._streams: dict[str, dict[int, bytes]] = {}
        self._closed = False

    @property
    def keep(self) -> int:
        """How many snapshots of each stream the store keeps."""
        return self._keep

    async def save(self, stream: str, seq: int, data: bytes) -> None:
        """Store ``data`` as the snapshot of ``stream`` at ``seq``; see the protocol."""
        self._check_open()
        check_seq(seq)
        snapshots = self._streams.setdefault(stream, {})
        # bytes(data) is free for bytes and detaches a caller's bytearray.
        snapshots[seq] = bytes(data)
        if len(snapshots) > self._keep:
            for old in sorted(snapshots)[: -self._keep]:
                del snapshots[old]

    async def latest(self, stream: str) -> Snapshot | None:
        """Return the snapshot of ``stream`` with the highest seq, or None."""
        self._check_open()
        snapshots = self._streams.get(stream)
        if not snapshots:
            return None
        seq = max(snapshots)
        return Snapshot(stream=stream, seq=seq, data=snapshots[seq])

    async def all(self, stream: str) -> Sequence[Snapshot]:
        """Return every snapshot of ``stream``, newest first."""
        self._check_open()
        snapshots = self._streams.get(stream, {})
        return [
            Snapshot(stream=stream, seq=seq, data=snapshots[seq])
            for seq in sorted(snapshots, reverse=True)
        ]

    async def delete(self, stream: str) -> None:
        """Drop every snapshot of ``stream``."""
        self._check_open()
        self._streams.pop(stream, None)

    async def close(self) -> None:
        """Drop everything and refuse further use. Idempotent."""
        self._closed = True
        self._streams.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SnapshotStoreClosedError(_NAME)
