"""The quick decode of small frames against the general path it stands in for.

``quick_decode`` must give exactly what the general decode gives, or step aside
(``SLOW``): on every codec, kind and damaged frame. ``blosc2_stored`` must give
exactly what blosc2 decompresses, or None.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _value_strategies import assert_same, small_arrays, values
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memstrata import CompressionEngine
from memstrata.codecs import _registry, get_codec, train_dictionary
from memstrata.codecs._quick import BLOSC2_HEADER, SLOW, blosc2_stored, quick_compiled, quick_decode
from memstrata.codecs._samples import trace_records
from memstrata.errors import CorruptDataError

_DICT = train_dictionary([json.dumps(r).encode() for r in trace_records(300, seed=5)], 4096)
CONFIGS = [{"id": name} for name in ("raw", "lz4", "zstd", "zlib", "blosc2")] + [
    {"id": "zstd", "dictionary": _DICT.hex()},
    {"id": "blosc2", "codec": "lz4", "filter": "shuffle"},
]
payloads = st.one_of(values, st.binary(max_size=300), small_arrays, hnp.arrays(np.int8, st.integers(0, 600)))


def general(frame: bytes):
    """The general path, or the exception it raises."""
    try:
        return _registry._decode(frame, None, True)
    except CorruptDataError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(payloads, st.sampled_from(CONFIGS))
def test_quick_decode_is_the_general_decode_or_steps_aside(value, config) -> None:
    frame = get_codec(config).encode(value)
    out = quick_decode(frame)
    expected = general(frame)
    assert not isinstance(expected, Exception)
    if out is not SLOW:
        assert_same(out, expected)
        assert type(out) is type(expected)
    assert_same(_registry.decode(frame), expected)
    if quick_compiled is not None:  # the compiled twin: the same value, once the readable one made its helpers
        compiled = quick_compiled(frame)
        assert (compiled is SLOW) == (out is SLOW)
        if compiled is not SLOW:
            assert_same(compiled, expected)
            assert type(compiled) is type(expected)


@settings(max_examples=300, deadline=None)
@given(payloads, st.sampled_from(CONFIGS), st.data())
def test_a_damaged_frame_never_decodes_quick_to_a_value_the_general_path_refuses(value, config, data) -> None:
    frame = bytearray(get_codec(config).encode(value))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] ^= data.draw(st.integers(1, 255))
    damaged = bytes(frame)
    out = quick_decode(damaged)
    compiled = out if quick_compiled is None else quick_compiled(damaged)
    expected = general(damaged)
    if isinstance(expected, Exception):
        assert out is SLOW and compiled is SLOW
        with pytest.raises(CorruptDataError):
            _registry.decode(damaged)
    else:
        for got in (out, compiled):
            if got is not SLOW:
                assert_same(got, expected)


def test_the_store_kinds_take_the_quick_path() -> None:
    """Texts with metadata, traces and int8 embeddings (blosc2 stores those uncompressed) decode quick."""
    engine = CompressionEngine({"zstd_level": 3, "train_after": 0})
    rng = np.random.default_rng(3)
    for value in ({"id": "a1", "text": "the user likes tea", "importance": 3}, next(iter(trace_records(1, seed=1))),
                  rng.integers(-127, 128, 384).astype(np.int8), b"raw bytes " * 20):
        frame = engine.compress(value)
        for quick in (quick_decode, quick_compiled or quick_decode):
            out = quick(frame)
            assert out is not SLOW
            assert_same(out, general(frame))
            if isinstance(out, np.ndarray):
                assert out.flags.writeable and out.base is not None and not isinstance(out.base, bytes)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=2000), st.sampled_from(["zstd", "lz4", "blosclz"]), st.integers(1, 4))
def test_blosc2_stored_is_what_blosc2_decompresses(raw, codec, typesize) -> None:
    blosc2 = pytest.importorskip("blosc2")
    chunk = blosc2.compress2(raw, codec=getattr(blosc2.Codec, codec.upper()), clevel=5, typesize=typesize,
                             filters=[blosc2.Filter.NOFILTER], filters_meta=[0])
    stored = blosc2_stored(memoryview(chunk), len(raw))
    if stored is not None:
        assert bytes(stored) == blosc2.decompress2(chunk) == raw
    assert blosc2_stored(memoryview(chunk), len(raw) + 1) is None


def test_blosc2_stored_refuses_what_blosc2_would_decode_otherwise() -> None:
    blosc2 = pytest.importorskip("blosc2")
    raw = np.random.default_rng(0).integers(0, 256, 200).astype(np.uint8).tobytes()
    chunk = blosc2.compress2(raw, codec=blosc2.Codec.ZSTD, clevel=5, typesize=1,
                             filters=[blosc2.Filter.NOFILTER], filters_meta=[0])
    assert bytes(blosc2_stored(memoryview(chunk), len(raw))) == raw  # incompressible: stored whole
    for i, bit in ((2, 0x02), (2, 0x04), (16, 0x01), (31, 0x10), (4, 0x01), (12, 0x01)):
        changed = bytearray(chunk)
        changed[i] ^= bit
        assert blosc2_stored(memoryview(bytes(changed)), len(raw)) is None
    assert blosc2_stored(memoryview(chunk[: BLOSC2_HEADER + 10]), 10) is None
    assert blosc2_stored(memoryview(chunk), 0) is None
