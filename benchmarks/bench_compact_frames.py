"""Compact frames of small records vs zstd + dictionary and vs full frames, on a stream not trained on.

Every dictionary (ours and the peers') is trained on one trace stream
(:func:`memstrata.codecs._samples.trace_records`, seed 1, 4,000 records); the
timed stream is another (seed 2027: other runs, agents, ids, values). Sizes are
whole outputs over the records' compact JSON (``msgspec.json.encode``):

* ``memstrata-compact``: :meth:`CompressionEngine.compress_compact`, per-shape
  dictionaries (one per trace type) and the general one, every byte of the
  frame (head, length, payload, 8-byte check bound to the record's key);
* ``memstrata-full``: :meth:`CompressionEngine.compress`, self-contained frames;
* ``memstrata-blob``: the trace memory's blob (a compact frame of the record's JSON);
* ``zstd-dict``: python ``zstandard`` with one dictionary trained on the training
  stream's JSON (64 KiB, level 3), standard zstd frames, nothing added (no checksum);
* ``zstd-dict-per-type``: the same with one dictionary per trace type.

Goal (issue 13): compact frames <= 0.25 of compact JSON, framing included, at
<= 5 µs per record. ``extra_info`` holds ``ratio``, ``us_per_record``, and on the
memstrata cases the same-run ``ratio_vs_<peer>`` of sizes; the interleaved case
holds the same-run time ratios.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import msgspec
import numpy as np
import pytest

from memstrata import CompressionEngine
from memstrata.codecs._samples import trace_records

N_TRAIN = 4000
N_TIMED = 2000
IMPLS = ["memstrata-compact", "memstrata-full", "memstrata-blob", "zstd-dict", "zstd-dict-per-type"]
_json = msgspec.json.encode


@pytest.fixture(scope="module")
def training() -> list[dict[str, Any]]:
    return list(trace_records(N_TRAIN, seed=1))


@pytest.fixture(scope="module")
def unseen() -> list[dict[str, Any]]:
    return list(trace_records(N_TIMED, seed=2027))


def _engine(training: list[dict[str, Any]]) -> CompressionEngine:
    engine = CompressionEngine({"train_after": N_TRAIN // 2, "kind_train_after": 200})
    for r in training:
        engine.compress_compact(r)
    assert engine.dictionary is not None and engine.shape_dictionaries()
    return engine


def _zstd_dict(zstd: Any, records: list[dict[str, Any]]) -> Any:
    d = zstd.train_dictionary(64 * 1024, [_json(r) for r in records], level=3)
    d.precompute_compress(level=3)
    return d


def compressors(training: list[dict[str, Any]], peer: Any) -> dict[str, Any]:
    """Each implementation's function compressing one record into bytes."""
    engine = _engine(training)
    out: dict[str, Any] = {
        "memstrata-compact": lambda r: engine.compress_compact(r, context=r["trace_id"].encode())[0],
        "memstrata-full": engine.compress,
    }
    from memstrata.codecs import get_dictionary, train_dictionary
    from memstrata.traces._blob import ENC_JSON, BlobCodec

    blob = BlobCodec(level=3)
    blob.add_dictionary(1, get_dictionary(train_dictionary([_json(r) for r in training], 64 * 1024)))
    out["memstrata-blob"] = lambda r: blob.encode(_json(r), ENC_JSON, 1)[0]
    zstd = peer("zstandard")
    one = zstd.ZstdCompressor(level=3, dict_data=_zstd_dict(zstd, training))
    out["zstd-dict"] = lambda r: one.compress(_json(r))
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in training:
        by_type[r["trace_type"]].append(r)
    per = {t: zstd.ZstdCompressor(level=3, dict_data=_zstd_dict(zstd, recs)) for t, recs in by_type.items() if len(recs) >= 50}
    out["zstd-dict-per-type"] = lambda r: (per.get(r["trace_type"]) or one).compress(_json(r))
    return out


_cache: dict[str, Any] = {}


def _compressors(training: list[dict[str, Any]], peer: Any) -> dict[str, Any]:
    if "fns" not in _cache:
        _cache["fns"] = compressors(training, peer)
    return _cache["fns"]  # type: ignore[no-any-return]


def _sizes(training: list[dict[str, Any]], unseen: list[dict[str, Any]], peer: Any) -> dict[str, float]:
    """Output bytes over compact JSON bytes of the unseen stream, per implementation (deterministic)."""
    if "sizes" not in _cache:
        json_bytes = sum(len(_json(r)) for r in unseen)
        fns = _compressors(training, peer)
        _cache["sizes"] = {name: sum(len(fn(r)) for r in unseen) / json_bytes for name, fn in fns.items()}
    return _cache["sizes"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.benchmark(group="compact-frames-unseen-traces")
def test_compress_unseen_trace_stream(benchmark, impl, training, unseen, peer) -> None:  # type: ignore[no-untyped-def]
    sizes = _sizes(training, unseen, peer)
    fn = _compressors(training, peer)[impl]

    def run() -> int:
        return sum(len(fn(r)) for r in unseen)

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ratio"] = sizes[impl]
    benchmark.extra_info["json_bytes_per_record"] = sum(len(_json(r)) for r in unseen) / len(unseen)
    if impl.startswith("memstrata"):
        for other in IMPLS:
            if other != impl:
                benchmark.extra_info[f"ratio_vs_{other}"] = sizes[impl] / sizes[other]
    if benchmark.stats:
        benchmark.extra_info["us_per_record"] = benchmark.stats.stats.median * 1e6 / len(unseen)


@pytest.mark.parametrize("impl", ["memstrata-compact", "zstd-dict"])
@pytest.mark.benchmark(group="compact-frames-unseen-traces-decode")
def test_decompress_unseen_trace_stream(benchmark, impl, training, unseen, peer) -> None:  # type: ignore[no-untyped-def]
    if impl == "memstrata-compact":
        engine = _engine(training)
        items = [(engine.compress_compact(r, context=r["trace_id"].encode()), r["trace_id"].encode()) for r in unseen]

        def run() -> int:
            return len([engine.decompress_compact(f, d, context=c) for (f, d), c in items])
    else:
        zstd = peer("zstandard")
        raw = _zstd_dict(zstd, training)
        c = zstd.ZstdCompressor(level=3, dict_data=raw)
        frames = [c.compress(_json(r)) for r in unseen]
        dctx = zstd.ZstdDecompressor(dict_data=raw)

        def run() -> int:
            return len([msgspec.json.decode(dctx.decompress(f)) for f in frames])

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["us_per_record"] = benchmark.stats.stats.median * 1e6 / len(unseen)


@pytest.mark.benchmark(group="compact-frames-unseen-traces-interleaved")
def test_compress_time_interleaved(benchmark, training, unseen, peer) -> None:  # type: ignore[no-untyped-def]
    """Per-record compress time of compact frames and the peers, timed round-robin (same-run ratios)."""
    sizes = _sizes(training, unseen, peer)
    fns = _compressors(training, peer)
    names = ["memstrata-compact", "zstd-dict", "zstd-dict-per-type", "memstrata-full"]
    times: dict[str, list[float]] = {k: [] for k in names}

    def run() -> None:
        for name in names:
            fn = fns[name]
            t0 = time.perf_counter()
            for r in unseen:
                fn(r)
            times[name].append((time.perf_counter() - t0) * 1e6 / len(unseen))

    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    ours = times["memstrata-compact"]
    benchmark.extra_info["ratio"] = sizes["memstrata-compact"]
    for name in names:
        benchmark.extra_info[f"us_per_record_{name}"] = float(np.median(times[name]))
        if name != "memstrata-compact":
            benchmark.extra_info[f"time_vs_{name}"] = float(np.median([a / b for a, b in zip(ours, times[name])]))
            benchmark.extra_info[f"size_vs_{name}"] = sizes["memstrata-compact"] / sizes[name]
