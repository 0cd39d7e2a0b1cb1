"""Hypothesis strategies for serializable values and arrays, and an exact comparison."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# every non-object, non-structured dtype family, both byte orders
array_dtypes = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="="),
    hnp.unsigned_integer_dtypes(endianness=">"),
    hnp.floating_dtypes(endianness="="),
    hnp.floating_dtypes(sizes=(32, 64), endianness=">"),
    hnp.complex_number_dtypes(),
    hnp.datetime64_dtypes(),
    hnp.timedelta64_dtypes(),
    hnp.byte_string_dtypes(max_len=4),
    hnp.unicode_string_dtypes(max_len=4),
)
small_arrays = hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # arbitrary size: big ints use an extension type
    st.floats(),  # NaN and infinities included
    st.text(),
    st.binary(),
)
keys = st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**64 - 1), st.binary(max_size=4), st.booleans(), st.none())
values = st.recursive(
    st.one_of(scalars, small_arrays),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=20,
)


def assert_same(out: Any, expected: Any) -> None:
    """Exact equality that also compares types, NaN as equal to NaN, and arrays bit for bit."""
    if isinstance(expected, (bytearray, memoryview)):
        expected = bytes(expected)
    assert type(out) is type(expected), (type(out), type(expected))
    if isinstance(expected, np.ndarray):
        assert out.dtype == expected.dtype and out.shape == expected.shape
        assert out.tobytes() == np.ascontiguousarray(expected).tobytes()
    elif isinstance(expected, float):
        assert out == expected or (math.isnan(out) and math.isnan(expected))
        assert math.copysign(1.0, out) == math.copysign(1.0, expected) or math.isnan(expected)
    elif isinstance(expected, dict):
        assert list(out) == list(expected)
        for k in expected:
            assert_same(out[k], expected[k])
    elif isinstance(expected, (list, tuple)):
        assert len(out) == len(expected)
        for a, b in zip(out, expected):
            assert_same(a, b)
    elif isinstance(expected, np.generic):
        assert out.dtype == expected.dtype and out.tobytes() == expected.tobytes()
    else:
        assert out == expected
