"""Turning exceptions into ``ErrorInfo`` chains: text that survives processes and replay."""

from __future__ import annotations

import traceback

from ._exceptions import ActivityError, ErrorInfo


def failure_info(error: BaseException) -> tuple[ErrorInfo, ...]:
    """Describe ``error`` and its cause chain as text, outermost first."""
    chain: list[ErrorInfo] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ActivityError):
            chain.append(_info(current))
            chain.extend(current.failure)
            break
        chain.append(_info(current))
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return tuple(chain)


def _info(error: BaseException) -> ErrorInfo:
    kind = type(error)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = "".join(traceback.format_exception(kind, error, error.__traceback__, chain=False))
    return ErrorInfo(type=name, message=str(error), traceback=text)
