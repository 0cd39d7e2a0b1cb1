"""Backups: byte-identical restores, consistency under a live writer, damage caught, kills survived, rotation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memstrata import CorruptDataError, MemoryStore
from memstrata.codecs import serialize
from memstrata.ops import (
    BackupError,
    Repository,
    create_backup,
    list_backups,
    restore_backup,
    rotate_backups,
    verify_backups,
)

HERE = Path(__file__).resolve().parent
CFG = {"migration_interval_seconds": None, "pack_max_bytes": 64 << 10}


def fill(path: Path, start: int, n: int, agent: str = "a") -> None:
    with MemoryStore(path, CFG) as s:
        for i in range(start, start + n):
            s.store(f"k{i}", {"i": i, "agent": agent if i % 2 else "b", "text": f"memory {i} " * (i % 13)},
                    tier=("hot", "warm", "cold")[i % 3])


def contents(path: Path) -> dict[object, bytes]:
    with MemoryStore(path, read_only=True) as s:
        assert s.verify()["ok"]
        return {k: serialize(s.retrieve(k)) for k in s.keys()}


def test_full_incremental_and_point_in_time_restores_are_byte_identical(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    clock = iter([1000.0, 2000.0, 3000.0])
    Repository.init(repo, chunk_bytes=16 << 10)  # small chunks: a small store still spans many
    fill(store, 0, 600)
    with MemoryStore(store, CFG) as s:
        s.compact()  # the compacted segment is sealed: never written again
    fill(store, 600, 400)  # the active segment grows past one chunk
    first = contents(store)
    m1 = create_backup(store, repo, clock=lambda: next(clock))
    fill(store, 0, 50, agent="z")  # 25 of 1000 values change
    second = contents(store)
    m2 = create_backup(store, repo, clock=lambda: next(clock))
    assert (m1["kind"], m2["kind"], m2["parent"]) == ("full", "incremental", m1["id"])
    assert m2["bytes_added"] < m1["bytes_added"]
    # segments and packs only grow: what the parent took from the same file is taken from the parent
    old = {f["path"]: f for f in m1["files"]}
    same = [f for f in m2["files"] if f["ident"] is not None and f["path"] in old and old[f["path"]]["ident"] == f["ident"]]
    whole = [f for f in same if f["size"] == old[f["path"]]["size"]]
    assert any(f["path"].startswith("log/seg-") for f in whole) and any(f["path"].startswith("packs/") for f in whole)
    assert all(f["chunks"] == old[f["path"]]["chunks"] for f in whole)
    grown = [f for f in same if f["size"] > old[f["path"]]["size"] and f["path"].startswith("log/seg-")]
    assert grown and all(f["chunks"][:1] == old[f["path"]]["chunks"][:1] for f in grown)  # the active segment
    # no compaction since the parent: the parent's checkpoint still opens the log and is kept, not sent again
    ck1, ck2 = ([f for f in m["files"] if f["path"] == "log/CHECKPOINT"] for m in (m1, m2))
    assert m2["checkpoint_kept"] and ck2[0]["chunks"] == ck1[0]["chunks"] and ck2[0]["ident"] is None
    assert m2["files_reused"] == len(same) + 1 and 0 < m2["bytes_reused"] < m2["bytes_total"]
    restore_backup(repo, tmp_path / "latest")
    restore_backup(repo, tmp_path / "at", at=1500.0)
    restore_backup(repo, tmp_path / "seq", seq=m1["seq"])
    restore_backup(repo, tmp_path / "iso", at="1970-01-01T00:40:00+00:00")  # 2400 s
    assert contents(tmp_path / "latest") == second == contents(tmp_path / "iso")
    assert contents(tmp_path / "at") == first == contents(tmp_path / "seq")
    assert verify_backups(repo, drill=True)["ok"]
    with pytest.raises(BackupError, match="no backup matches"):
        restore_backup(repo, tmp_path / "none", at=10.0)
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(repo, tmp_path / "latest")


def test_dry_runs_write_nothing(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    fill(store, 0, 100)
    m = create_backup(store, repo, dry_run=True)
    assert m["dry_run"] and m["bytes_added"] > 0 and not repo.exists()
    create_backup(store, repo)
    r = restore_backup(repo, tmp_path / "t", dry_run=True)
    assert r["ok"] and r["missing_chunks"] == [] and not (tmp_path / "t").exists()


def test_damage_is_caught_by_verify_and_by_the_drill(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    fill(store, 0, 300)
    m = create_backup(store, repo)
    assert verify_backups(repo)["ok"]
    chunks = sorted((repo / "chunks").rglob("*"))
    chunks = [c for c in chunks if c.is_file()]
    blob = bytearray(chunks[0].read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    chunks[0].write_bytes(bytes(blob))
    chunks[1].unlink()
    for drill in (False, True):
        report = verify_backups(repo, drill=drill)
        assert not report["ok"] and report["snapshots"][0]["id"] == m["id"]
        text = " ".join(report["errors"])
        assert "missing" in text and ("damaged" in text or "does not match" in text)
    with pytest.raises(CorruptDataError):
        restore_backup(repo, tmp_path / "t")
    assert not (tmp_path / "t").exists() and not list(tmp_path.glob(".t.restoring-*"))
    manifest = repo / "snapshots" / f"{m['id']}.json"
    body = json.loads(manifest.read_text())
    body["seq"] += 1
    manifest.write_text(json.dumps(body))
    assert "does not match its digest" in " ".join(verify_backups(repo)["errors"])


def _expected_keys(top: int, deleted_upto: int) -> set[str]:
    dead = {f"k{i - 2}" for i in range(4, deleted_upto + 1) if i % 5 == 4}
    return {f"k{i}" for i in range(top + 1)} - dead


def test_backups_under_a_live_writer_restore_consistent(tmp_path: Path) -> None:
    sys.path.insert(0, str(HERE))
    from _crash_writer import value

    store, repo = tmp_path / "s", tmp_path / "repo"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    writer = subprocess.Popen([sys.executable, str(HERE / "_crash_writer.py"), str(store), "0"],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout is not None
        while writer.stdout.readline().split() != ["w", "300"]:
            pass
        ids = []
        for _ in range(4):  # each backup overlaps hundreds of writes and several compactions
            ids.append(create_backup(store, repo)["id"])
    finally:
        writer.kill()
        writer.wait()
        if writer.stdout is not None:
            writer.stdout.close()
    for n, sid in enumerate(ids):
        target = tmp_path / f"r{n}"
        restore_backup(repo, target, snapshot=sid)
        with MemoryStore(target, read_only=True) as s:
            assert s.verify()["ok"]
            keys = {str(k) for k in s.keys()}
            top = max(int(k[1:]) for k in keys)
            assert keys in (_expected_keys(top, top), _expected_keys(top, top - 1)), sid
            for k in keys:
                assert s.retrieve(k) == value(int(k[1:]))
    assert verify_backups(repo, drill=True)["ok"]


def test_sigkill_during_backup_leaves_earlier_backups_valid(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    fill(store, 0, 3000)
    create_backup(store, repo, incremental=False)
    fill(store, 3000, 3000)
    code = f"from memstrata.ops import create_backup; create_backup({str(store)!r}, {str(repo)!r}, incremental=False)"
    for delay in (0.05, 0.3, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert verify_backups(repo)["ok"]
    assert contents(store)  # the store verifies and reads
    restore_backup(repo, tmp_path / "t", snapshot=list_backups(repo)[0]["id"])
    assert len(contents(tmp_path / "t")) == 3000


def test_rotation_follows_the_forget_policies(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    fill(store, 0, 50)
    day = 86400.0
    times = [0, 3600, 1 * day, 2 * day, 2 * day + 60, 9 * day, 40 * day]
    ids = []
    for i, t in enumerate(times):
        fill(store, 1000 + i, 1)
        ids.append(create_backup(store, repo, clock=lambda t=t: 1_700_000_000.0 + t)["id"])
    with pytest.raises(ValueError, match="at least one"):
        rotate_backups(repo)
    plan = rotate_backups(repo, keep_last=2, keep_daily=3, dry_run=True)
    assert sorted(plan["keep"]) == sorted([ids[6], ids[5], ids[4]])
    assert plan["keep"][ids[6]] == ["last", "daily"] and len(list_backups(repo)) == 7
    report = rotate_backups(repo, keep_last=1, keep_monthly=2)
    assert sorted(report["forget"]) == sorted(ids[:5]) or sorted(report["keep"]) == sorted([ids[6], ids[5]])
    assert [m["id"] for m in list_backups(repo)] == sorted(report["keep"])
    assert verify_backups(repo, drill=True)["ok"]


def test_agent_scoped_backup_and_restore(tmp_path: Path) -> None:
    store, repo = tmp_path / "s", tmp_path / "repo"
    fill(store, 0, 200)
    m = create_backup(store, repo, agent="a")
    assert m["layout"] == "records"
    r = restore_backup(repo, tmp_path / "t")
    assert r["records"] == 100
    with MemoryStore(store, read_only=True) as s:
        want = {k: serialize(v) for k in s.keys() if (v := s.retrieve(k))["agent"] == "a"}
    assert contents(tmp_path / "t") == want
    assert verify_backups(repo, drill=True)["ok"]


def test_fsspec_memory_target(tmp_path: Path) -> None:
    store = tmp_path / "s"
    fill(store, 0, 100)
    url = f"memory://memstrata-test-{os.getpid()}"
    create_backup(store, url)
    assert Repository(url).snapshot_ids() and verify_backups(url, drill=True)["ok"]
    restore_backup(url, tmp_path / "t")
    assert contents(tmp_path / "t") == contents(store)


def test_not_a_store_or_repository(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="not a memstrata store"):
        create_backup(tmp_path, tmp_path / "repo")
    with pytest.raises(BackupError, match="not a memstrata backup repository"):
        list_backups(tmp_path)


def test_a_grown_file_reuses_its_prefix_only_when_the_bytes_match(tmp_path: Path) -> None:
    from memstrata.ops._backup import _reusable_prefix

    repo = Repository.init(tmp_path / "repo", chunk_bytes=4)
    f = tmp_path / "seg"
    f.write_bytes(b"aaaabbbbcc")
    old = {"size": 6, "ident": 7, "chunks": [[repo.digest(b"aaaa"), 4], [repo.digest(b"bb"), 2]]}
    assert _reusable_prefix(repo, f, 10, old, 7) == old["chunks"]  # the short last chunk too: only new bytes are read
    assert _reusable_prefix(repo, f, 10, old, 8) == []  # another inode
    assert _reusable_prefix(repo, f, 4, old, 7) == []  # shrank: not the same file
    f.write_bytes(b"xaaabbbbcc")  # same inode, other bytes (a recycled inode number): caught by the digest
    assert _reusable_prefix(repo, f, 10, old, 7) == []
    f.write_bytes(b"aaaabxbbcc")  # the last reused chunk differs: caught as well
    assert _reusable_prefix(repo, f, 10, old, 7) == []
