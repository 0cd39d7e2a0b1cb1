"""CompressionEngine: codec choice by kind, size and loss policy; dictionaries; statistics."""

from __future__ import annotations

import numpy as np
import pytest
from _value_strategies import assert_same, values
from hypothesis import given
from hypothesis import strategies as st

from memstrata import CompressionEngine, CorruptDataError
from memstrata.codecs import CompressionPolicy, RawCodec, decode, digest, read_header
from memstrata.codecs._samples import TRACE_TYPES, trace_records

CODEC_IDS = {"raw": 0, "lz4": 1, "zstd": 2, "zlib": 3, "blosc2": 4, "csr": 5, "graph_prune": 6, "int8": 7, "int4": 8, "binary": 9}


def _codec_of(frame: bytes) -> str:
    fid = read_header(frame).codec_id
    return next(name for name, i in CODEC_IDS.items() if i == fid)


@given(value=values)
def test_engine_round_trips_any_value_losslessly(value: object) -> None:
    engine = CompressionEngine({"train_after": 0})
    assert_same(engine.decompress(engine.compress(value)), value)


def test_choice_by_kind_size_and_loss() -> None:
    engine = CompressionEngine({"train_after": 0})
    vecs = np.random.default_rng(0).normal(size=(50, 16)).astype(np.float32)
    assert _codec_of(engine.compress({"a": 1})) == "raw"  # tiny
    assert _codec_of(engine.compress({"text": "x" * 200})) == "zstd"
    assert _codec_of(engine.compress(b"tiny")) == "raw"
    assert _codec_of(engine.compress(b"y" * 500)) == "zstd"
    assert _codec_of(engine.compress(vecs)) == "blosc2"
    assert _codec_of(engine.compress(vecs, allow_loss=True)) == "int8"
    assert _codec_of(engine.compress(np.arange(100), allow_loss=True)) == "blosc2"  # ints stay lossless
    assert _codec_of(engine.compress(np.zeros((20, 20)), kind="sparse")) == "csr"
    graph = {"nodes": [1, 2], "edges": [[1, 2, 0.9], [2, 1, 0.01]] * 10}
    assert _codec_of(engine.compress(graph, kind="graph", allow_loss=True)) == "graph_prune"
    assert _codec_of(engine.compress(graph, kind="graph")) == "zstd"  # no loss allowed: stored whole
    assert engine.decompress(engine.compress(graph, kind="graph")) == graph
    assert _codec_of(engine.compress({"a": 1}, codec="lz4")) == "lz4"  # per-call override


@given(data=st.one_of(st.binary(max_size=2000), st.integers(1, 300).map(lambda n: b"ab" * n)))
def test_bytes_frames_round_trip_and_are_never_longer_than_a_raw_frame(data: bytes) -> None:
    frame = CompressionEngine().compress(data)
    assert decode(frame) == data and type(decode(frame)) is bytes
    assert decode(frame, expected_digest=digest(data)) == data
    assert len(frame) <= len(RawCodec().encode(data))  # same header layout: only a shorter payload is kept
    assert read_header(frame).implicit_digest == (len(data) < 1024)


@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.integers(1, 150).map(lambda n: b"ab" * n),
        st.integers(0, 250).map(lambda n: np.random.default_rng(n).bytes(n)),
    )
)
def test_compress_bytes_makes_the_general_paths_frame_and_statistics(data: bytes) -> None:
    lean, general = CompressionEngine(), CompressionEngine()
    frame = lean.compress_bytes(data)
    assert frame == general.compress(data)
    assert decode(frame) == data
    a, b = lean.get_statistics(), general.get_statistics()
    assert a["codecs"] == b["codecs"] and a["count"] == b["count"] == 1 and a["compress_seconds"] > 0


def test_compress_bytes_hands_other_values_to_compress() -> None:
    engine = CompressionEngine()
    assert engine.compress_bytes(bytearray(b"q" * 100)) == engine.compress(b"q" * 100)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value"):
        engine.compress_bytes(12)  # type: ignore[arg-type]


def test_small_bytes_take_lz4_and_raw_when_nothing_shrinks_them() -> None:
    engine = CompressionEngine()
    noise = np.random.default_rng(0).bytes(5000)
    assert _codec_of(engine.compress(b"ab" * 50)) == "lz4"  # 100 bytes: up to SMALL_BUFFER_BYTES
    assert _codec_of(engine.compress(b"ab" * 96)) == "lz4"  # 192: the last size lz4 takes
    assert _codec_of(engine.compress(b"ab" * 97)) == "zstd"
    assert _codec_of(engine.compress(noise[:150])) == "raw"  # lz4 would lengthen it
    assert _codec_of(engine.compress(noise)) == "raw"  # so would zstd
    assert _codec_of(engine.compress(bytearray(b"q" * 100))) == "lz4"
    assert decode(engine.compress(memoryview(b"w" * 120))) == b"w" * 120
    stats = engine.get_statistics()["codecs"]
    assert stats["lz4"]["count"] == 4 and stats["raw"]["count"] == 2 and stats["zstd"]["count"] == 1


def test_lossy_override_needs_allow_loss() -> None:
    engine = CompressionEngine()
    with pytest.raises(ValueError, match="codec: 'int4' is lossy; pass allow_loss=True"):
        engine.compress(np.zeros((2, 2), np.float32), codec="int4")
    out = engine.decompress(engine.compress(np.ones((2, 2), np.float32), codec="int4", allow_loss=True))
    assert out.shape == (2, 2)


def test_bad_kind_and_policy_are_rejected() -> None:
    engine = CompressionEngine()
    with pytest.raises(ValueError, match="kind: expected one of"):
        engine.compress(b"x", kind="video")
    with pytest.raises(TypeError, match="kind='array' needs a numpy array"):
        engine.compress([1, 2], kind="array")
    with pytest.raises(ValueError, match=r"policy: unknown keys \['zstd_lvl'\]"):
        CompressionEngine({"zstd_lvl": 3})
    with pytest.raises(TypeError, match="policy: expected a CompressionPolicy"):
        CompressionEngine("fast")  # type: ignore[arg-type]
    assert CompressionPolicy.from_dict(CompressionPolicy().to_dict()) == CompressionPolicy()


def test_dictionary_is_trained_after_enough_records_and_shrinks_them() -> None:
    recs = list(trace_records(700, seed=11))
    store: dict[bytes, bytes] = {}
    engine = CompressionEngine({"train_after": 300, "dictionary_bytes": 16 * 1024}, dictionaries=store)
    before = [engine.compress(r) for r in recs[:299]]
    assert engine.dictionary is None and engine.get_statistics()["samples_collected"] == 299
    engine.compress(recs[299])
    assert engine.dictionary is not None
    assert store[b"active"] == engine.dictionary and engine.dictionary in store
    after = [engine.compress(r) for r in recs[300:]]
    assert all(read_header(f).dictionary_ref == engine.dictionary[:4] for f in after if _codec_of(f) == "zstd")
    mean_before = np.mean([len(f) for f in before])
    mean_after = np.mean([len(f) for f in after])
    assert mean_after < 0.6 * mean_before
    # every frame, before and after, still decodes alone
    assert [decode(f) for f in before + after] == recs[:299] + recs[300:]
    # a new engine on the same dictionary store uses the same dictionary
    again = CompressionEngine(dictionaries=store)
    assert again.dictionary == engine.dictionary
    assert again.compress(recs[5]) == engine.compress(recs[5])


def test_explicit_training_and_uniform_samples() -> None:
    recs = list(trace_records(400, seed=12))
    engine = CompressionEngine({"train_after": 0})
    d = engine.train(recs)
    assert engine.dictionary == d
    assert engine.decompress(engine.compress(recs[0])) == recs[0]
    # a handful of identical samples: whatever zstd makes of them, frames still decode
    flat = CompressionEngine({"train_after": 10, "tiny_bytes": 0})
    frames = [flat.compress([0] * 10) for _ in range(12)]
    assert [flat.decompress(f) for f in frames] == [[0] * 10] * 12
    with pytest.raises(ValueError, match="samples: expected at least 8 samples"):
        CompressionEngine().train([b"a", b"b"])


def test_statistics_count_bytes_codecs_time_and_errors() -> None:
    engine = CompressionEngine({"train_after": 0})
    frames = [engine.compress({"text": "abc " * 100}) for _ in range(3)]
    engine.compress(b"\x00" * 10)
    for f in frames:
        engine.decompress(f)
    with pytest.raises(CorruptDataError):
        engine.decompress(b"garbage!" * 4)
    with pytest.raises(TypeError):
        engine.compress({1, 2})
    s = engine.get_statistics()
    assert s["count"] == 4 and s["decompress_count"] == 3 and s["errors"] == 2
    assert s["codecs"]["zstd"]["count"] == 3 and s["codecs"]["raw"]["count"] == 1
    assert s["bytes_out"] == sum(map(len, frames)) + s["codecs"]["raw"]["bytes_out"]
    assert s["bytes_in"] == s["codecs"]["zstd"]["bytes_in"] + 10
    assert 0 < s["ratio"] < 1
    assert s["compress_seconds"] > 0 and s["decompress_seconds"] > 0


@pytest.mark.parametrize("trace_type", TRACE_TYPES)
def test_trace_records_of_every_type_round_trip(trace_type: str) -> None:
    engine = CompressionEngine({"train_after": 50})
    recs = list(trace_records(120, seed=1, trace_type=trace_type))
    frames = [engine.compress(r) for r in recs]
    assert [engine.decompress(f) for f in frames] == recs
    assert {r["trace_type"] for r in recs} == {trace_type}


def test_trace_generator_is_seeded_and_validates() -> None:
    assert list(trace_records(20, seed=3)) == list(trace_records(20, seed=3))
    assert list(trace_records(20, seed=3)) != list(trace_records(20, seed=4))
    with pytest.raises(ValueError, match="trace_type: expected one of"):
        list(trace_records(1, trace_type="nope"))


def test_engine_is_safe_across_threads() -> None:
    import threading

    recs = list(trace_records(800, seed=21))
    engine = CompressionEngine({"train_after": 200})
    errors: list[BaseException] = []

    def worker(part: list) -> None:
        try:
            for r in part:
                assert engine.decompress(engine.compress(r)) == r
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(recs[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert engine.dictionary is not None


def test_compress_serialized_is_the_public_seam_for_pre_serialized_records() -> None:
    from memstrata.codecs import digest, serialize

    engine = CompressionEngine({"train_after": 0})
    value = {"text": "abc " * 50, "n": 3}
    data = serialize(value)
    frame = engine.compress_serialized(data, digest(data))
    assert engine.decompress(frame, expected_digest=digest(data)) == value
    assert engine.decompress(engine.compress_serialized(data, None)) == value
    damaged = bytearray(frame)
    damaged[len(damaged) // 2] ^= 0x10
    with pytest.raises(CorruptDataError):
        engine.decompress(bytes(damaged))
