"""Codec specifics: the registry, parameter errors, arrays of every dtype, chunking, lossy bounds, graphs, CSR.

The contract every codec keeps (round trips, config round trips, golden frames,
corruption) is ``tests/conformance/test_codecs.py``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _value_strategies import array_dtypes
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from memstrata.codecs import (
    Codec,
    _bytes,
    available_codecs,
    decode,
    get_codec,
    prune_graph,
    read_header,
    register_codec,
    train_dictionary,
)
from memstrata.codecs._samples import trace_records
from memstrata.errors import UnknownCodecError

# one dictionary for the whole module, trained on realistic records
_DICT = train_dictionary([json.dumps(r).encode() for r in trace_records(400, seed=3)], 8192)

LOSSLESS_CONFIGS = [
    {"id": "raw"},
    {"id": "lz4"},
    {"id": "lz4", "level": 9},
    {"id": "zstd"},
    {"id": "zstd", "level": 19},
    {"id": "zstd", "level": -3},
    {"id": "zstd", "level": 3, "dictionary": _DICT.hex()},
    {"id": "zlib"},
    {"id": "zlib", "level": 0},
    {"id": "blosc2"},
    {"id": "blosc2", "clevel": 9, "codec": "lz4", "filter": "bitshuffle"},
    {"id": "blosc2", "codec": "blosclz", "filter": "none"},
]
def _ids(configs: list[dict]) -> list[str]:
    return ["-".join(str(v)[:8] for v in c.values()) for c in configs]


# ------------------------------------------------------------ the registry --


def test_every_builtin_codec_is_registered_with_a_unique_frame_id() -> None:
    names = available_codecs()
    assert set(names) == {"raw", "lz4", "zstd", "zlib", "blosc2", "csr", "graph_prune", "int8", "int4", "binary"}
    ids = [type(get_codec(n)).frame_id for n in names]
    assert len(set(ids)) == len(ids)


def test_unknown_codec_names_the_known_ones() -> None:
    with pytest.raises(UnknownCodecError, match=r"unknown codec 'snappy'; known codecs: binary, blosc2"):
        get_codec("snappy")
    with pytest.raises(ValueError, match="unknown codec"):  # UnknownCodecError is a ValueError
        get_codec({"id": "snappy", "level": 1})
    with pytest.raises(TypeError, match="config: expected a codec name"):
        get_codec(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"id": "zstd", "level": 23}, r"level: expected an int in \[-7, 22\], got 23"),
        ({"id": "zstd", "level": "3"}, r"level: expected an int in \[-7, 22\], got str"),
        ({"id": "lz4", "level": 13}, r"level: expected an int in \[0, 12\], got 13"),
        ({"id": "zlib", "level": -1}, r"level: expected an int in \[0, 9\], got -1"),
        ({"id": "blosc2", "codec": "snappy"}, r"codec: expected one of"),
        ({"id": "blosc2", "filter": "delta"}, r"filter: expected one of"),
        ({"id": "int8", "per": "row"}, r"per: expected 'dimension' or 'vector', got 'row'"),
        ({"id": "binary", "center": "median"}, r"center: expected 'zero' or 'mean'"),
        ({"id": "graph_prune", "top_k": 0}, r"top_k: expected an int >= 1 or None, got 0"),
        ({"id": "zstd", "dictionary": "00" * 16}, r"no zstd dictionary with digest 0000"),
        ({"id": "zstd", "colour": 1}, r"config: bad parameters for codec 'zstd'"),
    ],
)
def test_bad_parameters_are_rejected_with_a_clear_message(config: dict, message: str) -> None:
    with pytest.raises((TypeError, ValueError, KeyError), match=message):
        get_codec(config)


def test_register_codec_refuses_a_clashing_frame_id() -> None:
    class Clash(Codec):
        codec_id = "clash"
        frame_id = 2  # zstd's

        def _encode(self, buf, meta):  # type: ignore[no-untyped-def]
            return bytes(buf), None, None

        @classmethod
        def _decode(cls, payload, header, dictionary):  # type: ignore[no-untyped-def]
            return payload

    with pytest.raises(ValueError, match="clashes with registered ZstdCodec"):
        register_codec(Clash)
    assert "clash" not in available_codecs()


# ------------------------------------------------------ lossless round trips --


@pytest.mark.parametrize("config", LOSSLESS_CONFIGS, ids=_ids(LOSSLESS_CONFIGS))
@given(
    arr=hnp.arrays(array_dtypes, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)),
    step=st.integers(1, 2),
)
def test_lossless_codecs_round_trip_arrays(config: dict, arr: np.ndarray, step: int) -> None:
    if arr.ndim:
        arr = arr[::step]  # non-contiguous when step is 2
    out = decode(get_codec(config).encode(arr))
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert out.tobytes() == np.ascontiguousarray(arr).tobytes()  # bit-exact, NaN payloads and -0.0 included
    assert out.flags.writeable and out.flags.c_contiguous


@pytest.mark.parametrize("config", [{"id": "lz4"}, {"id": "blosc2"}], ids=["lz4", "blosc2"])
def test_chunked_payloads_round_trip(config: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    # inputs above CHUNK_BYTES are split; shrink it to exercise that path cheaply
    monkeypatch.setattr(_bytes, "CHUNK_BYTES", 1000)
    arr = np.random.default_rng(1).integers(0, 50, size=5123).astype(np.int32)
    frame = get_codec(config).encode(arr)
    assert read_header(frame).meta["chunk"] == 1000
    np.testing.assert_array_equal(decode(frame), arr)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["raw", "lz4", "zstd", "zlib", "blosc2"])
def test_huge_array_round_trips(name: str) -> None:
    arr = np.arange(24 * 1024 * 1024 // 4, dtype=np.float32).reshape(-1, 384)  # 24 MiB
    out = decode(get_codec(name).encode(arr))
    assert out.shape == arr.shape and np.array_equal(out, arr)


def test_zstd_dictionary_shrinks_small_records() -> None:
    rec = json.dumps(next(trace_records(1, seed=99))).encode()
    plain = get_codec("zstd").encode(rec)
    with_dict = get_codec({"id": "zstd", "dictionary": _DICT.hex()}).encode(rec)
    assert decode(with_dict) == rec
    assert len(with_dict) < 0.6 * len(plain)
    assert read_header(with_dict).dictionary_ref == _DICT[:4]


# ----------------------------------------------------------- lossy bounds --

float_vectors = hnp.arrays(
    st.sampled_from([np.float32, np.float64]),
    st.tuples(st.integers(1, 20), st.integers(1, 40)),
    elements=st.floats(-1e3, 1e3, allow_nan=False, width=32),
)


@pytest.mark.parametrize("name", ["int8", "int4"])
@pytest.mark.parametrize("per", ["dimension", "vector"])
@given(x=float_vectors)
def test_scalar_quantization_is_within_half_a_step(name: str, per: str, x: np.ndarray) -> None:
    levels = 255 if name == "int8" else 15
    y = decode(get_codec({"id": name, "per": per}).encode(x))
    assert y.dtype == x.dtype and y.shape == x.shape
    x64 = x.astype(np.float64)
    axis = 0 if per == "dimension" else 1
    step = (x64.max(axis=axis, keepdims=True) - x64.min(axis=axis, keepdims=True)) / levels
    # half a step, plus float32 rounding of the parameters and the result
    tol = step / 2 + 1e-5 * np.maximum(np.abs(x64).max(axis=axis, keepdims=True), 1.0)
    assert (np.abs(y.astype(np.float64) - x64) <= tol).all()


@pytest.mark.parametrize("center", ["zero", "mean"])
@given(x=float_vectors)
def test_binary_keeps_the_side_of_the_center(center: str, x: np.ndarray) -> None:
    y = decode(get_codec({"id": "binary", "center": center}).encode(x))
    assert y.dtype == x.dtype and y.shape == x.shape
    c = x.astype(np.float32).mean(axis=0, dtype=np.float64).astype(np.float32) if center == "mean" else np.float32(0)
    np.testing.assert_array_equal(y.astype(np.float32) > c, x.astype(np.float32) > c)


def test_lossy_vector_codecs_keep_1d_shape_and_reject_bad_input() -> None:
    x = np.linspace(-1, 1, 17, dtype=np.float32)
    for name in ("int8", "int4", "binary"):
        assert decode(get_codec(name).encode(x)).shape == (17,)
        with pytest.raises(TypeError, match="data: expected a float32 or float64 array"):
            get_codec(name).encode(np.arange(4))
        with pytest.raises(ValueError, match=r"data: expected shape \(n, d\) or \(d,\)"):
            get_codec(name).encode(np.zeros((2, 2, 2), np.float32))
        with pytest.raises(ValueError, match="NaN|nan|finite"):
            get_codec(name).encode(np.array([[np.nan, 1.0]], np.float32))
        empty = decode(get_codec(name).encode(np.zeros((0, 5), np.float32)))
        assert empty.shape == (0, 5)


def test_int8_on_real_embeddings_keeps_recall(shared_data) -> None:  # type: ignore[no-untyped-def]
    emb = np.load(shared_data / "dev" / "embeddings.npy")[:2000]
    y = decode(get_codec("int8").encode(emb))
    q = emb[:100]
    exact = np.argsort(-(q @ emb.T), axis=1)[:, 1:11]
    approx = np.argsort(-(q @ y.T), axis=1)[:, 1:11]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert recall >= 0.9


# ------------------------------------------------------------------ graphs --

node_ids = st.sampled_from(["a", "b", "c", "d", "e"])
graphs = st.builds(
    lambda edges: {"nodes": ["a", "b", "c", "d", "e"], "edges": edges, "name": "kg"},
    st.lists(st.tuples(node_ids, node_ids, st.floats(0, 1)).map(list), max_size=30),
)


def _reference_prune(graph: dict, min_confidence: float | None, top_k: int | None) -> list:
    """Obviously right: filter, then for each edge count stronger (or earlier equal) edges of its source."""
    edges = [e for e in graph["edges"] if min_confidence is None or e[2] >= min_confidence]
    if top_k is None:
        return edges
    kept = []
    for i, e in enumerate(edges):
        rank = sum(1 for j, f in enumerate(edges) if f[0] == e[0] and (f[2] > e[2] or (f[2] == e[2] and j < i)))
        if rank < top_k:
            kept.append(e)
    return kept


@pytest.mark.parametrize(("min_confidence", "top_k"), [(0.5, None), (None, 2), (0.3, 1), (None, None)])
@given(graph=graphs)
def test_graph_prune_keeps_exactly_the_reference_edges(graph: dict, min_confidence, top_k) -> None:  # type: ignore[no-untyped-def]
    codec = get_codec({"id": "graph_prune", "min_confidence": min_confidence, "top_k": top_k})
    out = decode(codec.encode(graph))
    assert out["edges"] == _reference_prune(graph, min_confidence, top_k)
    assert out["nodes"] == graph["nodes"] and out["name"] == "kg"
    assert prune_graph(graph, min_confidence, top_k) == out


def test_graph_prune_rejects_malformed_graphs() -> None:
    codec = get_codec("graph_prune")
    with pytest.raises(TypeError, match="graph: expected a dict with an 'edges' list"):
        codec.encode([1, 2])
    with pytest.raises(ValueError, match=r"graph: edge 0 must be a list or tuple"):
        codec.encode({"edges": [["a", "b"]]})
    with pytest.raises(ValueError, match=r"graph: edge 1 has confidence 'high'"):
        codec.encode({"edges": [["a", "b", 1.0], ["a", "c", "high"]]})


# -------------------------------------------------------------------- csr --

sparse_arrays = hnp.arrays(
    st.sampled_from([np.float32, np.float64, np.int64, np.uint8, np.bool_, np.complex64]),
    st.tuples(st.integers(0, 12), st.integers(0, 12)),
).map(lambda a: np.where(np.random.default_rng(a.size).random(a.shape) < 0.7, np.zeros_like(a), a))


@pytest.mark.parametrize("level", [0, 3])
@given(x=sparse_arrays)
def test_csr_round_trips_dense_arrays_bit_exactly(level: int, x: np.ndarray) -> None:
    y = decode(get_codec({"id": "csr", "level": level}).encode(x))
    assert y.dtype == x.dtype and y.shape == x.shape
    assert y.tobytes() == x.tobytes()


def test_csr_keeps_negative_zero_and_nan() -> None:
    x = np.zeros((3, 4), np.float64)
    x[0, 1] = -0.0
    x[2, 3] = np.nan
    y = decode(get_codec("csr").encode(x))
    assert y.tobytes() == x.tobytes()


def test_csr_round_trips_scipy_matrices() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    m = sparse.random(50, 80, density=0.05, format="csr", dtype=np.float32, random_state=0)
    out = decode(get_codec("csr").encode(m))
    assert out.format == "csr" and out.shape == m.shape
    np.testing.assert_array_equal(out.toarray(), m.toarray())
