"""``MemoryStore.delete_many``: one batch, the same result as deleting one by one, all or nothing under SIGKILL."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from memstrata import MemoryStore

CFG = {"migration_interval_seconds": None, "durability": "normal"}


def _fill(store: MemoryStore) -> dict[Any, Any]:
    """Values on every tier, shared contents (dedup), pinned keys, str and bytes keys."""
    items: dict[Any, Any] = {}
    for i in range(60):
        key: Any = f"k{i}" if i % 4 else f"k{i}".encode()
        items[key] = {"shared": i % 7} if i % 3 else {"own": i, "text": "x" * i}
        store.store(key, items[key], tier=("hot", "warm", "cold")[i % 3], pin=i % 10 == 0)
    return items


def _counts(store: MemoryStore) -> dict[str, Any]:
    stats = store.get_statistics()
    tiered = stats["tiered_storage"]
    return {"keys": len(store), "dedup": stats["deduplication"],
            "tiers": {t: {k: v for k, v in tiered[t].items() if k in ("items", "bytes", "pinned")}
                      for t in ("hot", "warm", "cold")}}


def test_delete_many_equals_deleting_one_by_one(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "a", CFG) as a, MemoryStore(tmp_path / "b", CFG) as b:
        items = _fill(a)
        _fill(b)
        doomed = [k for i, k in enumerate(items) if i % 2 == 0 or i % 7 == 3]
        seq_a = a.seq
        last = a.delete_many(doomed)
        for k in doomed:
            b.delete(k)
        assert last == b.seq == seq_a + len(doomed)  # one sequence number per key, in order
        assert sorted(a.keys(), key=repr) == sorted(b.keys(), key=repr)
        for k in a.keys():
            assert a.retrieve(k) == b.retrieve(k) == items[k]
        assert _counts(a) == _counts(b)
        assert a.get_statistics()["middleware"]["deletes"] == len(doomed)
        assert a.verify()["ok"]
        a.compact()
        b.compact()
        assert a.verify()["ok"] and len(a) == len(items) - len(doomed)
        assert _counts(a) == _counts(b)
    with MemoryStore(tmp_path / "a", CFG) as a, MemoryStore(tmp_path / "b", CFG) as b:  # counts persisted
        assert _counts(a) == _counts(b)
        assert all(k not in a for k in doomed)


def test_an_absent_key_changes_nothing_unless_missing_ok(tmp_path: Path) -> None:
    with MemoryStore(tmp_path / "s", CFG) as s:
        s.store_many({"a": 1, "b": 2, "c": 3})
        seq = s.seq
        with pytest.raises(KeyError, match="nope"):
            s.delete_many(["a", "nope", "b"])
        assert s.seq == seq and sorted(s.keys()) == ["a", "b", "c"]
        assert s.delete_many(["a", "nope", "a", "b"], missing_ok=True) == seq + 2  # "a" once
        assert sorted(s.keys()) == ["c"]
        assert s.delete_many(["a", "zz"], missing_ok=True) == seq + 2  # nothing to delete: nothing written
        assert s.delete_many([]) == seq + 2
        s.store("a", 4)  # a deleted key can be written again
        assert s.retrieve("a") == 4
    with MemoryStore(tmp_path / "s", CFG, read_only=True) as s:
        with pytest.raises(PermissionError):
            s.delete_many(["a"])
    with MemoryStore() as m, pytest.raises(TypeError):
        m.delete_many([1.5])  # type: ignore[list-item]


WRITER = """
import sys
from memstrata import MemoryStore
s = MemoryStore(sys.argv[1], {"migration_interval_seconds": None, "durability": "normal"})
groups, size = int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
for g in range(groups):
    s.delete_many([f"g{g}:{i}" for i in range(size)])
    print(f"d {g}", flush=True)
"""


def test_sigkill_during_delete_many_leaves_each_call_all_or_nothing(tmp_path: Path) -> None:
    groups, size = 12, 3000
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random(7)
    for run in range(3):
        path = tmp_path / f"s{run}"
        with MemoryStore(path, CFG) as s:
            for g in range(groups):
                s.store_many({f"g{g}:{i}": {"g": g, "i": i, "text": f"memory {i}"} for i in range(size)}, tier="warm")
        with subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(groups), str(size)],
                              stdout=subprocess.PIPE, env=env) as proc:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.0, 0.4))
            proc.kill()  # SIGKILL, mid-call or (rarely) after the last one
            out = proc.stdout.read()
        acked = {int(line.split()[1]) for line in out.decode().splitlines() if line.startswith("d ")
                 and line.split()[-1].isdigit()}
        assert len(acked) < groups  # killed while it was still deleting
        with MemoryStore(path, CFG) as s:
            assert s.verify()["ok"]
            for g in range(groups):
                present = sum(f"g{g}:{i}" in s for i in range(size))
                assert present in (0, size), (g, present)  # one call: every key or none
                if g in acked:
                    assert present == 0, g
            assert s.retrieve(f"g{groups - 1}:5", None) in (None, {"g": groups - 1, "i": 5, "text": "memory 5"})
