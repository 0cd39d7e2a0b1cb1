"""Write the golden frames of format version 1 (run once; the files are committed).

    python tests/golden/make_golden.py

Each codec encodes fixed values; ``test_frames.py`` checks the committed frames
still decode to these values (lossless) or to the committed ``.expected.npy`` /
``.expected.msgpack`` outputs (lossy), forever. Never regenerate the files of a
released version: add a new directory for a new format version instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent / "v1"


def record() -> dict[str, Any]:
    return {
        "trace_id": "perf_delta_1763700000_00ab12",
        "trace_type": "perf_delta",
        "timestamp": 1763700000.25,
        "data": {"metric_name": "accuracy", "old_value": 0.61, "new_value": 0.6152, "direction": "improvement"},
        "tags": ("golden", "v1"),
        "blob": b"\x00\x01\xfe\xff",
        "big": 2**80,
        "nothing": None,
        "ok": True,
    }


def vectors() -> np.ndarray:
    rng = np.random.default_rng(20261121)
    return rng.normal(size=(16, 12)).astype(np.float32)


def sparse() -> np.ndarray:
    x = np.zeros((9, 11), np.float64)
    x[1, 2], x[4, 0], x[8, 10], x[3, 3] = 1.5, -2.25, 1e300, -0.0
    return x


def graph() -> dict[str, Any]:
    return {
        "nodes": ["agent", "tool", "memory", "goal"],
        "edges": [
            ["agent", "tool", 0.9],
            ["agent", "memory", 0.35],
            ["agent", "goal", 0.75, {"label": "pursues"}],
            ["tool", "memory", 0.05],
            ["memory", "goal", 0.6],
        ],
    }


def dictionary_samples() -> list[bytes]:
    return [
        json.dumps({"trace_id": f"t{i}", "trace_type": "perf_delta", "metric_name": "loss", "value": i / 8}).encode()
        for i in range(200)
    ]


# name -> (codec config, value); "@dict" in a config means the golden dictionary
CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "raw-bytes": ({"id": "raw"}, b"golden raw bytes"),
    "raw-record": ({"id": "raw"}, record()),
    "lz4-record": ({"id": "lz4"}, record()),
    "lz4hc-text": ({"id": "lz4", "level": 9}, b"memstrata golden frame " * 40),
    "zstd-record": ({"id": "zstd", "level": 3}, record()),
    "zstd-array": ({"id": "zstd", "level": 19}, np.arange(100, dtype=">i8").reshape(10, 10)),
    "zstd-dict-record": ({"id": "zstd", "level": 3, "dictionary": "@dict"}, dictionary_samples()[7]),
    "zlib-record": ({"id": "zlib", "level": 9}, record()),
    "blosc2-vectors": ({"id": "blosc2", "clevel": 5, "codec": "zstd", "filter": "auto"}, vectors()),
    "blosc2-bitshuffle": ({"id": "blosc2", "clevel": 9, "codec": "lz4", "filter": "bitshuffle"}, np.arange(64, dtype=np.uint16)),
    "csr-dense": ({"id": "csr", "level": 3}, sparse()),
    "int8-vectors": ({"id": "int8", "per": "dimension"}, vectors()),
    "int8-vector-scales": ({"id": "int8", "per": "vector"}, vectors()),
    "int4-vectors": ({"id": "int4", "per": "dimension"}, vectors()),
    "binary-vectors": ({"id": "binary", "center": "mean"}, vectors()),
    "graph_prune-graph": ({"id": "graph_prune", "min_confidence": 0.3, "top_k": 2, "level": 3}, graph()),
}
LOSSY = {"int8-vectors", "int8-vector-scales", "int4-vectors", "binary-vectors", "graph_prune-graph"}


def dictionary_bytes() -> bytes:
    return (HERE / "zstd.dict").read_bytes()


def main() -> None:
    from memstrata.codecs import decode, get_codec, register_dictionary, serialize, train_dictionary

    HERE.mkdir(exist_ok=True)
    dict_path = HERE / "zstd.dict"
    if dict_path.exists():
        d = register_dictionary(dict_path.read_bytes())
    else:
        from memstrata.codecs import get_dictionary

        d = train_dictionary(dictionary_samples(), 2048)
        dict_path.write_bytes(get_dictionary(d))
    for name, (config, value) in CASES.items():
        path = HERE / f"{name}.frame"
        if path.exists():
            continue  # golden files are written once
        config = {k: (d.hex() if v == "@dict" else v) for k, v in config.items()}
        frame = get_codec(config).encode(value)
        path.write_bytes(frame)
        if name in LOSSY:
            out = decode(frame)
            if isinstance(out, np.ndarray):
                np.save(HERE / f"{name}.expected.npy", out, allow_pickle=False)
            else:
                (HERE / f"{name}.expected.msgpack").write_bytes(serialize(out))
        print(f"wrote {path.name} ({len(frame)} bytes)")


if __name__ == "__main__":
    main()
