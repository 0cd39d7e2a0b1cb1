"""BloomFilter vs rbloom, fastbloom-rs and a Python set on 10**6 16-byte digests.

Run: ``pytest benchmarks/bench_bloom.py --benchmark-group-by=group``. Each group
times the same keys; ``extra_info`` holds ns per key, bytes and the measured
false-positive rate. Goals: single-key ``in`` no slower than rbloom;
``add_many`` >= 3x and ``contains_many`` >= 6x faster per digest than
fastbloom-rs's batch calls.
"""

from __future__ import annotations

import numpy as np
import pytest

from memstrata import BloomFilter, digest_many

N = 1_000_000
FP_RATE = 0.01
N_SINGLE = 100_000  # single-key calls per round


@pytest.fixture(scope="module")
def digests() -> np.ndarray:
    """10**6 distinct 16-byte content digests, as the dedup store holds them."""
    return digest_many([i.to_bytes(8, "little") + b"memstrata" for i in range(N)])


@pytest.fixture(scope="module")
def digest_bytes(digests: np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in digests]


@pytest.fixture(scope="module")
def absent_bytes() -> list[bytes]:
    return [row.tobytes() for row in digest_many([i.to_bytes(8, "little") + b"absent" for i in range(N)])]


def _builders(name: str, peer):  # type: ignore[no-untyped-def]
    """(make, add_batch, contains_batch, contains_one, nbytes) for one implementation."""
    if name == "memstrata":
        return (lambda: BloomFilter(N, FP_RATE), lambda f, keys: f.add_many(keys),
                lambda f, keys: f.contains_many(keys), lambda f, k: k in f, lambda f: f.nbytes)
    if name == "rbloom":
        rbloom = peer("rbloom")
        return (lambda: rbloom.Bloom(N, FP_RATE), lambda f, keys: f.update(keys),
                lambda f, keys: [k in f for k in keys], lambda f, k: k in f, lambda f: f.size_in_bits // 8)
    if name == "fastbloom-rs":
        fb = peer("fastbloom_rs")
        return (lambda: fb.FilterBuilder(N, FP_RATE).build_bloom_filter(), lambda f, keys: f.add_bytes_batch(keys),
                lambda f, keys: f.contains_bytes_batch(keys), lambda f, k: f.contains_bytes(k),
                lambda f: len(f.get_bytes()))
    if name == "python-set":
        return (set, lambda f, keys: f.update(keys), lambda f, keys: [k in f for k in keys],
                lambda f, k: k in f, lambda f: f.__sizeof__())
    raise AssertionError(name)


IMPLEMENTATIONS = ["memstrata", "fastbloom-rs", "rbloom", "python-set"]


def _batch_keys(name: str, digests: np.ndarray, digest_bytes: list[bytes]):  # type: ignore[no-untyped-def]
    # memstrata takes the digest array itself; the peers take bytes objects
    return digests if name == "memstrata" else digest_bytes


@pytest.mark.parametrize("impl", IMPLEMENTATIONS + ["memstrata-bytes"])
@pytest.mark.benchmark(group="bloom-add-1m-digests")
def test_add_batch(benchmark, impl, digests, digest_bytes, peer) -> None:  # type: ignore[no-untyped-def]
    make, add, _, _, nbytes = _builders("memstrata" if impl == "memstrata-bytes" else impl, peer)
    keys = digest_bytes if impl == "memstrata-bytes" else _batch_keys(impl, digests, digest_bytes)
    filters = []

    def setup():  # type: ignore[no-untyped-def]
        filters.append(make())
        return (filters[-1], keys), {}

    benchmark.pedantic(add, setup=setup, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info["ns_per_key"] = benchmark.stats.stats.median * 1e9 / N if benchmark.stats else None
    benchmark.extra_info["nbytes"] = nbytes(filters[-1])


@pytest.mark.parametrize("impl", IMPLEMENTATIONS + ["memstrata-bytes"])
@pytest.mark.benchmark(group="bloom-contains-1m-digests")
def test_contains_batch(benchmark, impl, digests, digest_bytes, absent_bytes, peer) -> None:  # type: ignore[no-untyped-def]
    make, add, contains, _, _ = _builders("memstrata" if impl == "memstrata-bytes" else impl, peer)
    keys = digest_bytes if impl == "memstrata-bytes" else _batch_keys(impl, digests, digest_bytes)
    f = make()
    add(f, keys)
    result = benchmark.pedantic(contains, args=(f, keys), rounds=5, iterations=1, warmup_rounds=1)
    assert all(result[:1000])  # no false negatives, whatever the peer
    benchmark.extra_info["ns_per_key"] = benchmark.stats.stats.median * 1e9 / N if benchmark.stats else None
    absent = absent_bytes[:100_000]
    benchmark.extra_info["measured_fp_rate"] = float(np.mean(contains(f, absent))) if impl != "memstrata" else \
        float(np.mean(f.contains_many(absent)))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.benchmark(group="bloom-contains-single-key")
def test_contains_single(benchmark, impl, digest_bytes, peer) -> None:  # type: ignore[no-untyped-def]
    make, add, _, contains_one, _ = _builders(impl, peer)
    f = make()
    add(f, digest_bytes)
    keys = digest_bytes[:N_SINGLE]

    def probe_all() -> int:
        return sum(1 for k in keys if contains_one(f, k))

    found = benchmark.pedantic(probe_all, rounds=5, iterations=1, warmup_rounds=1)
    assert found == N_SINGLE
    benchmark.extra_info["ns_per_key"] = benchmark.stats.stats.median * 1e9 / N_SINGLE if benchmark.stats else None
