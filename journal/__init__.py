"""Append-only per-stream event journals with inbox, wakeups and status.

Backends: :mod:`journal.memory` (in-process, for tests) and :mod:`journal.sqlite`
(embedded, durable, with group commit).
"""

from ._exceptions import CodecError as CodecError
from ._exceptions import ConcurrencyError as ConcurrencyError
from ._exceptions import DecodeError as DecodeError
from ._exceptions import EncodeError as EncodeError
from ._exceptions import JournalClosedError as JournalClosedError
from ._exceptions import JournalError as JournalError
from ._exceptions import JournalWriteError as JournalWriteError
from ._exceptions import MessageNotPendingError as MessageNotPendingError
from ._exceptions import UnknownTypeError as UnknownTypeError
from ._protocol import Commit as Commit
from ._protocol import Event as Event
from ._protocol import Journal as Journal
from ._protocol import Message as Message
from ._protocol import Outgoing as Outgoing
from ._protocol import StreamInfo as StreamInfo
from ._protocol import Wakeup as Wakeup

__all__ = [
    "CodecError",
    "Commit",
    "ConcurrencyError",
    "DecodeError",
    "EncodeError",
    "Event",
    "Journal",
    "JournalClosedError",
    "JournalError",
    "JournalWriteError",
    "Message",
    "MessageNotPendingError",
    "Outgoing",
    "StreamInfo",
    "UnknownTypeError",
    "Wakeup",
]
