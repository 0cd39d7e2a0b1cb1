"""CompressionEngine vs plain lz4 / zstd / zlib / blosc2, on the same data in the same run.

Data: (a) ``texts.jsonl`` rows of ``../shared/data/dev`` as JSON records, one by
one; (b) realistic agent trace records (``memstrata.codecs._samples``); (c) the
float32 embeddings. Ratios are output bytes (memstrata: whole frames, header and
checksum included) over the records' JSON size; ``extra_info`` holds ``ratio``,
``mb_per_s`` (JSON bytes per second) and ``us_per_record``.

Goals: trace records ≤ 0.20 of their JSON size at ≤ 5 µs per record compress;
checksum verification ≤ 5 % of decode time on records ≥ 1 KiB.

Peers compress the JSON bytes of each record (the encoding is inside the timed
call, as the engine's serialization is); ``zstd-dict`` is zstd with a dictionary
trained on the same samples the engine trains on.
"""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import msgspec
import numpy as np
import pytest

from memstrata import CompressionEngine
from memstrata.codecs import _registry
from memstrata.codecs._hash import digest
from memstrata.codecs._samples import trace_records

N_TRAIN = 2000  # records the engine (and the zstd-dict peer) see before timing
N_TIMED = 2000
PEERS = ["memstrata", "zstd-dict", "zstd", "lz4", "zlib", "blosc2"]
_json = msgspec.json.encode


def _texts(shared_data: Any) -> list[dict[str, Any]]:
    path = shared_data / "dev" / "texts.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    with path.open() as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def text_records(shared_data: Any) -> list[dict[str, Any]]:
    return _texts(shared_data)[: N_TRAIN + N_TIMED]


@pytest.fixture(scope="module")
def trace_stream() -> list[dict[str, Any]]:
    return list(trace_records(N_TRAIN + N_TIMED, seed=2026))


def _trained_engine(records: list[dict[str, Any]]) -> CompressionEngine:
    engine = CompressionEngine({"train_after": N_TRAIN})
    for r in records[:N_TRAIN]:
        engine.compress(r)
    assert engine.dictionary is not None
    return engine


def _compressor(impl: str, records: list[dict[str, Any]], peer: Any) -> Any:
    """A function compressing one record (a dict) the way ``impl`` does."""
    if impl == "memstrata":
        return _trained_engine(records).compress
    if impl in ("zstd", "zstd-dict"):
        zstd = peer("zstandard")
        if impl == "zstd":
            c = zstd.ZstdCompressor(level=3)
        else:
            d = zstd.train_dictionary(64 * 1024, [_json(r) for r in records[:N_TRAIN]])
            c = zstd.ZstdCompressor(level=3, dict_data=d)
        return lambda r: c.compress(_json(r))
    if impl == "lz4":
        block = peer("lz4.block")
        return lambda r: block.compress(_json(r))
    if impl == "zlib":
        return lambda r: zlib.compress(_json(r), 6)
    if impl == "blosc2":
        blosc2 = peer("blosc2")
        return lambda r: blosc2.compress2(_json(r), typesize=1, clevel=5, codec=blosc2.Codec.ZSTD)
    raise AssertionError(impl)


def _bench_records(benchmark: Any, impl: str, records: list[dict[str, Any]], peer: Any) -> None:
    fn = _compressor(impl, records, peer)
    timed = records[N_TRAIN:]
    json_bytes = sum(len(_json(r)) for r in timed)

    def run() -> int:
        return sum(len(fn(r)) for r in timed)

    out_bytes = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ratio"] = out_bytes / json_bytes
    benchmark.extra_info["json_bytes_per_record"] = json_bytes / len(timed)
    if benchmark.stats:
        median = benchmark.stats.stats.median
        benchmark.extra_info["us_per_record"] = median * 1e6 / len(timed)
        benchmark.extra_info["mb_per_s"] = json_bytes / median / 1e6


@pytest.mark.parametrize("impl", PEERS)
@pytest.mark.benchmark(group="records-compress-traces")
def test_compress_trace_records(benchmark, impl, trace_stream, peer) -> None:  # type: ignore[no-untyped-def]
    _bench_records(benchmark, impl, trace_stream, peer)


@pytest.mark.parametrize("impl", PEERS)
@pytest.mark.benchmark(group="records-compress-texts")
def test_compress_text_records(benchmark, impl, text_records, peer) -> None:  # type: ignore[no-untyped-def]
    _bench_records(benchmark, impl, text_records, peer)


@pytest.mark.parametrize("impl", ["memstrata", "zstd-dict", "zstd", "lz4"])
@pytest.mark.benchmark(group="records-decompress-traces")
def test_decompress_trace_records(benchmark, impl, trace_stream, peer) -> None:  # type: ignore[no-untyped-def]
    timed = trace_stream[N_TRAIN:]
    if impl == "memstrata":
        engine = _trained_engine(trace_stream)
        frames = [engine.compress(r) for r in timed]
        fn = engine.decompress
    else:
        comp = _compressor(impl, trace_stream, peer)
        frames = [comp(r) for r in timed]
        if impl == "lz4":
            block = peer("lz4.block")
            fn = lambda f: msgspec.json.decode(block.decompress(f))
        else:
            zstd = peer("zstandard")
            if impl == "zstd":
                d = zstd.ZstdDecompressor()
            else:
                raw = zstd.train_dictionary(64 * 1024, [_json(r) for r in trace_stream[:N_TRAIN]])
                d = zstd.ZstdDecompressor(dict_data=raw)
            fn = lambda f: msgspec.json.decode(d.decompress(f))

    def run() -> int:
        return len([fn(f) for f in frames])

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["us_per_record"] = benchmark.stats.stats.median * 1e6 / len(frames)


def interleaved(loops: dict[str, Any], n_items: int, rounds: int = 15) -> dict[str, dict[str, float]]:
    """Time several loops round-robin; per loop: median and min µs per item, and the
    median over rounds of its time relative to the first loop (same-round ratios
    cancel most of the drift of a shared machine)."""
    times: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(rounds):
        for name, fn in loops.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e6 / n_items)
    first = next(iter(loops))
    return {
        k: {
            "median_us": float(np.median(v)),
            "min_us": float(np.min(v)),
            "ratio_to_" + first: float(np.median([a / b for a, b in zip(v, times[first])])),
        }
        for k, v in times.items()
    }


def test_trace_compress_interleaved(trace_stream, peer) -> None:  # type: ignore[no-untyped-def]
    """Per-record compress time of the engine and its peers, interleaved round by round.

    Printed for the record (no timing assertion); the goal is <= 5 µs per record.
    """
    timed = trace_stream[N_TRAIN:]
    fns = {impl: _compressor(impl, trace_stream, peer) for impl in ("memstrata", "zstd-dict", "lz4")}
    loops = {impl: (lambda fn=fn: [fn(r) for r in timed]) for impl, fn in fns.items()}
    for impl, row in interleaved(loops, len(timed)).items():
        print(f"trace compress {impl:10s} " + " ".join(f"{k}={v:.3f}" for k, v in row.items()))


# ------------------------------------------------------------------ checksum --


@pytest.fixture(scope="module")
def kib_frames() -> tuple[CompressionEngine, list[bytes]]:
    """Frames of records of 1-3 KiB (batches of 2-5 trace records), dictionary-compressed."""
    recs = list(trace_records(12000, seed=7))
    batches = [{"batch": recs[i : i + 2 + i % 4]} for i in range(0, len(recs), 6)]
    batches = [b for b in batches if len(_json(b)) >= 1024]
    engine = CompressionEngine({"train_after": 1000})
    frames = [engine.compress(b) for b in batches]
    return engine, frames[1000:]


@pytest.mark.parametrize("impl", ["decode-verified", "decode-unverified", "checksum-only"])
@pytest.mark.benchmark(group="checksum-share-1kib-records")
def test_checksum_share_of_decode(benchmark, impl, kib_frames) -> None:  # type: ignore[no-untyped-def]
    """Decode with and without checksum verification, and the checksum alone, on the same frames."""
    _, frames = kib_frames
    if impl == "decode-verified":
        fn = lambda f: _registry._decode(f, None, True)
    elif impl == "decode-unverified":
        fn = lambda f: _registry._decode(f, None, False)
    else:
        fn = lambda f: digest(memoryview(f)[:-8])

    def run() -> int:
        return len([fn(f) for f in frames])

    benchmark.pedantic(run, rounds=7, iterations=1, warmup_rounds=1)
    if benchmark.stats:
        benchmark.extra_info["us_per_frame"] = benchmark.stats.stats.median * 1e6 / len(frames)
        benchmark.extra_info["frames"] = len(frames)


def test_checksum_share_same_run(kib_frames) -> None:  # type: ignore[no-untyped-def]
    """The share measured in one interleaved loop: checksum time over verified-decode time.

    Rounds alternate the three loops; the minimum of each over the rounds is the
    least disturbed by other processes. Printed for the record (no timing
    assertion in a smoke run); the goal is a share <= 0.05.
    """
    _, frames = kib_frames
    bodies = [memoryview(f)[:-8] for f in frames]
    best = {"verified": float("inf"), "unverified": float("inf"), "checksum": float("inf")}
    for _ in range(9):
        t0 = time.perf_counter()
        for f in frames:
            _registry._decode(f, None, True)
        t1 = time.perf_counter()
        for f in frames:
            _registry._decode(f, None, False)
        t2 = time.perf_counter()
        for b in bodies:
            digest(b)
        t3 = time.perf_counter()
        best["verified"] = min(best["verified"], t1 - t0)
        best["unverified"] = min(best["unverified"], t2 - t1)
        best["checksum"] = min(best["checksum"], t3 - t2)
    share = best["checksum"] / best["verified"]
    diff_share = (best["verified"] - best["unverified"]) / best["verified"]
    print(f"checksum share of decode on {len(frames)} frames of 1-3 KiB: {share:.4f} (hash time / decode time), "
          f"{diff_share:.4f} (verified - unverified decode)")
    assert share < 1  # the checksum cannot cost more than the decode it is part of


# ---------------------------------------------------------------- embeddings --


@pytest.fixture(scope="module")
def embeddings(shared_data: Any) -> np.ndarray:
    path = shared_data / "dev" / "embeddings.npy"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return np.load(path)


EMB_IMPLS = ["memstrata", "memstrata-int8", "blosc2", "zstd", "lz4", "zlib"]


def _array_compressor(impl: str, peer: Any) -> Any:
    if impl == "memstrata":
        engine = CompressionEngine()
        return engine.compress
    if impl == "memstrata-int8":
        engine = CompressionEngine()
        return lambda x: engine.compress(x, allow_loss=True)
    if impl == "blosc2":
        blosc2 = peer("blosc2")
        return lambda x: blosc2.compress2(x, typesize=4, clevel=5, codec=blosc2.Codec.ZSTD, filters=[blosc2.Filter.SHUFFLE])
    if impl == "zstd":
        c = peer("zstandard").ZstdCompressor(level=3)
        return lambda x: c.compress(x.tobytes())
    if impl == "lz4":
        block = peer("lz4.block")
        return lambda x: block.compress(x.tobytes())
    if impl == "zlib":
        return lambda x: zlib.compress(x.tobytes(), 6)
    raise AssertionError(impl)


@pytest.mark.parametrize("impl", EMB_IMPLS)
@pytest.mark.benchmark(group="embeddings-compress-10k-384d")
def test_compress_embeddings(benchmark, impl, embeddings, peer) -> None:  # type: ignore[no-untyped-def]
    fn = _array_compressor(impl, peer)
    out = benchmark.pedantic(fn, args=(embeddings,), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ratio"] = len(out) / embeddings.nbytes
    if benchmark.stats:
        benchmark.extra_info["mb_per_s"] = embeddings.nbytes / benchmark.stats.stats.median / 1e6
    if impl == "memstrata-int8":
        y = CompressionEngine().decompress(out)
        benchmark.extra_info["max_abs_error"] = float(np.abs(y - embeddings).max())


# ------------------------------------------------- small bytes values (a layer's records) --


def _layer_records() -> list[bytes]:
    """Bytes values of 80-300 bytes as MemoryCore hands them to its store: a 25-byte head then msgpack."""
    from memstrata._native.corewrite import encode_record
    from memstrata.codecs import serialize

    rng = np.random.default_rng(7)
    words = "the user prefers metric units dark theme language note agent memory trace loss step run".split()
    values: list[Any] = []
    for i, r in enumerate(trace_records(600, seed=7)):
        text = " ".join(rng.choice(words, size=int(rng.integers(4, 40))))
        values += [{"theme": "dark", "note": text[:40], "n": i}, text, {k: r[k] for k in list(r)[:4]}]
    return [encode_record(f"user:{i}".encode(), i, 0, serialize(v)) for i, v in enumerate(values)]


@pytest.mark.parametrize("impl", ["memstrata", "zstd", "lz4"])
@pytest.mark.benchmark(group="small-bytes-compress")
def test_compress_small_bytes(benchmark, impl, peer) -> None:  # type: ignore[no-untyped-def]
    """Engine frames of small bytes values (lz4 up to SMALL_BUFFER_BYTES, raw when nothing shrinks) vs zstd / lz4 alone.

    ``extra_info``: ``ratio`` (output over input bytes; memstrata's whole
    frames, the peers' bare payloads) and ``us_per_record``.
    """
    recs = _layer_records()
    if impl == "memstrata":
        fn: Any = CompressionEngine().compress
    elif impl == "zstd":
        fn = peer("zstandard").ZstdCompressor(level=3).compress
    else:
        block = peer("lz4.block")
        fn = lambda b: block.compress(b, store_size=False)
    out = benchmark.pedantic(lambda: [fn(r) for r in recs], rounds=20, iterations=1, warmup_rounds=2)
    benchmark.extra_info["ratio"] = sum(map(len, out)) / sum(map(len, recs))
    benchmark.extra_info["mean_record_bytes"] = sum(map(len, recs)) / len(recs)
    if benchmark.stats:
        benchmark.extra_info["us_per_record"] = benchmark.stats.stats.median * 1e6 / len(recs)
