"""Content digests and stable key hashing: pinned vectors, the xxhash reference, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memstrata import digest, digest_many, hash_key, hash_keys

xxhash = pytest.importorskip("xxhash", reason="xxhash is the reference implementation of XXH3-128")

MASK64 = 2**64 - 1

# Persisted data depends on these exact values: a change here breaks every store.
PINNED_DIGESTS = {
    b"": "99aa06d3014798d86001c324468d497f",
    b"hello": "b5e9c1ad071b3e7fc779cfaa5e523818",
    bytes(range(256)) * 5: xxhash.xxh3_128_hexdigest(bytes(range(256)) * 5),
}
PINNED_KEY_HASHES = {
    "agent-7": xxhash.xxh3_128_intdigest(b"agent-7", seed=1) & MASK64,
    b"agent-7": xxhash.xxh3_128_intdigest(b"agent-7", seed=0) & MASK64,
    42: 9179783601678362669,
    -1: xxhash.xxh3_128_intdigest(b"\xff", seed=3) & MASK64,
    2**64: xxhash.xxh3_128_intdigest(b"\x00" * 8 + b"\x01", seed=3) & MASK64,
}


def reference_key_hash(key: object) -> int:
    """The documented key-hash definition, written with the xxhash package."""
    if isinstance(key, str):
        return xxhash.xxh3_128_intdigest(key.encode(), seed=1) & MASK64
    if isinstance(key, int):
        if 0 <= key < 2**64:
            return xxhash.xxh3_128_intdigest(key.to_bytes(8, "little"), seed=2) & MASK64
        raw = key.to_bytes((key.bit_length() + 8) // 8, "little", signed=True)
        return xxhash.xxh3_128_intdigest(raw, seed=3) & MASK64
    return xxhash.xxh3_128_intdigest(bytes(key), seed=0) & MASK64


def test_pinned_digests() -> None:
    for data, hexdigest in PINNED_DIGESTS.items():
        assert digest(data).hex() == hexdigest


def test_pinned_key_hashes() -> None:
    for key, value in PINNED_KEY_HASHES.items():
        assert hash_key(key) == value


def test_every_length_branch_matches_reference() -> None:
    # 0..1100 covers every code path: 0, 1-3, 4-8, 9-16, 17-128, 129-240, and
    # long inputs with a partial block, exact stripes and a full 1024-byte block.
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 1100, dtype=np.uint8).tobytes()
    for n in range(1101):
        assert digest(data[:n]) == xxhash.xxh3_128_digest(data[:n]), n


@given(st.binary(max_size=5000))
def test_digest_matches_reference(data: bytes) -> None:
    assert digest(data) == xxhash.xxh3_128_digest(data)
    assert digest(bytearray(data)) == digest(memoryview(data)) == digest(data)


@given(st.one_of(st.text(max_size=400), st.integers(min_value=-(2**80), max_value=2**80), st.binary(max_size=300)))
def test_hash_key_matches_definition(key: object) -> None:
    assert hash_key(key) == reference_key_hash(key)


def test_seeded_long_inputs_match_reference() -> None:
    # str keys use seed 1; above 240 bytes that takes the derived-secret path
    for n in (241, 1024, 1025, 5000):
        assert hash_key("x" * n) == reference_key_hash("x" * n)


def test_key_types_are_kept_apart() -> None:
    assert len({hash_key("a"), hash_key(b"a"), hash_key(97)}) == 3
    assert hash_key(True) == hash_key(1)  # True == 1, as in a dict
    assert hash_key(np.int64(5)) == hash_key(np.uint8(5)) == hash_key(5)
    assert hash_key(np.frombuffer(b"ab", dtype=np.uint8)) == hash_key(b"ab")


def test_numpy_arrays_hash_their_raw_bytes() -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert digest(arr) == xxhash.xxh3_128_digest(arr.tobytes())


def test_digest_many_forms() -> None:
    items = [b"a", bytearray(b"bc"), memoryview(b"def"), np.frombuffer(b"ghij", dtype=np.uint8), b""]
    out = digest_many(items)
    assert out.shape == (5, 16) and out.dtype == np.uint8
    assert [bytes(row) for row in out] == [digest(x) for x in items]
    assert np.array_equal(digest_many(iter(items)), out)
    assert np.array_equal(digest_many(tuple(items)), out)
    assert digest_many([]).shape == (0, 16)
    rows = np.arange(60, dtype=np.uint8).reshape(6, 10)[:, ::2]  # non-contiguous rows are copied
    assert [bytes(r) for r in digest_many(rows)] == [digest(r.tobytes()) for r in rows]
    assert digest_many(np.zeros((3, 0), np.uint8)).tolist() == [list(digest(b""))] * 3


def test_hash_keys_forms() -> None:
    ints = np.array([0, 1, 42, 2**64 - 1], dtype=np.uint64)
    assert hash_keys(ints).tolist() == [hash_key(int(v)) for v in ints]
    assert hash_keys(np.array([3, 4], dtype=np.int32)).tolist() == [hash_key(3), hash_key(4)]
    keys = [b"x", "y", 7, -7]
    assert hash_keys(keys).tolist() == [hash_key(k) for k in keys]
    assert hash_keys(digest_many([b"x", b"zz"])).tolist() == [hash_key(b"x"), hash_key(b"zz")]
    assert hash_keys(np.array(["p", "q"])).tolist() == [hash_key("p"), hash_key("q")]
    assert hash_keys([]).shape == (0,)


def test_stable_across_processes() -> None:
    keys = ["agent-7", "héllo wörld", 42, -3, 2**70]
    script = (
        "import json, memstrata; "
        "print(json.dumps([memstrata.hash_key(k) for k in ['agent-7', 'héllo wörld', 42, -3, 2**70]]))"
    )
    results = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        results.add(tuple(json.loads(out.stdout)))
    assert results == {tuple(hash_key(k) for k in keys)}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: digest("text"), TypeError, r"data: expected a bytes-like object, got str; encode it"),
        (lambda: digest(1.5), TypeError, r"data: expected a bytes-like object .* got float"),
        (lambda: digest(None), TypeError, r"data: .* got NoneType"),
        (lambda: digest(np.zeros((4, 4))[:, ::2]), ValueError, r"data: expected C-contiguous"),
        (lambda: digest_many("abc"), TypeError, r"items: .* got a single str"),
        (lambda: digest_many(5), TypeError, r"items: expected a sequence .* got int"),
        (lambda: digest_many([b"a", 1]), TypeError, r"items\[1\]: expected a bytes-like object"),
        (lambda: digest_many(np.zeros((2, 3), np.float32)), TypeError, r"items: .* got float32 array"),
        (lambda: hash_key(1.5), TypeError, r"key: expected str, bytes-like or int, got float"),
        (lambda: hash_key(None), TypeError, r"key: .* got NoneType"),
        (lambda: hash_key((1, 2)), TypeError, r"key: .* got tuple"),
        (lambda: hash_key(np.float32(1.0)), TypeError, r"key: .* got float32"),
        (lambda: hash_key(np.zeros(3)[::2]), ValueError, r"key: bytes-like data must be C-contiguous"),
        (lambda: hash_keys("abc"), TypeError, r"keys: .* got a single str"),
        (lambda: hash_keys(np.zeros(3, np.float32)), TypeError, r"keys: .* got float32 array of shape \(3,\)"),
        (lambda: hash_keys(np.array([1, -2])), ValueError, r"keys: integer key arrays must be non-negative"),
        (lambda: hash_keys([1, 2.5]), TypeError, r"keys\[1\]: .* got float"),
    ],
)
def test_bad_input(call, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("isa", ["scalar", "sse2", "avx2"])
def test_every_long_input_implementation_matches_reference(isa: str) -> None:
    from memstrata._native import hashing

    rng = np.random.default_rng(11)
    probe = rng.bytes(300)
    try:
        hashing._digest_long_with(isa, probe)
    except ValueError:
        pytest.skip(f"{isa} is not available on this CPU")
    for n in [241, 255, 256, 257, 1023, 1024, 1025, 1087, 2048, 4097, 65536 + 3]:
        data = rng.bytes(n)
        assert hashing._digest_long_with(isa, data) == xxhash.xxh3_128_digest(data), n
    assert hashing._long_input_isa() in {"avx2", "sse2", "scalar"}
