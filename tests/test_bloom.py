"""BloomFilter: no false negatives, measured false-positive rate, persistence, corruption, errors."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata import BloomFilter, CorruptDataError, digest, digest_many

keys_strategy = st.lists(
    st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers(min_value=-(2**70), max_value=2**70)),
    max_size=200,
)


@given(keys_strategy, st.integers(min_value=1, max_value=500), st.sampled_from([0.5, 0.1, 0.01, 1e-4]))
def test_no_false_negatives(keys: list, capacity: int, fp_rate: float) -> None:
    bf = BloomFilter(capacity, fp_rate)
    half = len(keys) // 2
    for key in keys[:half]:
        bf.add(key)
    bf.add_many(keys[half:])
    assert all(key in bf for key in keys)
    assert bf.contains_many(keys).all()


def test_batch_forms_are_the_same_keys() -> None:
    values = [i.to_bytes(4, "little") for i in range(1000)]
    by_bytes, by_digest = BloomFilter(1000), BloomFilter(1000)
    by_bytes.add_many(values)
    by_digest.add_many(digest_many(values))
    assert by_bytes == by_digest
    single = BloomFilter(1000)
    for v in values:
        single.add(v)
    assert single == by_bytes
    assert by_bytes.contains_many(digest_many(values)).all()
    assert by_digest.contains_digest(digest(values[3]))
    assert by_bytes.contains_digest(np.frombuffer(digest(values[4]), np.uint8))
    one = BloomFilter(1000)
    one.add_digest(digest(values[5]))
    assert values[5] in one

    ints = np.arange(0, 5000, 5, dtype=np.uint64)
    by_array, by_list = BloomFilter(1000), BloomFilter(1000)
    by_array.add_many(ints)
    by_list.add_many([int(i) for i in ints])
    assert by_array == by_list
    assert by_list.contains_many(ints.astype(np.int64)).all()


@pytest.mark.parametrize("fp_rate", [0.01, 0.001])
def test_measured_fp_rate_within_1_2x_of_target(fp_rate: float) -> None:
    n = 100_000
    rng = np.random.default_rng(7)
    members = rng.integers(0, 2**63, n, dtype=np.uint64)
    probes = rng.integers(2**63, 2**64 - 1, 1_000_000, dtype=np.uint64, endpoint=True)  # disjoint from members
    bf = BloomFilter(n, fp_rate)
    bf.add_many(members)
    assert bf.contains_many(members).all()
    measured = float(bf.contains_many(probes).mean())
    # 1e6 probes: at 0.001 about 1000 false positives, so 1.2x is six standard deviations
    assert measured <= 1.2 * fp_rate
    assert bf.estimated_fp_rate == pytest.approx(measured, rel=0.15)
    assert bf.approx_len == pytest.approx(n, rel=0.03)


# the overhead of blocking over the standard formula, as documented in BloomFilter
@pytest.mark.parametrize(
    ("capacity", "fp_rate", "overhead"),
    [(1, 0.5, 1.0), (1000, 0.1, 1.01), (10**5, 0.01, 1.035), (10**5, 0.001, 1.08), (10**6, 1e-6, 1.34)],
)
def test_sized_at_least_by_the_standard_formula(capacity: int, fp_rate: float, overhead: float) -> None:
    bf = BloomFilter(capacity, fp_rate)
    standard_bits = -capacity * math.log(fp_rate) / math.log(2) ** 2
    assert bf.nbytes * 8 >= standard_bits
    assert bf.nbytes * 8 <= overhead * standard_bits + 512
    assert bf.nbytes % 64 == 0 and 1 <= bf.n_hashes <= 64
    assert (bf.capacity, bf.fp_rate) == (capacity, fp_rate)


def test_empty_filter() -> None:
    bf = BloomFilter(100)
    assert "x" not in bf and bf.approx_len == 0 and bf.estimated_fp_rate == 0.0
    assert bf.contains_many([]).shape == (0,)
    bf.add_many(np.zeros(0, np.uint64))
    assert bf.approx_len == 0


def filled(n: int = 200, fp_rate: float = 0.01, start: int = 0) -> BloomFilter:
    bf = BloomFilter(n, fp_rate)
    bf.add_many([f"key-{i}" for i in range(start, start + n)])
    return bf


def test_bytes_round_trip() -> None:
    bf = filled()
    again = BloomFilter.from_bytes(bf.to_bytes())
    assert again == bf and again is not bf
    assert (again.capacity, again.fp_rate, again.n_hashes, again.nbytes) == (bf.capacity, bf.fp_rate, bf.n_hashes, bf.nbytes)
    assert BloomFilter.from_bytes(bytearray(bf.to_bytes())) == bf
    assert pickle.loads(pickle.dumps(bf)) == bf


def test_save_load(tmp_path: Path) -> None:
    bf = filled()
    path = tmp_path / "filter.bloom"
    bf.save(path)
    assert BloomFilter.load(path) == bf
    assert [p.name for p in tmp_path.iterdir()] == ["filter.bloom"]  # no temp file left


def test_load_in_another_process_answers_identically(tmp_path: Path) -> None:
    bf = BloomFilter(5000, 0.05)
    bf.add_many([f"member-{i}" for i in range(5000)] + list(range(0, 10**6, 997)))
    probes = [f"member-{i}" for i in range(0, 10000, 3)] + list(range(0, 2 * 10**6, 1013)) + ["x", b"y", -5]
    path = tmp_path / "f.bloom"
    bf.save(path)
    script = (
        "import json, sys, memstrata\n"
        "bf = memstrata.BloomFilter.load(sys.argv[1])\n"
        "probes = json.loads(sys.stdin.read())\n"
        "probes = [p if not isinstance(p, list) else bytes(p) for p in probes]\n"
        "print(json.dumps(bf.contains_many(probes).tolist()))\n"
    )
    encoded = json.dumps([list(p) if isinstance(p, bytes) else p for p in probes])
    env = dict(os.environ, PYTHONHASHSEED="4242")
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], input=encoded, env=env, capture_output=True, text=True, check=True
    )
    expected = bf.contains_many(probes).tolist()
    assert json.loads(out.stdout) == expected
    assert sum(expected) > 1000  # the members answer True, so the comparison is not vacuous


def test_every_flipped_byte_is_detected() -> None:
    data = filled(50).to_bytes()
    for i in range(len(data)):
        damaged = bytearray(data)
        damaged[i] ^= 0x5A
        with pytest.raises(CorruptDataError):
            BloomFilter.from_bytes(bytes(damaged))


def test_every_truncation_is_detected() -> None:
    data = filled(50).to_bytes()
    for n in range(len(data)):
        with pytest.raises(CorruptDataError):
            BloomFilter.from_bytes(data[:n])
    with pytest.raises(CorruptDataError, match="size mismatch"):
        BloomFilter.from_bytes(data + b"\x00")


def test_corruption_messages() -> None:
    data = bytearray(filled(50).to_bytes())
    with pytest.raises(CorruptDataError, match="truncated"):
        BloomFilter.from_bytes(b"")
    with pytest.raises(CorruptDataError, match="bad magic"):
        BloomFilter.from_bytes(b"XXXX" + bytes(data[4:]))
    future = bytearray(data)
    future[4:6] = (2).to_bytes(2, "little")
    future[-16:] = digest(bytes(future[:-16]))  # a well-formed frame of an unknown version
    with pytest.raises(CorruptDataError, match="format version 2 is not supported"):
        BloomFilter.from_bytes(bytes(future))
    data[100] ^= 1
    with pytest.raises(CorruptDataError, match="checksum mismatch"):
        BloomFilter.from_bytes(bytes(data))


def test_corrupt_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "f.bloom"
    filled().save(path)
    raw = bytearray(path.read_bytes())
    raw[-30] ^= 0xFF
    path.write_bytes(raw)
    with pytest.raises(CorruptDataError):
        BloomFilter.load(path)


def test_union() -> None:
    a, b = filled(300, start=0), filled(300, start=1000)
    both = a | b
    assert all(f"key-{i}" in both for i in [*range(300), *range(1000, 1300)])
    assert both == a.union(b) and both != a
    c = a.copy()
    c |= b
    assert c == both
    assert a == filled(300, start=0)  # operands unchanged
    with pytest.raises(ValueError, match="other: filters differ in geometry"):
        _ = a | BloomFilter(10_000)
    with pytest.raises(TypeError, match="other: expected a BloomFilter, got set"):
        a.union({1})
    with pytest.raises(TypeError):
        _ = a | {1}


def test_copy_and_clear() -> None:
    a = filled()
    b = a.copy()
    b.add("only-in-b")
    assert "only-in-b" in b and b != a
    b.clear()
    assert b.approx_len == 0 and "key-1" not in b and b == BloomFilter(a.capacity, a.fp_rate)
    assert "BloomFilter(capacity=200" in repr(a)


def test_concurrent_adds_lose_nothing() -> None:
    bf = BloomFilter(400_000, 0.01)
    chunks = [np.arange(i * 100_000, (i + 1) * 100_000, dtype=np.uint64) for i in range(4)]
    threads = [threading.Thread(target=bf.add_many, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(bf.contains_many(c).all() for c in chunks)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: BloomFilter(0), ValueError, r"capacity: expected a positive int, got 0"),
        (lambda: BloomFilter(-5), ValueError, r"capacity: expected a positive int, got -5"),
        (lambda: BloomFilter(2**60), ValueError, r"capacity: expected fewer than 2\*\*53 keys"),
        (lambda: BloomFilter(1.5), TypeError, r"capacity: expected a positive int, got float"),
        (lambda: BloomFilter("10"), TypeError, r"capacity: expected a positive int, got str"),
        (lambda: BloomFilter(True), TypeError, r"capacity: expected a positive int, got bool"),
        (lambda: BloomFilter(10, 0.0), ValueError, r"fp_rate: expected a float in \(0, 1\), got 0.0"),
        (lambda: BloomFilter(10, 1.0), ValueError, r"fp_rate: expected a float in \(0, 1\), got 1.0"),
        (lambda: BloomFilter(10, -0.1), ValueError, r"fp_rate: .* got -0.1"),
        (lambda: BloomFilter(10, float("nan")), ValueError, r"fp_rate: .* got nan"),
        (lambda: BloomFilter(10, "0.1"), TypeError, r"fp_rate: expected a float in \(0, 1\), got str"),
        (lambda: BloomFilter(10).add(1.5), TypeError, r"key: expected str, bytes-like or int, got float"),
        (lambda: BloomFilter(10).add([1, 2]), TypeError, r"key: .* got list"),
        (lambda: 1.5 in BloomFilter(10), TypeError, r"key: .* got float"),
        (lambda: BloomFilter(10).add_many("abc"), TypeError, r"keys: .* got a single str"),
        (lambda: BloomFilter(10).add_many(np.zeros((3, 8), np.uint8)), TypeError, r"keys: .* got uint8 array of shape \(3, 8\)"),
        (lambda: BloomFilter(10).add_many(np.array([5, -1])), ValueError, r"keys: integer key arrays must be non-negative"),
        (lambda: BloomFilter(10).add_many([b"ok", None]), TypeError, r"keys\[1\]: .* got NoneType"),
        (lambda: BloomFilter(10).contains_many(np.zeros(3)), TypeError, r"keys: .* got float64 array"),
        (lambda: BloomFilter(10).contains_many(5), TypeError, r"keys: .* got int"),
        (lambda: BloomFilter.from_bytes("text"), TypeError, r"data: expected a bytes-like object, got str"),
        (lambda: BloomFilter(10).add_digest(b"short"), ValueError, r"digest: expected 16 bytes .* got 5 bytes"),
        (lambda: BloomFilter(10).contains_digest("x" * 16), TypeError, r"digest: expected 16 bytes .* got str"),
    ],
)
def test_bad_input(make, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        make()


def test_failed_batch_adds_nothing_after_the_bad_key_is_reported() -> None:
    # A batch is validated as it goes: keys before the bad one are added, the
    # error names the bad key's index, and the filter stays usable.
    bf = BloomFilter(100)
    with pytest.raises(TypeError, match=r"keys\[2\]"):
        bf.add_many(["a", "b", 3.5, "d"])
    assert "x" not in bf
    bf.add("x")
    assert "x" in bf
