"""Errors raised by journal stores and the payload codec.

The tree::

    JournalError                  anything a journal store or the codec raises
    ├── ConcurrencyError          a commit's expected seq was stale
    ├── MessageNotPendingError    a commit consumed an inbox message that is not pending
    ├── JournalClosedError        the store was used after close()
    ├── JournalWriteError         the store could not write (disk full, I/O error, locked)
    └── CodecError                a payload could not be encoded or decoded
        ├── EncodeError           a value has no encoding (unregistered type, bad field)
        ├── UnknownTypeError      stored bytes name a type tag nobody registered
        └── DecodeError           stored bytes are not what their tag says
"""

from __future__ import annotations


class JournalError(Exception):
    """Root of every error a journal store or the codec raises."""


class ConcurrencyError(JournalError):
    """Raised when a commit's ``expected_seq`` is not the stream's last seq.

    Another writer appended first (or the caller's view is stale). Nothing of the
    commit was written. Re-read the stream and decide again, or give the stream up.
    """

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream!r} is at seq {actual}, not {expected}: another writer "
            "appended first or this view is stale; nothing was written, re-read the "
            "stream before appending again"
        )


class MessageNotPendingError(JournalError):
    """Raised when a commit consumes an inbox message that is not pending.

    The message was never enqueued for this stream or was consumed already. Nothing
    of the commit was written.
    """

    def __init__(self, stream: str, key: str) -> None:
        self.stream = stream
        self.key = key
        super().__init__(
            f"stream {stream!r} has no pending inbox message {key!r} (never enqueued, "
            "or consumed already); nothing was written"
        )


class JournalClosedError(JournalError):
    """Raised when a store is used after ``close()``."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} is closed; open a new store to go on")


class JournalWriteError(JournalError):
    """Raised when the store could not make a commit durable.

    The disk is full, the file is locked by another process past the busy timeout, or
    an I/O error occurred. Nothing of the commit is visible; ``__cause__`` holds the
    database's own error. The caller may retry once the cause is fixed.
    """

    def __init__(self, stream: str, reason: str) -> None:
        self.stream = stream
        self.reason = reason
        super().__init__(
            f"could not write to stream {stream!r}: {reason}; nothing of this commit "
            "was written, retry once the store is writable again"
        )


class CodecError(JournalError):
    """Root of the codec's errors."""


class EncodeError(CodecError):
    """Raised when a value cannot be encoded: its type is unregistered or unsupported."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name = type_name
        self.reason = reason
        super().__init__(
            f"cannot encode a value of type {type_name}: {reason}; register the type "
            "with the codec (attrs classes, dataclasses, enums and primitives work)"
        )


class UnknownTypeError(CodecError):
    """Raised when stored bytes carry a type tag that no registered type answers to."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        super().__init__(
            f"stored payload has type tag {tag!r}, which no registered type answers to; "
            "register the type (or an alias, if it was renamed) before reading"
        )


class DecodeError(CodecError):
    """Raised when stored bytes cannot be decoded into the type their tag names."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name = type_name
        self.reason = reason
        super().__init__(
            f"stored payload cannot be decoded as {type_name}: {reason}; the bytes are "
            "corrupt or the type changed incompatibly"
        )
