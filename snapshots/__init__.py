"""Snapshot stores: the latest encoded state of a stream at a seq.

Backends: :mod:`snapshots.memory` (in-process, for tests) and :mod:`snapshots.sqlite`
(embedded, durable; may share the journal's database file).
"""

from ._exceptions import SnapshotError as SnapshotError
from ._exceptions import SnapshotStoreClosedError as SnapshotStoreClosedError
from ._protocol import Snapshot as Snapshot
from ._protocol import SnapshotStore as SnapshotStore

__all__ = [
    "Snapshot",
    "SnapshotError",
    "SnapshotStore",
    "SnapshotStoreClosedError",
]
