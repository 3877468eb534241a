"""Encode payload values as self-describing, tagged JSON bytes, and decode them back.

Theory of operation: a :class:`Codec` owns a cattrs converter and a registry that gives
each registered class (an attrs class, a dataclass or an Enum) one stable tag, plus any
number of alias tags that still read as that class. Encoding looks the value's exact
type up in one table (fixed builtins, then registered classes); decoding looks the tag
up in another and nowhere else. Nothing is imported, evaluated or unpickled, so bytes
from an untrusted store can at worst raise a :class:`~journal.CodecError`.

Invariants:

- ``decode(encode(v)) == v`` with the type kept wherever the codec tags (a tuple comes
  back a tuple, a frozenset a frozenset, a bool never turns into an int).
- Encoding never registers anything: what one process writes, another process that made
  the same registrations reads.
- Fields are checked against their annotations when written as strictly as when read,
  so a value that encodes also decodes.

Wire format: compact, strict UTF-8 JSON (no NaN tokens). Every value is the envelope
``[tag, body]``. Builtin tags are fixed: ``none`` (body null), ``bool``, ``int``,
``str``, ``float`` (a number, or ``"nan"``, ``"inf"``, ``"-inf"``), ``bytes`` (base64),
``datetime``, ``date`` and ``time`` (ISO 8601, with the UTC offset when aware; a zone's
name and a sub-second offset are not kept), ``timedelta`` (whole microseconds),
``uuid`` (hex with dashes), ``decimal`` (its str).
``list``, ``tuple``, ``set`` and ``frozenset`` bodies are arrays of envelopes; a ``dict``
body is an object of envelopes when every key is a str, else an array of
``[key envelope, value envelope]`` pairs. A registered class's body is its cattrs
unstructured form: an enum's value; scalar fields as above; a field typed by a union of
several types holds an envelope; a mapping field keyed by a type other than str holds
``[key, value]`` pairs. A :class:`PayloadCodec`, if set, wraps the whole JSON::

    ["Shipped",{"order":"o-1","at":"2024-05-01T12:00:00+00:00","by":["Truck",{"id":7}]}]
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import typing
from collections.abc import Callable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol, cast, get_args, get_origin
from uuid import UUID

import attrs
import cattrs
from cattrs.cols import is_any_set, iterable_unstructure_factory

from ._codec_support import (
    _SCALARS,
    T,
    _describe,
    _exact,
    _exact_field,
    _field,
    _find_unknown_tag,
    _float_from_json,
    _float_to_json,
    _format_error,
    _ignore_type,
    _is_pair_mapping,
    _is_registrable,
    _is_tagged_union,
    _name,
    _pairs,
    _preview,
    _reject_constant,
    _scalar_from_json,
    _sorted_list,
    _Structure,
    _ToJson,
    _union_members,
)
from ._exceptions import CodecError, DecodeError, EncodeError, UnknownTypeError

__all__ = ["Codec", "PayloadCodec"]


_ENVELOPE = "a tagged value"


class PayloadCodec(Protocol):
    """A hook that wraps every payload's bytes: compression, encryption.

    ``decode(encode(b)) == b`` must hold. Either method may raise any ``Exception``; the
    codec reports it as :class:`~journal.EncodeError` or :class:`~journal.DecodeError`.
    """

    def encode(self, data: bytes) -> bytes:
        """Return the bytes to store for the JSON ``data``."""
        ...

    def decode(self, data: bytes) -> bytes:
        """Return the JSON that ``encode`` was given, from the stored ``data``."""
        ...


def _compact_dumps() -> Callable[[object], str]:
    """Return a function that writes an envelope as compact JSON, non-ASCII kept.

    ``JSONEncoder.encode`` builds a new C encoder at every call, a third of the cost
    of writing a small value; this builds it once. It skips the encoder's cycle
    check: envelopes are trees built afresh by the codec, and a value that contains
    itself already fails, with a RecursionError, while its envelope is built.
    """
    dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python): the plain path
        return dumps.encode
    encode = make(
        None, dumps.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    return lambda envelope: "".join(encode(envelope, 0))


def _strict_loads() -> Callable[[str], object]:
    """Return a function that reads JSON text, refusing NaN and Infinity tokens.

    ``JSONDecoder.decode`` matches whitespace with a regular expression before and
    after the value; text the codec wrote has none, so the scanner reads it directly
    and anything else (whitespace, trailing data, an error) takes the full path.
    """
    decoder = json.JSONDecoder(parse_constant=_reject_constant)
    full = decoder.decode
    # An attribute of every JSONDecoder (its C scanner) that typeshed leaves out.
    scan: Callable[[str, int], tuple[object, int]] = decoder.scan_once  # type: ignore[attr-defined]

    def loads(text: str) -> object:
        try:
            value, end = scan(text, 0)
        except StopIteration:
            return full(text)  # raises the decoder's own error
        return value if end == len(text) else full(text)

    return loads


class Codec:
    """Turns values into tagged JSON bytes and back, through a registry of stable tags.

    Each instance owns its converter and its registry: two codecs never share a
    registration or a hook. Add converter hooks before the first encode or decode of the
    types they concern: hooks are looked up once per type and cached.

    Args:
        converter: The cattrs converter for registered classes; a fresh one if omitted.
            The codec installs its scalar, set, mapping and union hooks on it.
        payload_codec: Wraps the JSON bytes of every payload (compression, encryption).

    Example::

        codec = Codec()
        codec.register(OrderPlaced, name="OrderPlaced")
        assert codec.decode(codec.encode(event)) == event
    """

    def __init__(
        self,
        converter: cattrs.Converter | None = None,
        payload_codec: PayloadCodec | None = None,
    ) -> None:
        self._converter = cattrs.Converter() if converter is None else converter
        self._payload_codec = payload_codec
        self._classes: dict[str, type] = {}  # every tag and alias of a registered class
        self._automatic: set[type] = set()  # registered with a default tag, by annotation
        self._dumps = _compact_dumps()
        self._dumps_ascii = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
        self._loads = _strict_loads()
        enc, dec = self._envelope, self._from_envelope
        self._encoders: dict[type, tuple[str, _ToJson]] = {
            cls: (tag, to_json) for cls, (tag, _, to_json, _) in _SCALARS.items()
        }
        self._decoders: dict[str, Callable[[Any], object]] = {
            tag: _scalar_from_json(json_type, from_json)
            for tag, json_type, _, from_json in _SCALARS.values()
        }
        self._encoders[float] = ("float", _float_to_json)
        self._decoders["float"] = _float_from_json
        self._encoders |= {
            list: ("list", lambda v: [enc(x) for x in v]),
            tuple: ("tuple", lambda v: [enc(x) for x in v]),
            set: ("set", lambda v: [enc(x) for x in _sorted_list(v)]),
            frozenset: ("frozenset", lambda v: [enc(x) for x in _sorted_list(v)]),
        }
        self._decoders |= {
            "list": lambda b: [dec(x) for x in _exact(b, list)],
            "tuple": lambda b: tuple(dec(x) for x in _exact(b, list)),
            "set": lambda b: {dec(x) for x in _exact(b, list)},
            "frozenset": lambda b: frozenset(dec(x) for x in _exact(b, list)),
        }
        self._encoders[dict] = ("dict", self._dict_to_json)
        self._decoders["dict"] = self._dict_from_json
        self._install_hooks()

    @property
    def converter(self) -> cattrs.Converter:
        """The cattrs converter this codec uses for registered classes."""
        return self._converter

    def register(
        self, cls: type[T], name: str | None = None, aliases: Sequence[str] = ()
    ) -> type[T]:
        """Register an attrs class, dataclass or Enum under a stable tag.

        Classes named in its fields' annotations are registered too, with default tags
        (see :meth:`register_annotation`). Registering a class again is a no-op that may
        add aliases, or give a tag to a class that ``register_annotation`` registered.
        Returns ``cls``, so ``@codec.register`` works as a class decorator.

        Args:
            cls: The class to register.
            name: Its tag on the wire; defaults to its current tag, else its
                ``__qualname__``. Pick a name that will survive a rename or a move.
            aliases: Older tags that still decode as ``cls`` (after a rename).

        Returns:
            ``cls`` itself.

        Raises:
            TypeError: ``cls`` is not an attrs class, a dataclass or an Enum, or is
                generic (register a subclass that binds its type parameters).
            ValueError: A tag is a builtin's or another class's, or ``cls`` was given
                another tag by ``register`` already.
        """
        if not _is_registrable(cls):
            msg = (
                f"{cls!r} is not a concrete attrs class, dataclass or Enum (builtins need "
                "no registering; for a generic class, register a subclass that binds its T)"
            )
            raise TypeError(msg)
        if isinstance(aliases, str):
            msg = f"aliases is a sequence of tags, not the str {aliases!r}: write [{aliases!r}]"
            raise TypeError(msg)
        current = self._encoders[cls][0] if cls in self._encoders else None
        tag = name if name is not None else current or cls.__qualname__
        if current is not None and tag != current and cls not in self._automatic:
            msg = f"{_name(cls)} has tag {current!r} already; pass older tags in aliases="
            raise ValueError(msg)
        self._claim(cls, tag, aliases)
        self._automatic.discard(cls)
        if current is None:
            self._walk_fields(cls, set())
        return cls

    def register_annotation(self, tp: object) -> None:
        """Register every attrs class, dataclass and Enum named in a type annotation.

        Walks unions, generics (``list[Foo] | None``, ``dict[str, Bar]``,
        ``tuple[A, ...]``), ``Annotated``, NewTypes and the fields of every class it
        registers, recursively. New classes get their ``__qualname__`` as tag; a class
        registered already keeps its tag. Forward references that do not resolve are
        skipped.

        Args:
            tp: A type annotation, e.g. of a parameter or a return value.

        Raises:
            ValueError: A class's default tag is another class's: register one of them
                first, with ``name=``.
        """
        self._walk(tp, set())

    def encode(self, value: object) -> bytes:
        """Encode a value as tagged JSON bytes, wrapped by the payload codec if any.

        Args:
            value: A supported builtin, a container of them, or an instance of a
                registered class.

        Returns:
            The bytes to store.

        Raises:
            EncodeError: A type in the value is unregistered or unsupported, a field
                holds a value its annotation forbids, or the payload codec failed.
        """
        try:
            envelope = self._envelope(value)
            try:
                data = self._dumps(envelope).encode()
            except UnicodeEncodeError:  # a lone surrogate: \u escapes keep the str exact
                data = self._dumps_ascii(envelope).encode()
        except CodecError:
            raise
        except Exception as exc:  # a field breaks its annotation, a cycle, a huge int
            raise EncodeError(_name(type(value)), _describe(exc)) from exc
        if self._payload_codec is None:
            return data
        try:
            return self._payload_codec.encode(data)
        except Exception as exc:
            reason = f"the payload codec failed ({_describe(exc)})"
            raise EncodeError(_name(type(value)), reason) from exc

    def decode(self, data: bytes) -> object:
        """Decode bytes written by :meth:`encode` of a codec with the same registrations.

        Args:
            data: The stored bytes.

        Returns:
            The value, of the type its tag names.

        Raises:
            UnknownTypeError: A tag in the bytes is neither a builtin's nor registered.
            DecodeError: The payload codec failed, the bytes are not tagged JSON, or a
                body does not fit its tag's type.
        """
        if self._payload_codec is not None:
            try:
                data = self._payload_codec.decode(data)
            except Exception as exc:
                reason = f"the payload codec failed ({_describe(exc)})"
                raise DecodeError(_ENVELOPE, reason) from exc
        try:
            return self._from_envelope(self._loads(data.decode()))
        except CodecError:
            raise
        except Exception as exc:  # not UTF-8, not JSON, or nested too deep
            raise DecodeError(_ENVELOPE, _describe(exc)) from exc

    def _envelope(self, value: object) -> list[object]:
        encoder = self._encoders.get(type(value))
        if encoder is None:
            if _is_registrable(type(value)):
                reason = "it is not registered (call register or register_annotation)"
            else:
                reason = "it is neither a supported builtin nor a registered class"
            raise EncodeError(_name(type(value)), reason)
        return [encoder[0], encoder[1](value)]

    def _from_envelope(self, envelope: object) -> object:
        if type(envelope) is not list or len(envelope) != 2 or type(envelope[0]) is not str:
            raise DecodeError(_ENVELOPE, f"expected a [tag, body] array, got {_preview(envelope)}")
        tag, body = envelope
        decoder = self._decoders.get(tag)
        if decoder is None:
            raise UnknownTypeError(tag)
        try:
            return decoder(body)
        except CodecError:
            raise
        except cattrs.BaseValidationError as exc:
            unknown = _find_unknown_tag(exc)
            if unknown is not None:
                raise UnknownTypeError(unknown.tag) from exc
            reason = "; ".join(cattrs.transform_error(exc, format_exception=_format_error))
            raise DecodeError(self._type_name(tag), reason) from exc
        except Exception as exc:
            raise DecodeError(self._type_name(tag), _describe(exc)) from exc

    def _type_name(self, tag: str) -> str:
        cls = self._classes.get(tag)
        return tag if cls is None else _name(cls)

    def _dict_to_json(self, value: dict[object, object]) -> object:
        enc = self._envelope
        if all(type(key) is str for key in value):
            return {key: enc(item) for key, item in value.items()}
        return [[enc(key), enc(item)] for key, item in value.items()]

    def _dict_from_json(self, body: object) -> dict[object, object]:
        dec = self._from_envelope
        if type(body) is dict:
            return {key: dec(item) for key, item in body.items()}
        return {dec(key): dec(item) for key, item in _pairs(body)}

    def _claim(self, cls: type, tag: str, aliases: Sequence[str]) -> None:
        for t in (tag, *aliases):
            if type(t) is not str or not t:
                msg = f"a type tag is a non-empty str, not {t!r} (registering {_name(cls)})"
                raise ValueError(msg)
            owner = self._classes.get(t)
            if t in self._decoders and owner is not cls:
                taker = "a builtin" if owner is None else _name(owner)
                msg = f"tag {t!r} is taken by {taker}: register {_name(cls)} with name=..."
                raise ValueError(msg)
        for t in (tag, *aliases):
            self._classes[t] = cls
            self._decoders[t] = self._lazy_structure(cls)
        self._encoders[cls] = (tag, self._lazy_unstructure(cls, tag))

    def _lazy_unstructure(self, cls: type, tag: str) -> _ToJson:
        # Resolved at first use, so that converter hooks added after register() count.
        def first_use(value: object) -> object:
            hook = self._converter.get_unstructure_hook(cls)
            self._encoders[cls] = (tag, hook)
            return hook(value)

        return first_use

    def _lazy_structure(self, cls: type) -> Callable[[Any], object]:
        hook: _Structure | None = None

        def structure(body: object) -> object:
            nonlocal hook
            if hook is None:
                hook = self._converter.get_structure_hook(cls)
            return hook(body, cls)

        return structure

    def _walk(self, tp: object, seen: set[int]) -> None:
        if id(tp) in seen:
            return
        seen.add(id(tp))
        origin = get_origin(tp)
        if origin is typing.Literal:
            return
        if origin is typing.Annotated:
            self._walk(get_args(tp)[0], seen)
        elif origin is not None:
            for arg in (origin, *get_args(tp)):
                self._walk(arg, seen)
        elif _is_registrable(tp):
            if tp not in self._encoders:
                self._claim(tp, tp.__qualname__, ())
                self._automatic.add(tp)
                self._walk_fields(tp, seen)
        elif isinstance(tp, list | tuple):  # Callable's parameter list
            for item in tp:
                self._walk(item, seen)
        else:  # NewType, `type X = ...`
            inner = getattr(tp, "__supertype__", None) or getattr(tp, "__value__", None)
            if inner is not None:
                self._walk(inner, seen)

    def _walk_fields(self, cls: type, seen: set[int]) -> None:
        if issubclass(cls, enum.Enum):
            return
        fields = attrs.fields(cls) if attrs.has(cls) else dataclasses.fields(cast(Any, cls))
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except (NameError, SyntaxError, TypeError):  # unresolvable forward references
            hints = {}
        for field in fields:
            self._walk(hints.get(field.name, field.type), seen)

    def _install_hooks(self) -> None:
        conv = self._converter
        for cls in (bytes, datetime, date, time, timedelta, UUID, Decimal):
            tag, _, to_json, _ = _SCALARS[cls]
            exclude = datetime if cls is date else ()  # a date field must not hold a datetime
            conv.register_unstructure_hook(cls, _field(cls, to_json, exclude))
            conv.register_structure_hook(cls, _ignore_type(self._decoders[tag]))
        conv.register_unstructure_hook(str, _field(str))
        # Exact predicates, not singledispatch: an IntEnum field must keep its enum hook.
        conv.register_unstructure_hook_func(lambda t: t is int, _field(int, exclude=bool))
        conv.register_unstructure_hook_func(lambda t: t is bool, _field(bool))
        number = _field((int, float), _float_to_json, bool)
        conv.register_unstructure_hook_func(lambda t: t is float, number)
        for primitive in (str, int, bool):
            conv.register_structure_hook(primitive, _exact_field(primitive))
        conv.register_structure_hook(float, lambda b, cl: cl(_float_from_json(b)))
        conv.register_unstructure_hook_factory(
            is_any_set, lambda t: iterable_unstructure_factory(t, conv, unstructure_to=_sorted_list)
        )
        conv.register_unstructure_hook_factory(_is_pair_mapping, self._pairs_unstructurer)
        conv.register_structure_hook_factory(_is_pair_mapping, self._pairs_structurer)
        conv.register_unstructure_hook_factory(_is_tagged_union, self._union_unstructurer)
        conv.register_structure_hook_factory(_is_tagged_union, self._union_structurer)

    def _pairs_unstructurer(self, tp: object) -> _ToJson:
        key_type, value_type = get_args(tp)
        key = self._converter.get_unstructure_hook(key_type)
        item = self._converter.get_unstructure_hook(value_type)
        return lambda m: [[key(k), item(v)] for k, v in m.items()]

    def _pairs_structurer(self, tp: object) -> _Structure:
        key_type, value_type = get_args(tp)
        key = self._converter.get_structure_hook(key_type)
        item = self._converter.get_structure_hook(value_type)
        origin = get_origin(tp)
        make = cast(
            Callable[[dict[Any, Any]], object], dict if inspect.isabstract(origin) else origin
        )
        return lambda b, _: make({key(k, key_type): item(v, value_type) for k, v in _pairs(b)})

    def _union_unstructurer(self, tp: object) -> _ToJson:
        allowed = _union_members(tp)

        def unstructure(value: object) -> object:
            if allowed is not None and not isinstance(value, allowed):
                msg = f"a field annotated {tp} holds a value of type {_name(type(value))}"
                raise TypeError(msg)
            return self._envelope(value)

        return unstructure

    def _union_structurer(self, tp: object) -> _Structure:
        allowed = _union_members(tp)

        def structure(body: object, _: object) -> object:
            value = self._from_envelope(body)
            if allowed is not None and not isinstance(value, allowed):
                msg = f"expected {tp}, got {_name(type(value))}"
                raise TypeError(msg)
            return value

        return structure
