"""digest / digest_many vs xxhash and hashlib.

Goal: ``digest_many`` over 10**6 short keys >= 5x faster than calling xxhash
per key. ``extra_info`` holds ns per key or GB/s.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from memstrata import digest, digest_many

N_KEYS = 1_000_000
BIG_BYTES = 64 << 20


@pytest.fixture(scope="module")
def short_keys() -> list[bytes]:
    """10**6 distinct 20-byte keys (an id and a fixed prefix)."""
    return [b"agent:" + i.to_bytes(6, "little") + b":memory" for i in range(N_KEYS)]


@pytest.fixture(scope="module")
def big_buffer() -> bytes:
    return np.random.default_rng(0).bytes(BIG_BYTES)


def _per_key(name: str, peer):  # type: ignore[no-untyped-def]
    if name == "xxhash":
        f = peer("xxhash").xxh3_128_digest
        return lambda keys: [f(k) for k in keys]
    if name == "hashlib-blake2b":
        return lambda keys: [hashlib.blake2b(k, digest_size=16).digest() for k in keys]
    if name == "memstrata-digest":
        return lambda keys: [digest(k) for k in keys]
    raise AssertionError(name)


@pytest.mark.parametrize("impl", ["memstrata", "memstrata-digest", "xxhash", "hashlib-blake2b"])
@pytest.mark.benchmark(group="digest-1m-short-keys")
def test_digest_short_keys(benchmark, impl, short_keys, peer) -> None:  # type: ignore[no-untyped-def]
    fn = digest_many if impl == "memstrata" else _per_key(impl, peer)
    out = benchmark.pedantic(fn, args=(short_keys,), rounds=5, iterations=1, warmup_rounds=1)
    assert len(out) == N_KEYS
    if benchmark.stats:
        benchmark.extra_info["ns_per_key"] = benchmark.stats.stats.median * 1e9 / N_KEYS


@pytest.mark.parametrize("impl", ["memstrata", "xxhash", "hashlib-blake2b", "hashlib-sha256"])
@pytest.mark.benchmark(group="digest-64mb-buffer")
def test_digest_big_buffer(benchmark, impl, big_buffer, peer) -> None:  # type: ignore[no-untyped-def]
    if impl == "memstrata":
        fn = digest
    elif impl == "xxhash":
        fn = peer("xxhash").xxh3_128_digest
    elif impl == "hashlib-blake2b":
        fn = lambda b: hashlib.blake2b(b, digest_size=16).digest()
    else:
        fn = lambda b: hashlib.sha256(b).digest()
    out = benchmark.pedantic(fn, args=(big_buffer,), rounds=5, iterations=1, warmup_rounds=1)
    assert len(out) in (16, 32)
    if benchmark.stats:
        benchmark.extra_info["gb_per_s"] = BIG_BYTES / benchmark.stats.stats.median / 1e9
