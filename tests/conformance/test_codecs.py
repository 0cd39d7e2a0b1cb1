"""The codec contract, for every registered codec; and the compact frames' golden files.

A new codec joins by adding a ``Test<Name>`` class here (its configurations and
sample values), a golden frame in ``tests/golden/make_golden.py``, and its
specifics (quantization bounds, chunking, pruning rules) in its own test file.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
from conformance.codecs import GOLDEN, MAKE_GOLDEN, ByteCodecContract, CodecContract, load_golden_script

from memstrata.codecs import available_codecs, decode_compact, encode_compact, get_codec, prune_graph, train_dictionary
from memstrata.codecs._samples import trace_records

_DICT = train_dictionary([json.dumps(r).encode() for r in trace_records(400, seed=3)], 8192)
_RECORD = MAKE_GOLDEN.record()
_BYTE_SAMPLES: list[Any] = [
    b"",
    b"golden raw bytes" * 9,
    json.dumps(next(trace_records(1, seed=99))).encode(),
    _RECORD,
    np.arange(30, dtype=">i4").reshape(5, 6)[:, ::2],
]
_VECTORS = np.random.default_rng(3).normal(size=(6, 10)).astype(np.float32)
_VECTOR_SAMPLES: list[Any] = [_VECTORS, _VECTORS[0], _VECTORS.astype(np.float64)]


def _byte_contract(name: str, codec_id: str, configs: list[dict[str, Any]], deterministic: bool = True) -> type:
    """The contract class of a lossless codec of bytes and values, over the shared samples."""
    body = {"codec_id": codec_id, "configs": configs, "samples": _BYTE_SAMPLES, "deterministic": deterministic}
    return type(name, (ByteCodecContract,), body)


TestRaw = _byte_contract("TestRaw", "raw", [{"id": "raw"}])
TestLZ4 = _byte_contract("TestLZ4", "lz4", [{"id": "lz4"}, {"id": "lz4", "level": 9}])
TestZstd = _byte_contract("TestZstd", "zstd", [
    {"id": "zstd"}, {"id": "zstd", "level": 19}, {"id": "zstd", "level": -3},
    {"id": "zstd", "level": 3, "dictionary": _DICT.hex()},
])
TestZlib = _byte_contract("TestZlib", "zlib", [{"id": "zlib"}, {"id": "zlib", "level": 0}])
# blosc2 may pick other block sizes across its versions: decoded forever, not rewritten byte for byte
TestBlosc2 = _byte_contract("TestBlosc2", "blosc2", [
    {"id": "blosc2"}, {"id": "blosc2", "clevel": 9, "codec": "lz4", "filter": "bitshuffle"},
    {"id": "blosc2", "codec": "blosclz", "filter": "none"},
], deterministic=False)


class TestCSR(CodecContract):
    codec_id = "csr"
    configs: ClassVar[list[Any]] = [{"id": "csr"}, {"id": "csr", "level": 0}]
    samples: ClassVar[list[Any]] = [np.where(_VECTORS > 0.8, _VECTORS, 0), np.zeros((3, 4)), np.eye(5, dtype=np.int64)]


class _VectorContract(CodecContract):
    samples: ClassVar[list[Any]] = _VECTOR_SAMPLES

    def check_lossy(self, value: Any, out: Any, config: dict[str, Any]) -> None:
        assert out.shape == value.shape and out.dtype == value.dtype
        spread = float(np.ptp(value)) or 1.0
        assert np.abs(out.astype(np.float64) - value).max() <= spread  # a loose bound; the exact ones are in test_codecs.py


class TestInt8(_VectorContract):
    codec_id = "int8"
    configs: ClassVar[list[Any]] = [{"id": "int8"}, {"id": "int8", "per": "vector"}]


class TestInt4(_VectorContract):
    codec_id = "int4"
    configs: ClassVar[list[Any]] = [{"id": "int4"}, {"id": "int4", "per": "vector"}]


class TestBinary(_VectorContract):
    codec_id = "binary"
    configs: ClassVar[list[Any]] = [{"id": "binary"}, {"id": "binary", "center": "mean"}]

    def check_lossy(self, value: Any, out: Any, config: dict[str, Any]) -> None:
        assert out.shape == value.shape and out.dtype == value.dtype
        if config.get("center", "zero") == "zero":
            np.testing.assert_array_equal(out > 0, value > 0)


class TestGraphPrune(CodecContract):
    codec_id = "graph_prune"
    configs: ClassVar[list[Any]] = [{"id": "graph_prune", "min_confidence": 0.5}, {"id": "graph_prune", "top_k": 2}]
    samples: ClassVar[list[Any]] = [MAKE_GOLDEN.graph(), {"nodes": [], "edges": []}]

    def check_lossy(self, value: Any, out: Any, config: dict[str, Any]) -> None:
        codec = get_codec(config)
        assert out == prune_graph(value, codec.get_config().get("min_confidence"), codec.get_config().get("top_k"))


CONTRACTS = [TestRaw, TestLZ4, TestZstd, TestZlib, TestBlosc2, TestCSR, TestInt8, TestInt4, TestBinary, TestGraphPrune]


def test_every_registered_codec_keeps_the_contract() -> None:
    assert {c.codec_id for c in CONTRACTS} == set(available_codecs())


# ------------------------------------------------------------ compact frames --


def test_golden_compact_frames_still_decode_and_are_written_the_same() -> None:
    golden = load_golden_script("make_compact_golden")
    d = golden.dictionary()
    for name, (tag, with_dict, context, value) in golden.CASES.items():
        frame = (GOLDEN / "compact-v2" / f"{name}.cframe").read_bytes()
        data = golden.original(tag, value)
        assert frame[0] >> 4 == 2
        assert decode_compact(frame, d if with_dict else None, context=context) == (tag, data)
        again, used = encode_compact(data, tag, d if with_dict else None, context=context, threshold=1)
        assert again == frame and (used is not None) == with_dict
