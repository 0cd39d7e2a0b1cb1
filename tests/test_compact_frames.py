"""Compact frames and per-shape dictionaries: round trips, every flipped bit, unseen streams."""

from __future__ import annotations

import msgspec
import pytest
from _value_strategies import assert_same, values
from hypothesis import given, settings
from hypothesis import strategies as st

from memstrata import CompressionEngine, CorruptDataError
from memstrata.codecs import (
    COMPACT_VERSION,
    TAG_BYTES,
    TAG_VALUE,
    decode_compact,
    encode_compact,
    serialize,
    train_dictionary,
)
from memstrata.codecs._samples import trace_records


@pytest.fixture(scope="module")
def dictionary() -> bytes:
    return train_dictionary([serialize(r) for r in trace_records(400, seed=31)], 8192)


@pytest.fixture(scope="module")
def trained() -> CompressionEngine:
    """An engine that has seen 4,000 trace records: a general dictionary and one per trace type."""
    engine = CompressionEngine({"train_after": 2000, "kind_train_after": 200})
    for r in trace_records(4000, seed=1):
        engine.compress_compact(r)
    return engine


def _frames(dictionary: bytes) -> list[tuple[bytes, bytes | None, bytes]]:
    """(frame, dictionary, context) of every codec: raw, empty, zstd, zstd with a dictionary."""
    record = serialize(next(trace_records(1, seed=5)))
    out = []
    for data, d, context in ((b"short", None, b"k"), (b"", None, b""), (record, None, b"key-7"), (record, dictionary, b"\x01" * 16)):
        frame, used = encode_compact(data, TAG_VALUE, d, context=context, threshold=1)
        assert used == d
        out.append((frame, used, context))
    return out


def test_round_trip_through_the_engine(trained: CompressionEngine) -> None:
    for r in trace_records(50, seed=77):
        frame, d = trained.compress_compact(r, context=r["trace_id"].encode())
        own = trained.shape_dictionaries().get(r["trace_type"])
        assert d == (trained.dictionary if own is None else bytes.fromhex(own))
        assert trained.decompress_compact(frame, d, context=r["trace_id"].encode()) == r
    frame, d = trained.compress_compact(b"\x00\x01 raw bytes " * 10)
    assert trained.decompress_compact(frame, d) == b"\x00\x01 raw bytes " * 10
    assert trained.get_statistics()["codecs"]["compact"]["count"] >= 4051


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2000), tag=st.integers(0, 3), with_dict=st.booleans(), context=st.binary(max_size=20))
def test_any_bytes_round_trip(dictionary: bytes, data: bytes, tag: int, with_dict: bool, context: bytes) -> None:
    frame, used = encode_compact(data, tag, dictionary if with_dict else None, context=context)
    assert frame[0] >> 4 == COMPACT_VERSION
    assert len(frame) <= len(data) + 1 + 3 + 8  # never more than head, length and check over the data
    assert decode_compact(frame, used, context=context) == (tag, data)


@settings(max_examples=100, deadline=None)
@given(value=values)
def test_any_value_round_trips_through_the_engine(value: object) -> None:
    engine = CompressionEngine({"train_after": 0})
    frame, d = engine.compress_compact(value)
    assert_same(engine.decompress_compact(frame, d), value)


def test_every_single_bit_flip_is_caught(dictionary: bytes) -> None:
    for frame, d, context in _frames(dictionary):
        assert decode_compact(frame, d, context=context)[0] == TAG_VALUE
        for i in range(len(frame)):
            for bit in range(8):
                bad = bytearray(frame)
                bad[i] ^= 1 << bit
                with pytest.raises(CorruptDataError):
                    decode_compact(bytes(bad), d, context=context)


def test_truncated_frames_are_caught(dictionary: bytes) -> None:
    for frame, d, context in _frames(dictionary):
        for n in range(len(frame)):
            with pytest.raises(CorruptDataError):
                decode_compact(frame[:n], d, context=context)


def test_another_context_or_dictionary_is_caught(dictionary: bytes) -> None:
    other = train_dictionary([serialize(r) for r in trace_records(300, seed=32)], 4096)
    *_, (frame, d, context) = _frames(dictionary)
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        decode_compact(frame, d, context=context + b"x")
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        decode_compact(frame, other, context=context)
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        decode_compact(frame, None, context=context)
    unknown = bytes(16)
    with pytest.raises(CorruptDataError):
        decode_compact(frame, unknown, context=context)
    with pytest.raises(CorruptDataError, match="expected bytes"):
        decode_compact("frame", None)  # type: ignore[arg-type]
    with pytest.raises(CorruptDataError, match="unknown format 3"):
        decode_compact(bytes([0x30 | frame[0] & 0x0F]) + frame[1:], d, context=context)
    with pytest.raises(ValueError, match="tag: expected 0-3"):
        encode_compact(b"x", 4)
    with pytest.raises(ValueError, match="dictionary: expected the 16-byte digest"):
        CompressionEngine().decompress_compact(frame, b"short")


def test_shapes_get_their_own_dictionaries_and_reopen() -> None:
    store: dict[bytes, bytes] = {}
    engine = CompressionEngine({"train_after": 300, "kind_train_after": 150}, dictionaries=store)
    recs = list(trace_records(1500, seed=4))
    for r in recs:
        engine.compress_compact(r)
    shapes = engine.shape_dictionaries()
    assert engine.dictionary is not None
    assert shapes and set(shapes) <= {r["trace_type"] for r in recs}
    again = CompressionEngine(dictionaries=store)
    assert again.shape_dictionaries() == shapes and again.dictionary == engine.dictionary
    for r in recs[:20]:
        frame, d = engine.compress_compact(r, context=b"c")
        assert again.compress_compact(r, context=b"c") == (frame, d)
        assert again.decompress_compact(frame, d, context=b"c") == r
    assert engine.shape_of({"type": "x", "trace_type": "y"}) == "x"
    assert engine.shape_of({"b": 1, "a": 2}) == "keys:a,b" and engine.shape_of([1]) == ""


def test_damaged_or_dangling_shape_entries_fall_back_to_the_general_dictionary() -> None:
    from memstrata.codecs import digest

    store = {
        b"kind:" + digest(b"ghost")[:12]: bytes(16) + b"ghost",  # names a dictionary nobody has
        b"kind:" + digest(b"other")[:12]: bytes(16) + b"renamed",  # its key is not its shape's
    }
    engine = CompressionEngine({"train_after": 0}, dictionaries=store)
    assert engine.shape_dictionaries() == {}
    frame, d = engine.compress_compact({"type": "ghost", "text": "boo " * 30})
    assert d is None and engine.decompress_compact(frame, d) == {"type": "ghost", "text": "boo " * 30}


def test_shape_dictionaries_are_bounded() -> None:
    engine = CompressionEngine({"train_after": 0, "kind_train_after": 20, "max_kinds": 2})
    for i in range(200):
        engine.compress_compact({"type": f"shape-{i % 5}", "value": i, "text": "abc " * (i % 7)})
    assert len(engine.trainer.shapes()) <= 2


def test_small_records_of_an_unseen_stream_are_a_quarter_of_their_json(trained: CompressionEngine) -> None:
    """The issue's goal, checked on a stream of another seed (``bench_compact_frames.py`` times it)."""
    unseen = list(trace_records(2000, seed=2027))
    json_bytes = sum(len(msgspec.json.encode(r)) for r in unseen)
    frames = [trained.compress_compact(r, context=r["trace_id"].encode()) for r in unseen]
    ratio = sum(len(f) for f, _ in frames) / json_bytes
    assert ratio <= 0.25, ratio
    full = sum(len(trained.compress(r)) for r in unseen) / json_bytes
    assert ratio < full
    assert [trained.decompress_compact(f, d, context=r["trace_id"].encode()) for (f, d), r in zip(frames, unseen)] == unseen


def test_tags_of_the_engine() -> None:
    engine = CompressionEngine({"train_after": 0})
    frame, _ = engine.compress_compact(b"bytes")
    assert (frame[0] >> 2) & 3 == TAG_BYTES
    frame, _ = engine.compress_compact({"a": 1})
    assert (frame[0] >> 2) & 3 == TAG_VALUE
    with pytest.raises(TypeError, match="context: expected bytes"):
        engine.compress_compact({"a": 1}, context="text")  # type: ignore[arg-type]
