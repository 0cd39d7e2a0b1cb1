"""The Bloom filter's persisted format: the committed version-1 file loads, answers and round-trips forever."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from memstrata import BloomFilter, CorruptDataError

GOLDEN = Path(__file__).resolve().parent / "golden" / "bloom"


def _make_golden():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("make_bloom_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_v1_bloom_loads_and_answers() -> None:
    golden = _make_golden()
    bloom = BloomFilter.load(GOLDEN / "v1.bloom")
    assert all(bloom.contains_many(golden.ADDED))
    assert not any(bloom.contains_many(golden.ABSENT))
    assert all(key in bloom for key in golden.ADDED[:10])
    assert bloom.to_bytes() == (GOLDEN / "v1.bloom").read_bytes()


def test_golden_v1_bloom_with_a_flipped_bit_is_refused(tmp_path: Path) -> None:
    data = bytearray((GOLDEN / "v1.bloom").read_bytes())
    data[len(data) // 2] ^= 0x04
    damaged = tmp_path / "damaged.bloom"
    damaged.write_bytes(bytes(data))
    with pytest.raises(CorruptDataError):
        BloomFilter.load(damaged)
