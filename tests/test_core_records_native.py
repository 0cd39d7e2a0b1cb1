"""The layers' record encoding in C (``memstrata._native.corewrite``) against its Python twin."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata.core._layers import PATTERN, TOMBSTONE, VALUE, decode_record, encode_record, encode_record_py


@given(
    key=st.binary(max_size=600),
    seq=st.integers(0, 2**63 - 1),
    kind=st.sampled_from([VALUE, TOMBSTONE, PATTERN]) | st.integers(0, 255),
    payload=st.binary(max_size=1200),
)
def test_native_record_is_the_python_record(key: bytes, seq: int, kind: int, payload: bytes) -> None:
    rec = encode_record(key, seq, kind, payload)
    assert rec == encode_record_py(key, seq, kind, payload)
    if kind in (VALUE, TOMBSTONE, PATTERN):
        assert decode_record(key, rec, "test") == (seq, kind, payload)


@pytest.mark.parametrize(
    "args, error",
    [
        ((b"k", -1, VALUE, b""), "seq: expected"),
        ((b"k", 0, 256, b""), "kind: expected a byte"),
        (("k", 0, VALUE, b""), "key"),
        ((b"k", 0, VALUE, None), "payload"),
    ],
)
def test_bad_arguments_are_refused(args: tuple, error: str) -> None:  # type: ignore[type-arg]
    with pytest.raises((TypeError, ValueError), match=error):
        encode_record(*args)
