"""The codec's building blocks: scalar conversions, type predicates, error texts.

Everything here is stateless; ``journal.codec.Codec`` puts it together.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import math
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeGuard, TypeVar, get_args, get_origin
from uuid import UUID

import attrs
from cattrs.cols import is_defaultdict, is_mapping
from cattrs.v import format_exception

from ._exceptions import DecodeError, EncodeError, UnknownTypeError

T = TypeVar("T")
_ToJson = Callable[[Any], object]
_Structure = Callable[[Any, Any], object]

_MICROSECOND = timedelta(microseconds=1)
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _same(value: Any) -> Any:
    return value


def _b64decode(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# By type: (tag, JSON type of the body, to JSON, from the JSON once its type is checked)
_SCALARS: dict[type, tuple[str, type, _ToJson, Callable[[Any], object]]] = {
    type(None): ("none", type(None), _same, _same),
    bool: ("bool", bool, _same, _same),
    int: ("int", int, _same, _same),
    str: ("str", str, _same, _same),
    bytes: ("bytes", str, lambda v: base64.b64encode(v).decode(), _b64decode),
    datetime: ("datetime", str, datetime.isoformat, datetime.fromisoformat),
    date: ("date", str, date.isoformat, date.fromisoformat),
    time: ("time", str, time.isoformat, time.fromisoformat),
    timedelta: ("timedelta", int, lambda v: v // _MICROSECOND, lambda n: timedelta(0, 0, n)),
    UUID: ("uuid", str, str, UUID),
    Decimal: ("decimal", str, str, Decimal),
}


def _is_registrable(tp: object) -> TypeGuard[type]:
    if not isinstance(tp, type) or getattr(tp, "__parameters__", None):
        return False  # a generic class: the wire would not say what its T was
    if issubclass(tp, enum.Enum):
        return bool(tp.__members__)
    return attrs.has(tp) or dataclasses.is_dataclass(tp)


def _is_tagged_union(tp: object) -> bool:
    """Unions other than ``X | None`` hold an envelope: their members may look alike."""
    if get_origin(tp) not in (typing.Union, types.UnionType):
        return False
    args = get_args(tp)
    return not (len(args) == 2 and type(None) in args)


def _is_pair_mapping(tp: object) -> bool:
    """Mappings keyed by anything but str are written as pairs: JSON keys are strs."""
    if not is_mapping(tp) or is_defaultdict(tp) or typing.is_typeddict(tp):
        return False
    args = get_args(tp)
    return len(args) == 2 and not (isinstance(args[0], type) and issubclass(args[0], str))


def _union_members(tp: object) -> Any:
    """The classes a union admits (an int for a float), or None if it cannot tell."""
    members = tuple(get_origin(arg) or arg for arg in get_args(tp))
    try:
        isinstance(None, members)
    except TypeError:  # Literal, Any or a protocol: trust the tag
        return None
    return (*members, int) if float in members else members


def _pairs(body: object) -> Iterator[tuple[Any, Any]]:
    for pair in _exact(body, list):
        if type(pair) is not list or len(pair) != 2:
            msg = f"expected a [key, value] pair, got {_preview(pair)}"
            raise TypeError(msg)
        yield pair[0], pair[1]


def _find_unknown_tag(exc: BaseException) -> UnknownTypeError | None:
    if isinstance(exc, UnknownTypeError):
        return exc
    for inner in exc.exceptions if isinstance(exc, BaseExceptionGroup) else ():
        found = _find_unknown_tag(inner)
        if found is not None:
            return found
    return None


def _format_error(exc: BaseException, tp: type | None) -> str:
    if isinstance(exc, DecodeError | EncodeError):
        return f"{exc.type_name}: {exc.reason}"
    if isinstance(exc, TypeError | ValueError) and str(exc):
        return str(exc)
    return format_exception(exc, tp)


def _exact(body: object, cls: type[T]) -> T:
    if type(body) is not cls:
        msg = f"expected {cls.__name__}, got {_preview(body)}"
        raise TypeError(msg)
    return body


def _field(
    cls: type | tuple[type, ...], to_json: _ToJson = _same, exclude: type | tuple[()] = ()
) -> _ToJson:
    """Check a field's value against its annotation before it is written."""
    label = cls.__name__ if isinstance(cls, type) else "float"

    def refuse(value: object) -> TypeError:
        return TypeError(f"a field annotated {label} holds a value of type {_name(type(value))}")

    # Specialized: this runs for every field of every value written.
    if exclude:

        def check(value: object) -> object:
            if isinstance(value, cls) and not isinstance(value, exclude):
                return to_json(value)
            raise refuse(value)

    elif to_json is _same:

        def check(value: object) -> object:
            if isinstance(value, cls):
                return value
            raise refuse(value)

    else:

        def check(value: object) -> object:
            if isinstance(value, cls):
                return to_json(value)
            raise refuse(value)

    return check


def _scalar_from_json(
    json_type: type, from_json: Callable[[Any], object]
) -> Callable[[Any], object]:
    if from_json is _same:
        return lambda b: _exact(b, json_type)
    return lambda b: from_json(_exact(b, json_type))


def _ignore_type(from_json: Callable[[Any], object]) -> _Structure:
    return lambda b, _: from_json(b)


def _exact_field(cls: type) -> _Structure:
    def structure(body: object, cl: type) -> object:
        value: object = _exact(body, cls)
        return value if cl is cls else cl(value)  # cl is an IntEnum, a StrEnum...

    return structure


def _float_to_json(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"


def _float_from_json(body: object) -> float:
    if type(body) is float or type(body) is int:
        return float(body)
    if type(body) is str and body in _NONFINITE:
        return _NONFINITE[body]
    msg = f"expected a number, 'nan', 'inf' or '-inf', got {_preview(body)}"
    raise TypeError(msg)


def _sorted_list(items: Iterable[Any]) -> list[Any]:
    """Sort when the items allow it, so that equal sets encode to equal bytes."""
    result = list(items)
    with contextlib.suppress(TypeError):
        result.sort()
    return result


def _reject_constant(name: str) -> object:
    msg = f"{name} is not JSON (floats that are not finite are written as strs)"
    raise ValueError(msg)


def _name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _describe(exc: BaseException) -> str:
    return f"{_name(type(exc))}: {exc}"


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."
