"""The payload codec: tagged JSON round-trips, the tag registry, and its errors."""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import math
import zlib
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Generic, NewType, TypeVar
from uuid import UUID

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journal import CodecError, DecodeError, EncodeError, UnknownTypeError
from journal.codec import Codec

T = TypeVar("T")
UTC_PLUS_2 = timezone(timedelta(hours=2))
AN_ID = UUID("12345678-1234-5678-1234-567812345678")


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen(kw_only=True)
class Item:
    sku: str
    quantity: int


@attrs.frozen(kw_only=True)
class Truck:
    id: int


@attrs.frozen(kw_only=True)
class Ship:
    id: int


@attrs.frozen(kw_only=True)
class Order:
    id: UUID
    placed: datetime
    items: tuple[Item, ...]
    color: Color
    level: Level
    carrier: Truck | Ship
    note: str | None = None
    gift: Item | None = None
    code: int | str = 0


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str | None = None


@attrs.frozen(kw_only=True)
class Node:
    name: str
    children: tuple[Node, ...] = ()


@attrs.frozen(kw_only=True)
class Measure:
    value: float | str


@attrs.frozen(kw_only=True)
class Box(Generic[T]):
    content: T


@attrs.frozen(kw_only=True)
class ItemBox(Box[Item]):
    pass


Branch = NewType("Branch", Node)


@attrs.frozen(kw_only=True)
class Fields:
    raw: bytes
    price: Decimal
    day: date
    at: time
    wait: timedelta
    tags: frozenset[str]
    by_number: dict[int, str]
    by_id: dict[UUID, Item]
    pair: tuple[int, str]
    ratio: float


for _cls in (Order, Fields):
    attrs.resolve_types(_cls)  # hypothesis's st.builds reads the field types


FIELDS = Fields(
    raw=b"\x00\x01",
    price=Decimal("9.99"),
    day=date(2024, 2, 29),
    at=time(12, 0, tzinfo=UTC_PLUS_2),
    wait=timedelta(hours=1),
    tags=frozenset({"b", "a"}),
    by_number={2: "two", 1: "one"},
    by_id={AN_ID: Item(sku="a", quantity=1)},
    pair=(1, "x"),
    ratio=0.25,
)


def make_order(**changes: Any) -> Order:
    order = Order(
        id=AN_ID,
        placed=datetime(2024, 5, 1, 12, 30, tzinfo=UTC_PLUS_2),
        items=(Item(sku="a", quantity=2), Item(sku="b", quantity=1)),
        color=Color.GREEN,
        level=Level.HIGH,
        carrier=Ship(id=7),
    )
    return attrs.evolve(order, **changes)


def make_codec() -> Codec:
    codec = Codec()
    codec.register(Order)
    return codec


def assert_same(a: object, b: object) -> None:
    """Equal, with the same type at every level, NaN equal to NaN, -0.0 unlike 0.0."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        ), (a, b)
    elif isinstance(a, Decimal):
        assert str(a) == str(b)
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, datetime | time) and isinstance(b, datetime | time):
        assert a == b
        assert a.utcoffset() == b.utcoffset()
    else:
        assert a == b


def round_trip(codec: Codec, value: object) -> object:
    return codec.decode(codec.encode(value))


# Builtins and containers


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -(2**80),
        1.5,
        -0.0,
        "",
        "héllo ✓",
        b"",
        b"\x00\xff",
        datetime(2024, 1, 2, 3, 4, 5, 6),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC_PLUS_2),
        date(2024, 2, 29),
        time(23, 59, 59, 999999),
        time(8, 0, tzinfo=UTC),
        timedelta(days=-3, seconds=5, microseconds=7),
        AN_ID,
        Decimal("-1.2300"),
        Decimal("NaN"),
    ],
)
def test_builtin_scalars_round_trip_with_their_exact_type(value: object) -> None:
    assert_same(round_trip(Codec(), value), value)


def test_containers_round_trip_element_by_element() -> None:
    value = (1, [True, "x", None], {"a": (1.5, b"b")}, {3, 4}, frozenset({"f"}), ())
    assert_same(round_trip(Codec(), value), value)


def test_wire_format_is_a_compact_tag_and_body_array() -> None:
    codec = Codec()
    assert codec.encode("hi") == b'["str","hi"]'
    assert codec.encode(None) == b'["none",null]'
    assert codec.encode((1, True)) == b'["tuple",[["int",1],["bool",true]]]'
    assert codec.encode({"k": b"\x01"}) == b'["dict",{"k":["bytes","AQ=="]}]'
    assert codec.encode(timedelta(seconds=1)) == b'["timedelta",1000000]'
    assert codec.encode("é") == '["str","é"]'.encode()


def test_registered_class_body_is_its_unstructured_form() -> None:
    codec = Codec()
    codec.register(Item, name="shop.Item")
    assert codec.encode(Item(sku="a", quantity=2)) == b'["shop.Item",{"sku":"a","quantity":2}]'


def test_dict_with_keys_that_are_not_str_round_trips_as_pairs() -> None:
    value = {1: "one", (2, 3): [4], AN_ID: None, "s": 5}
    codec = Codec()
    assert json.loads(codec.encode({1: 2}))[1] == [[["int", 1], ["int", 2]]]
    assert_same(round_trip(codec, value), value)


def test_naive_datetime_stays_naive_and_aware_one_keeps_its_offset() -> None:
    naive = round_trip(Codec(), datetime(2024, 1, 1, 9))
    aware = round_trip(Codec(), datetime(2024, 1, 1, 9, tzinfo=UTC_PLUS_2))
    assert isinstance(naive, datetime)
    assert naive.tzinfo is None
    assert isinstance(aware, datetime)
    assert aware.utcoffset() == timedelta(hours=2)


def test_set_encoding_is_deterministic() -> None:
    codec = Codec()
    assert codec.encode({"b", "a", "c"}) == codec.encode({"c", "a", "b"})
    assert codec.encode({"b", "a"}) == b'["set",[["str","a"],["str","b"]]]'


def test_str_with_a_lone_surrogate_round_trips() -> None:
    assert round_trip(Codec(), "a\ud800b") == "a\ud800b"


# Non-finite floats: written as tagged strings, so the JSON stays standard.


@pytest.mark.parametrize(("value", "body"), [(math.inf, "inf"), (-math.inf, "-inf")])
def test_infinite_floats_round_trip_as_tagged_strings(value: float, body: str) -> None:
    codec = Codec()
    assert json.loads(codec.encode(value)) == ["float", body]
    assert round_trip(codec, value) == value


def test_nan_round_trips_as_a_tagged_string() -> None:
    codec = Codec()
    assert codec.encode(math.nan) == b'["float","nan"]'
    decoded = round_trip(codec, math.nan)
    assert isinstance(decoded, float)
    assert math.isnan(decoded)


def test_non_finite_float_fields_round_trip_as_strings() -> None:
    codec = Codec()
    codec.register(Point)
    data = codec.encode(Point(x=math.inf, y=math.nan))
    assert b"NaN" not in data
    assert b"Infinity" not in data
    decoded = codec.decode(data)
    assert isinstance(decoded, Point)
    assert decoded.x == math.inf
    assert math.isnan(decoded.y)


def test_nan_json_token_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="NaN is not JSON"):
        Codec().decode(b'["float",NaN]')


# attrs classes, dataclasses, enums


def test_frozen_kw_only_attrs_class_with_nested_classes_round_trips() -> None:
    order = make_order(note="ring twice", gift=Item(sku="g", quantity=1))
    decoded = round_trip(make_codec(), order)
    assert decoded == order
    assert isinstance(decoded, Order)
    assert decoded.placed.utcoffset() == timedelta(hours=2)


def test_optional_fields_round_trip_as_null() -> None:
    codec = make_codec()
    data = codec.encode(make_order())
    assert json.loads(data)[1]["note"] is None
    assert codec.decode(data) == make_order()


def test_union_of_attrs_classes_with_the_same_fields_keeps_the_member() -> None:
    codec = make_codec()
    for carrier in (Truck(id=7), Ship(id=7)):
        decoded = round_trip(codec, make_order(carrier=carrier))
        assert isinstance(decoded, Order)
        assert type(decoded.carrier) is type(carrier)


@pytest.mark.parametrize("code", [1, "1"])
def test_union_of_primitives_field_keeps_the_member_type(code: int | str) -> None:
    decoded = round_trip(make_codec(), make_order(code=code))
    assert isinstance(decoded, Order)
    assert type(decoded.code) is type(code)
    assert decoded.code == code


def test_union_field_with_float_admits_an_int() -> None:
    codec = Codec()
    codec.register(Measure)
    assert round_trip(codec, Measure(value=3)) == Measure(value=3)


def test_union_field_holding_a_non_member_raises_encode_error() -> None:
    codec = Codec()
    codec.register(Measure)
    with pytest.raises(EncodeError, match=r"annotated float \| str holds a value of type bytes"):
        codec.encode(Measure(value=b"x"))  # type: ignore[arg-type]


def test_enum_fields_and_enums_encode_by_value() -> None:
    codec = make_codec()
    body = json.loads(codec.encode(make_order()))[1]
    assert (body["color"], body["level"]) == ("green", 2)
    assert codec.encode(Color.RED) == b'["Color","red"]'
    assert round_trip(codec, Level.LOW) is Level.LOW


def test_scalar_set_and_mapping_fields_round_trip() -> None:
    codec = Codec()
    codec.register(Fields)
    assert round_trip(codec, FIELDS) == FIELDS


def test_dataclass_round_trips() -> None:
    codec = Codec()
    codec.register(Point)
    assert round_trip(codec, Point(1.0, -2.5, "p")) == Point(1.0, -2.5, "p")


def test_recursive_class_round_trips() -> None:
    codec = Codec()
    codec.register(Node)
    tree = Node(name="root", children=(Node(name="leaf"),))
    assert round_trip(codec, tree) == tree


# The registry


def test_register_defaults_the_tag_to_the_qualname() -> None:
    codec = Codec()
    codec.register(Item)
    assert json.loads(codec.encode(Item(sku="a", quantity=1)))[0] == "Item"


def test_register_is_idempotent_for_the_same_class_and_name() -> None:
    codec = Codec()
    assert codec.register(Item, name="I") is Item
    codec.register(Item, name="I")
    codec.register(Item)
    assert json.loads(codec.encode(Item(sku="a", quantity=1)))[0] == "I"


def test_register_works_as_a_class_decorator() -> None:
    codec = Codec()

    @codec.register
    @attrs.frozen
    class Local:
        x: int

    assert round_trip(codec, Local(x=1)) == Local(x=1)


def test_alias_reads_the_old_tag_after_a_rename() -> None:
    old = Codec()
    old.register(Item, name="OldItem")
    stored = old.encode(Item(sku="a", quantity=1))
    new = Codec()
    new.register(Item, name="Item", aliases=["OldItem"])
    assert new.decode(stored) == Item(sku="a", quantity=1)
    assert json.loads(new.encode(Item(sku="a", quantity=1)))[0] == "Item"


def test_tag_taken_by_another_class_raises_value_error_asking_for_a_name() -> None:
    codec = Codec()
    codec.register(Truck, name="Vehicle")
    with pytest.raises(ValueError, match=r"'Vehicle' is taken by .*Truck.*name="):
        codec.register(Ship, name="Vehicle")
    with pytest.raises(ValueError, match="'Vehicle' is taken"):
        codec.register(Ship, aliases=["Vehicle"])


def test_builtin_tags_are_reserved() -> None:
    with pytest.raises(ValueError, match="'str' is taken by a builtin"):
        Codec().register(Item, name="str")


def test_registering_a_second_name_for_a_class_raises_value_error() -> None:
    codec = Codec()
    codec.register(Item, name="A")
    with pytest.raises(ValueError, match="has tag 'A' already"):
        codec.register(Item, name="B")


def test_aliases_given_as_one_str_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"write \['Old'\]"):
        Codec().register(Item, aliases="Old")


@pytest.mark.parametrize("cls", [int, object, enum.Enum])
def test_registering_a_class_that_is_not_attrs_dataclass_or_enum_raises_type_error(
    cls: type,
) -> None:
    with pytest.raises(TypeError, match="not a concrete attrs class"):
        Codec().register(cls)


def test_registering_a_generic_class_raises_type_error_but_a_bound_subclass_works() -> None:
    codec = Codec()
    with pytest.raises(TypeError, match="binds its T"):
        codec.register(Box)
    codec.register(ItemBox)
    assert round_trip(codec, ItemBox(content=Item(sku="a", quantity=1))) == ItemBox(
        content=Item(sku="a", quantity=1)
    )


def test_register_also_registers_the_classes_in_its_fields() -> None:
    codec = Codec()
    codec.register(Order)
    assert round_trip(codec, Truck(id=1)) == Truck(id=1)
    assert round_trip(codec, Color.RED) is Color.RED


def test_register_annotation_walks_generics_unions_and_fields() -> None:
    codec = Codec()
    codec.register_annotation(list[Order] | None)
    codec.register_annotation(dict[str, Annotated[Point, "meta"]])
    codec.register_annotation(tuple[Branch, ...])
    for value in (make_order(), Item(sku="a", quantity=1), Point(1.0, 2.0), Node(name="n")):
        assert round_trip(codec, value) == value


def test_register_annotation_ignores_builtins_literals_and_strings() -> None:
    codec = Codec()
    codec.register_annotation(int | str | None)
    codec.register_annotation("Order")
    assert round_trip(codec, [1, "a"]) == [1, "a"]
    with pytest.raises(EncodeError):
        codec.encode(make_order())


def test_register_annotation_keeps_an_existing_tag() -> None:
    codec = Codec()
    codec.register(Item, name="Stable")
    codec.register_annotation(list[Item])
    assert json.loads(codec.encode(Item(sku="a", quantity=1)))[0] == "Stable"


def test_explicit_name_replaces_a_default_tag_and_keeps_reading_it() -> None:
    codec = Codec()
    codec.register_annotation(Item)
    stored = codec.encode(Item(sku="a", quantity=1))
    codec.register(Item, name="Stable")
    assert json.loads(codec.encode(Item(sku="a", quantity=1)))[0] == "Stable"
    assert codec.decode(stored) == Item(sku="a", quantity=1)


def test_two_codecs_are_independent() -> None:
    first, second = Codec(), Codec()
    first.register(Truck, name="Vehicle")
    second.register(Ship, name="Vehicle")
    assert first.converter is not second.converter
    assert first.decode(first.encode(Truck(id=1))) == Truck(id=1)
    assert second.decode(first.encode(Truck(id=1))) == Ship(id=1)
    with pytest.raises(EncodeError):
        second.encode(Truck(id=1))
    with pytest.raises(UnknownTypeError):
        Codec().decode(first.encode(Truck(id=1)))


def test_converter_hooks_added_by_the_user_are_used() -> None:
    converter = cattrs.Converter()
    codec = Codec(converter=converter)
    codec.register(Item)
    codec.converter.register_unstructure_hook(Item, lambda i: f"{i.sku}*{i.quantity}")
    codec.converter.register_structure_hook(
        Item, lambda s, _: Item(sku=s.split("*")[0], quantity=int(s.split("*")[1]))
    )
    assert codec.converter is converter
    assert codec.encode(Item(sku="a", quantity=2)) == b'["Item","a*2"]'
    assert round_trip(codec, Item(sku="a", quantity=2)) == Item(sku="a", quantity=2)


# Encoding errors


def test_encoding_an_unregistered_attrs_class_raises_encode_error_naming_it() -> None:
    with pytest.raises(EncodeError, match=r"test_codec\.Item: it is not registered") as info:
        Codec().encode(Item(sku="a", quantity=1))
    assert info.value.type_name.endswith("Item")


def test_encoding_does_not_register_the_type() -> None:
    codec = Codec()
    for _ in range(2):
        with pytest.raises(EncodeError):
            codec.encode(Color.RED)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(len, "builtin_function_or_method"), (object(), "object"), (1j, "complex")],
)
def test_encoding_an_unsupported_type_raises_encode_error(value: object, type_name: str) -> None:
    with pytest.raises(EncodeError, match="neither a supported builtin") as info:
        Codec().encode(value)
    assert info.value.type_name == type_name


def test_encoding_an_unsupported_value_inside_a_container_names_it() -> None:
    with pytest.raises(EncodeError, match="type object"):
        Codec().encode({"a": [1, object()]})


def test_encoding_an_unregistered_union_member_raises_encode_error() -> None:
    codec = Codec()
    codec.register(Order, name="Order")

    @attrs.frozen(kw_only=True)
    class Plane:
        id: int

    with pytest.raises(EncodeError, match="Plane"):
        codec.encode(make_order(carrier=Plane(id=1)))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            {"items": (Item(sku="a", quantity="2"),)},  # type: ignore[arg-type]
            "annotated int holds a value of type str",
        ),
        ({"items": (Item(sku="a", quantity=True),)}, "annotated int holds a value of type bool"),
        ({"placed": "2024-01-01"}, "annotated datetime holds a value of type str"),
        ({"note": 5}, "annotated str holds a value of type int"),
    ],
)
def test_field_holding_what_its_annotation_forbids_raises_encode_error(
    changes: dict[str, object], match: str
) -> None:
    with pytest.raises(EncodeError, match=match):
        make_codec().encode(make_order(**changes))


def test_date_field_holding_a_datetime_raises_encode_error() -> None:
    codec = Codec()
    codec.register(Fields)
    with pytest.raises(EncodeError, match="annotated date holds a value of type datetime"):
        codec.encode(attrs.evolve(FIELDS, day=datetime(2024, 1, 1)))


def test_encoding_a_list_that_contains_itself_raises_encode_error() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(EncodeError, match="RecursionError"):
        Codec().encode(loop)


# Decoding errors


def test_unknown_tag_raises_unknown_type_error() -> None:
    with pytest.raises(UnknownTypeError) as info:
        Codec().decode(b'["Order",{}]')
    assert info.value.tag == "Order"


def test_unknown_tag_nested_in_a_container_raises_unknown_type_error() -> None:
    with pytest.raises(UnknownTypeError, match="'Ghost'"):
        Codec().decode(b'["list",[["int",1],["Ghost",null]]]')


def test_unknown_tag_in_a_union_field_raises_unknown_type_error() -> None:
    codec = make_codec()
    body = json.loads(codec.encode(make_order()))
    body[1]["carrier"] = ["Plane", {"id": 1}]
    with pytest.raises(UnknownTypeError, match="'Plane'"):
        codec.decode(json.dumps(body).encode())


def test_json_with_whitespace_around_the_value_decodes() -> None:
    assert Codec().decode(b' \n["list",[["int",1], ["str","a"]]]\t ') == [1, "a"]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "JSONDecodeError"),
        (b"not json", "JSONDecodeError"),
        (b'["int",1]x', "JSONDecodeError: Extra data"),
        (b'["int",1] ["int",2]', "JSONDecodeError: Extra data"),
        (b"\xff\xfe", "UnicodeDecodeError"),
        (b'{"t":"int","v":1}', r"expected a \[tag, body\] array"),
        (b'["int"]', r"expected a \[tag, body\] array"),
        (b'["int",1,2]', r"expected a \[tag, body\] array"),
        (b"[1,1]", r"expected a \[tag, body\] array"),
        (b'["int","1"]', "as int: TypeError: expected int"),
        (b'["int",true]', "as int: TypeError: expected int"),
        (b'["bool",1]', "as bool"),
        (b'["none",0]', "as none"),
        (b'["float","NaN"]', "as float"),
        (b'["bytes","***"]', "as bytes"),
        (b'["datetime","yesterday"]', "as datetime"),
        (b'["uuid","x"]', "as uuid"),
        (b'["decimal","one"]', "as decimal"),
        (b'["timedelta",1.5]', "as timedelta"),
        (b'["list",{}]', "as list"),
        (b'["set",[["list",[]]]]', "as set: TypeError: unhashable"),
        (b'["dict",[[["int",1]]]]', r"expected a \[key, value\] pair"),
        (b'["list",[["int"]]]', r"expected a \[tag, body\] array"),
        (b"[" * 100_000, "RecursionError"),
        (b'["Color","blue"]', "'blue' is not a valid Color"),
        (b'["Order",null]', r"as tests\.journal\.test_codec\.Order"),
    ],
)
def test_corrupt_bytes_raise_decode_error(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        make_codec().decode(data)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"id": 5}, r"expected str.* @ \$\.id"),
        ({"placed": "noon"}, r"Invalid isoformat string.* @ \$\.placed"),
        ({"color": "blue"}, r"'blue' is not a valid Color @ \$\.color"),
        ({"level": "1"}, r"expected int.* @ \$\.level"),
        ({"items": [{"sku": "a", "quantity": "2"}]}, r"@ \$\.items\[0\]\.quantity"),
        ({"items": [{"sku": "a"}]}, r"required field missing @ \$\.items\[0\]\.quantity"),
        ({"carrier": ["int", 1]}, r"expected .*Truck.*Ship.*, got int @ \$\.carrier"),
        ({"code": 1}, r"\$\.code"),
    ],
)
def test_wrong_field_types_raise_decode_error_naming_the_type_and_path(
    change: dict[str, object], match: str
) -> None:
    codec = make_codec()
    envelope = json.loads(codec.encode(make_order()))
    envelope[1] |= change
    with pytest.raises(DecodeError, match=match) as info:
        codec.decode(json.dumps(envelope).encode())
    assert info.value.type_name.endswith("test_codec.Order")


# The payload codec hook


class Zlib:
    def encode(self, data: bytes) -> bytes:
        return zlib.compress(data)

    def decode(self, data: bytes) -> bytes:
        return zlib.decompress(data)


class Broken:
    def encode(self, data: bytes) -> bytes:
        msg = "no key"
        raise RuntimeError(msg)

    def decode(self, data: bytes) -> bytes:
        msg = "no key"
        raise RuntimeError(msg)


def test_payload_codec_wraps_the_whole_json() -> None:
    codec = Codec(payload_codec=Zlib())
    codec.register(Order)
    data = codec.encode(make_order())
    assert zlib.decompress(data) == make_codec().encode(make_order())
    assert codec.decode(data) == make_order()


def test_failing_payload_codec_decode_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"payload codec failed \(zlib\.error"):
        Codec(payload_codec=Zlib()).decode(b'["int",1]')
    with pytest.raises(DecodeError, match=r"payload codec failed \(RuntimeError: no key"):
        Codec(payload_codec=Broken()).decode(b"")


def test_failing_payload_codec_encode_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match=r"payload codec failed \(RuntimeError: no key"):
        Codec(payload_codec=Broken()).encode(1)


# Properties

# Whole seconds: Python 3.11's fromisoformat drops the sub-second part of an offset.
aware = st.integers(-86_399, 86_399).map(lambda s: timezone(timedelta(seconds=s)))
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.binary()
    | st.datetimes(timezones=st.none() | aware)
    | st.dates()
    | st.times(timezones=st.none() | aware)
    | st.timedeltas()
    | st.uuids()
    | st.decimals()
)
hashables = st.integers() | st.text() | st.uuids() | st.dates()
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children)
        | st.lists(children).map(tuple)
        | st.dictionaries(st.text(), children)
        | st.dictionaries(hashables, children)
        | st.sets(hashables)
        | st.frozensets(hashables)
    ),
    max_leaves=20,
)


@given(values)
@settings(deadline=None)
def test_codec_round_trips_arbitrary_nested_builtin_values(value: object) -> None:
    assert_same(round_trip(Codec(), value), value)


@given(
    st.builds(
        Fields,
        price=st.decimals(allow_nan=False),
        at=st.times(timezones=st.none() | aware),
        ratio=st.floats(allow_nan=False),
    )
)
@settings(deadline=None)
def test_codec_round_trips_an_attrs_class_of_every_field_type(value: Fields) -> None:
    codec = Codec()
    codec.register(Fields)
    decoded = round_trip(codec, value)
    assert decoded == value
    assert isinstance(decoded, Fields)
    assert decoded.at.utcoffset() == value.at.utcoffset()


@given(st.builds(Order, placed=st.datetimes(timezones=aware)))
@settings(deadline=None)
def test_codec_round_trips_arbitrary_orders(order: Order) -> None:
    assert round_trip(make_codec(), order) == order


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)
tags = st.sampled_from(["Order", "Item", "Color", "int", "str", "list", "dict", "set", "Nope"])


@given(st.binary() | st.tuples(tags, json_values).map(lambda e: json.dumps(list(e)).encode()))
@settings(deadline=None)
def test_decoding_any_bytes_raises_nothing_but_codec_errors(data: bytes) -> None:
    with contextlib.suppress(CodecError):
        make_codec().decode(data)
