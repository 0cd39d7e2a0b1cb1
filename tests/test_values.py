"""memstrata.serialize / deserialize: safe msgpack round trips for values and arrays."""

from __future__ import annotations

import dataclasses
import datetime
import enum

import numpy as np
import pytest
from _value_strategies import array_dtypes, assert_same, values
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memstrata import deserialize, serialize
from memstrata.codecs import _values
from memstrata.errors import CorruptDataError


@given(value=values)
def test_values_round_trip_exactly(value: object) -> None:
    assert_same(deserialize(serialize(value)), value)


@given(value=values)
def test_compiled_walker_matches_the_python_reference(value: object) -> None:
    # the reference (_prepare) and the compiled path must write identical bytes
    assert serialize(value) == _values._encoder.encode(_values._prepare(value))


@given(
    arr=hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)),
    step=st.integers(1, 3),
)
def test_arrays_keep_dtype_shape_and_bits(arr: np.ndarray, step: int) -> None:
    if arr.ndim:
        arr = arr[::step]  # non-contiguous
    out = deserialize(serialize({"a": arr}))["a"]
    assert_same(out, arr)
    assert out.flags.writeable


def test_numpy_scalars_big_ints_and_tuples_keep_their_types() -> None:
    v = [np.float32(1.5), np.int8(-3), np.bool_(True), 2**100, -(2**64), (1, (2,), ()), {"k": ()}]
    out = deserialize(serialize(v))
    assert_same(out, v)
    assert type(out[5][1]) is tuple


def test_bytes_like_come_back_as_bytes() -> None:
    assert deserialize(serialize([bytearray(b"ab"), memoryview(b"cd")])) == [b"ab", b"cd"]


class Colour(enum.Enum):
    RED = 1


class MyStr(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ({1, 2}, "builtins.set"),
        (frozenset(), "builtins.frozenset"),
        (Point(1), "Point"),
        (datetime.date(2024, 1, 1), "datetime.date"),
        (Colour.RED, "Colour"),
        (MyStr("x"), "MyStr"),
        ({"nested": [object()]}, "builtins.object"),
        (np.array([object()], dtype=object), "object"),
        (1j, "builtins.complex"),
    ],
)
def test_unsupported_types_raise_type_error_naming_the_type(value: object, type_name: str) -> None:
    with pytest.raises(TypeError, match=type_name):
        serialize(value)
    with pytest.raises(TypeError, match=type_name):
        _values._encoder.encode(_values._prepare(value))


def test_unsupported_dict_keys_raise() -> None:
    with pytest.raises(TypeError, match="dict keys of type tuple are not serializable"):
        serialize({(1, 2): 3})
    with pytest.raises(TypeError, match="dict keys must be ints within 64 bits"):
        serialize({2**70: 1})


def test_structured_dtypes_are_refused() -> None:
    with pytest.raises(TypeError, match="structured dtype"):
        serialize(np.zeros(2, dtype=[("a", "i4")]))


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x92\x01", b"\xc7\x01\x63x", b"\xd4\x01\x00"])
def test_garbage_raises_corrupt_data_error(data: bytes) -> None:
    with pytest.raises(CorruptDataError, match="value: "):
        deserialize(data)


def test_a_10000_deep_list_is_a_value_error_naming_the_nesting_limit() -> None:
    from memstrata import MemoryStore, serialize

    deep: list[object] = []
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(ValueError, match="value: nested too deeply"):
        serialize(deep)
    with MemoryStore() as store, pytest.raises(ValueError, match="nested too deeply"):
        store.store("k", deep)
