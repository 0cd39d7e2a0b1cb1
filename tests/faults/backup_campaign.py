"""A fault campaign over backup repositories: damage one file, then verify, restore and read every backup.

Shared by ``test_backup_faults.py`` (a seeded sample in CI) and
``benchmarks/fault_campaign.py`` (the long run). The repository holds a full
backup and an incremental one of the same store (some keys rewritten, some
deleted in between). Each injection copies the repository, damages one of its
files (chunks, snapshot manifests, the catalog or the repository's marker; an older copy
of the repository, taken after the first backup, supplies stale files), then:
``verify_backups``, and for each backup a restore, an open and a read of every
key against what the store held when that backup was taken. Outcomes as in
``store_campaign``:

- ``read right``: every backup restores and reads back right, verify ok;
- ``detected``: verify reported it, or a restore, an open or a read raised;
- ``wrong value`` (a defect): a restored store returned another value, or a
  value for a key deleted before that backup;
- ``silent loss`` (a defect): a backup or a key of one is gone and neither
  ``verify_backups`` nor the restored store's ``verify()`` says so;
- ``foreign exception`` (a defect): anything but a ``MemstrataError``.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faults.damage import inject_each

from memstrata import MemoryStore, MemstrataError
from memstrata.ops import Repository, create_backup, restore_backup, verify_backups

CFG = {"migration_interval_seconds": None, "hot_max_bytes": 2048, "pack_max_bytes": 4096, "train_after": 60}

ARTEFACTS: dict[str, Callable[[Path], bool]] = {
    "chunk": lambda p: p.parent.parent.name == "chunks",
    "manifest": lambda p: p.parent.name == "snapshots",
    "repository marker": lambda p: p.name == "memstrata-backup.json",
    "catalog": lambda p: p.name == "catalog.json",
}

Snapshot = tuple[str, dict[str, Any], set[str]]  # id, expected values, deleted keys


def _value(i: int) -> Any:
    return {"id": i, "text": f"backup record {i}: the agent noted item {i * 5 % 17}", "score": i / 4}


def build(root: Path) -> tuple[Path, Path, list[Snapshot]]:
    """A repository with a full and an incremental backup, an older copy of it, and what each backup holds."""
    store_path, repo_path = root / "store", root / "repo"
    repo = Repository.init(repo_path)
    expected: dict[str, Any] = {}
    deleted: set[str] = set()
    snapshots: list[Snapshot] = []
    with MemoryStore(store_path, CFG) as store:
        for i in range(80):
            expected[f"k{i}"] = _value(i)
            store.store(f"k{i}", expected[f"k{i}"], tier=("hot", "warm", "cold")[i % 3])
    snapshots.append((create_backup(store_path, repo, incremental=False)["id"], dict(expected), set(deleted)))
    stale = root / "stale"
    shutil.copytree(repo_path, stale)
    with MemoryStore(store_path, CFG) as store:
        for i in range(80, 110):
            expected[f"k{i}"] = _value(i)
            store.store(f"k{i}", expected[f"k{i}"], tier=("warm", "cold")[i % 2])
        for i in (3, 4):
            store.delete(f"k{i}")
            deleted.add(f"k{i}")
            expected.pop(f"k{i}")
        store.store("k1", {"rewritten": True})
        expected["k1"] = {"rewritten": True}
    snapshots.append((create_backup(store_path, repo, incremental=True)["id"], dict(expected), set(deleted)))
    return repo_path, stale, snapshots


def _read_back(path: Path, expected: dict[str, Any], deleted: set[str]) -> tuple[str, str]:
    with MemoryStore(path, CFG) as store:
        lost = 0
        for k, v in expected.items():
            got = store.retrieve(k, None)
            if got is None:
                lost += 1
            elif got != v:
                return "wrong value", f"{k!r} read {got!r}"
        for k in deleted:
            if store.retrieve(k, None) is not None:
                return "wrong value", f"deleted {k!r} read a value"
        if set(store.keys()) - set(expected):
            return "wrong value", "phantom keys"
        if lost:
            return ("detected", f"{lost} keys missing, verify not ok") if not store.verify()["ok"] else (
                "silent loss", f"{lost} keys missing, verify() ok")
    return "read right", ""


def classify(repo: Path, snapshots: list[Snapshot], work: Path) -> tuple[str, str]:
    """Verify the damaged repository and restore and read each backup; returns ``(outcome, detail)``."""
    try:
        report = verify_backups(repo)
        verified = report["ok"]
        outcome, detail = "read right", ""
        for n, (sid, expected, deleted) in enumerate(snapshots):
            target = work / f"restored-{n}"
            try:
                restore_backup(repo, target, snapshot=sid)
                got, why = _read_back(target, expected, deleted)
            except MemstrataError as exc:
                got, why = "detected", f"snapshot {n}: {type(exc).__name__}"
            finally:
                shutil.rmtree(target, ignore_errors=True)
            if got in ("wrong value", "silent loss"):
                return got, f"snapshot {n}: {why}"
            if got == "detected":
                outcome, detail = got, why
        if outcome == "read right" and not verified:
            return "detected", "verify_backups reported it"
        if outcome == "detected" and verified:
            return "silent loss", f"{detail}, but verify_backups() ok"
        return outcome, detail
    except MemstrataError as exc:
        return "detected", f"{type(exc).__name__}"
    except Exception as exc:  # the campaign counts every foreign type
        return "foreign exception", f"{type(exc).__name__}: {exc}"


def campaign(work: Path, artefact: str, n: int, seed: int) -> tuple[Counter[str], list[str]]:
    """``n`` injections into repository files of ``artefact`` kind, every damage kind in turn."""
    base, stale, snapshots = build(work / "base")
    return inject_each(work, base, stale, n, seed, ARTEFACTS[artefact], lambda t: classify(t, snapshots, work))
