"""Damaged Bloom filter files: every load either answers exactly as the saved filter or raises.

A seeded campaign over every kind of damage except ``stale_copy`` (an older
filter file is a valid filter of its own; only a container that records which
file it expects can tell, and the store does). A damaged file must raise
``CorruptDataError``; a deleted one ``FileNotFoundError`` naming the path. A
load that succeeds must answer every key exactly as the saved filter did.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from faults.damage import DAMAGES

from memstrata import BloomFilter, CorruptDataError

N_INJECTIONS = 320
KINDS = sorted(k for k in DAMAGES if k != "stale_copy")
KEYS = [f"key-{i}".encode() for i in range(3000)]
PROBES = KEYS[:1500] + [f"absent-{i}".encode() for i in range(1500)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[bool]]:
    bloom = BloomFilter(capacity=2000, fp_rate=0.01)
    bloom.add_many(KEYS[:1500])
    path = tmp_path_factory.mktemp("bloom") / "f.bloom"
    bloom.save(path)
    return path.read_bytes(), bloom.contains_many(PROBES).tolist()


def test_damaged_bloom_files_never_answer_wrong(tmp_path: Path, saved: tuple[bytes, list[bool]]) -> None:
    data, answers = saved
    rng = random.Random(20261129)
    outcomes: Counter[str] = Counter()
    for i in range(N_INJECTIONS):
        path = tmp_path / f"{i}.bloom"
        path.write_bytes(data)
        kind = KINDS[i % len(KINDS)]
        what = DAMAGES[kind](path, rng)
        try:
            loaded = BloomFilter.load(path)
        except CorruptDataError:
            outcomes["detected"] += 1
            continue
        except FileNotFoundError as exc:
            assert kind == "delete" and str(path) in str(exc), what
            outcomes["missing file named"] += 1
            continue
        assert loaded.contains_many(PROBES).tolist() == answers, f"wrong answers after {what}"
        outcomes["no effect"] += 1
    assert sum(outcomes.values()) == N_INJECTIONS
    assert outcomes["detected"] > N_INJECTIONS // 2, outcomes
