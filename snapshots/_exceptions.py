"""Errors raised by snapshot stores.

The tree::

    SnapshotError                 anything a snapshot store raises
    └── SnapshotStoreClosedError  the store was used after close()

Bad arguments (a seq or ``keep`` below 1, an unknown ``synchronous`` setting) raise
:class:`ValueError` at the call, as a programming error rather than a store failure.
"""

from __future__ import annotations


class SnapshotError(Exception):
    """Root of every error a snapshot store raises."""


class SnapshotStoreClosedError(SnapshotError):
    """Raised when a snapshot store is used after ``close()``."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is closed; open a new store to go on")
