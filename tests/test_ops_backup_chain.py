"""Chains of incremental backups share one checkpoint; restores of every point; repositories of version 1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from memstrata import CorruptDataError, MemoryStore
from memstrata.codecs import serialize
from memstrata.ops import Repository, create_backup, list_backups, restore_backup, verify_backups

GOLDEN = Path(__file__).resolve().parent / "golden"
CFG = {"migration_interval_seconds": None, "pack_max_bytes": 64 << 10}


def contents(path: Path) -> dict[object, bytes]:
    with MemoryStore(path, read_only=True) as s:
        assert s.verify()["ok"]
        return {k: serialize(s.retrieve(k)) for k in s.keys()}


def change(store: Path, round_: int, n: int = 2000) -> None:
    """A new value for 5 % of the keys, a few deletes, a few new keys (the store is closed: a new checkpoint)."""
    with MemoryStore(store, CFG) as s:
        s.store_many({f"k{i}": {"round": round_, "i": i} for i in range(round_, n, 20)}, tier="warm")
        s.store_many({f"new{round_}:{i}": [round_, i] for i in range(30)}, tier="cold")
        s.delete(f"k{round_ + 1}")


def checkpoint_chunks(m: dict[str, Any]) -> list[list[Any]]:
    return next(f["chunks"] for f in m["files"] if f["path"] == "log/CHECKPOINT")


def test_incrementals_keep_the_first_checkpoint_until_a_compaction(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    with MemoryStore(store, CFG) as s:
        s.store_many({f"k{i}": {"i": i, "text": f"memory {i} " * (i % 11)} for i in range(2000)}, tier="warm")
    states, manifests = [contents(store)], [create_backup(store, repo)]
    for r in range(1, 4):
        change(store, r)
        states.append(contents(store))
        manifests.append(create_backup(store, repo))
        m = manifests[-1]
        assert m["kind"] == "incremental" and m["checkpoint_kept"], r
        assert checkpoint_chunks(m) == checkpoint_chunks(manifests[0])  # not sent again
        assert m["bytes_added"] < manifests[0]["bytes_added"] / 4
    with MemoryStore(store, CFG) as s:
        s.compact()  # the segments the kept checkpoint names are gone: the next backup takes the current one
    states.append(contents(store))
    manifests.append(create_backup(store, repo))
    assert not manifests[-1]["checkpoint_kept"]
    assert checkpoint_chunks(manifests[-1]) != checkpoint_chunks(manifests[0])
    change(store, 9)
    states.append(contents(store))
    manifests.append(create_backup(store, repo))
    assert manifests[-1]["checkpoint_kept"]  # the chain starts again from the compacted one
    for n, m in enumerate(manifests):
        restore_backup(repo, tmp_path / f"r{n}", snapshot=m["id"])
        assert contents(tmp_path / f"r{n}") == states[n], n
        with MemoryStore(tmp_path / f"r{n}", CFG) as s:  # opens for writing: replays from the kept checkpoint
            assert s.seq == m["seq"]
            s.store("after-restore", 1)
    restore_backup(repo, tmp_path / "quick", durable=False)  # no fsync: the same bytes
    assert contents(tmp_path / "quick") == states[-1]
    report = verify_backups(repo, drill=True)
    assert report["ok"] and len(report["snapshots"]) == len(manifests)
    assert Repository(repo).digest_name == "xxh3-128" and all(m["version"] == 2 for m in manifests)


def test_a_damaged_chunk_stops_the_restore_and_leaves_no_target(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    Repository.init(repo, chunk_bytes=8 << 10)
    with MemoryStore(store, CFG) as s:
        s.store_many({f"k{i}": {"i": i, "text": f"memory {i} " * (i % 11)} for i in range(2000)}, tier="warm")
    m = create_backup(store, repo)
    victim = next(f for f in m["files"] if len(f["chunks"]) > 2)["chunks"][1][0]
    path = repo / "chunks" / victim[:2] / victim
    import zstandard

    raw = bytearray(zstandard.ZstdDecompressor().decompress(path.read_bytes()))
    raw[5] ^= 1  # decompresses fine, fails its digest
    path.write_bytes(zstandard.ZstdCompressor().compress(bytes(raw)))
    with pytest.raises(CorruptDataError, match=victim):
        restore_backup(repo, tmp_path / "t")
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".t.restoring-*"))
    assert not verify_backups(repo)["ok"]


def test_sigkill_during_restore_leaves_no_partial_target(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    with MemoryStore(store, CFG) as s:
        for r in range(4):
            s.store_many({f"k{r}:{i}": os.urandom(200) for i in range(5000)}, tier="warm")
    create_backup(store, repo)
    want = contents(store)
    target = tmp_path / "t"
    code = f"from memstrata.ops import restore_backup; restore_backup({str(repo)!r}, {str(target)!r})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for delay in (0.2, 0.5, 0.9):
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if target.exists():  # the restore finished before the kill: complete
            assert contents(target) == want
            shutil.rmtree(target)
    restore_backup(repo, target)  # leftovers of killed restores (hidden siblings) do not get in the way
    assert contents(target) == want


def _normalized(values: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): json.loads(json.dumps(v)) for k, v in values.items()}


def test_a_version_1_repository_restores_verifies_and_takes_new_backups(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(GOLDEN / "backup-repo-v1", repo)
    expected = json.loads((GOLDEN / "backup-repo-v1.expected.json").read_text())
    r = Repository(repo)
    assert r.digest_name == "sha256" and len(r.snapshot_ids()) == 2
    assert verify_backups(repo, drill=True)["ok"]
    for seq, values in expected.items():
        target = tmp_path / f"seq{seq}"
        restore_backup(repo, target, seq=int(seq))
        with MemoryStore(target, read_only=True) as s:
            assert s.verify()["ok"] and s.seq == int(seq)
            assert _normalized({k: s[k] for k in s.keys()}) == values
    # new backups into it keep its SHA-256 chunk names, so its chunks still deduplicate
    store = tmp_path / f"seq{max(expected, key=int)}"
    with MemoryStore(store, CFG) as s:
        s.store("added", {"text": "after the upgrade"})
    m = create_backup(store, repo)
    assert m["digest"] == "sha256" and all(len(d) == 64 for f in m["files"] for d, _ in f["chunks"])
    assert verify_backups(repo, drill=True)["ok"] and len(list_backups(repo)) == 3
    restore_backup(repo, tmp_path / "again", snapshot=m["id"])
    assert contents(tmp_path / "again") == contents(store)
