"""Migrations: detection on golden stores, stepwise up and down, backup first, failures and kills leave the original."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memstrata import MemoryStore
from memstrata.codecs import serialize
from memstrata.ops import Migration, MigrationError, MigrationRegistry, detect_version, list_backups, migrate_store

GOLDEN = Path(__file__).resolve().parent / "golden"


def set_version(path: Path, v: int) -> None:
    """The stand-in format change: a row the engine ignores, so both versions stay openable."""
    conn = sqlite3.connect(path / "store.sqlite")
    with conn:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('test_version', ?)", (str(v),))
    conn.close()


def detect(path: Path) -> int:
    conn = sqlite3.connect(path / "store.sqlite")
    try:
        row = conn.execute("SELECT value FROM meta WHERE name='test_version'").fetchone()
    finally:
        conn.close()
    return detect_version(path) if row is None else int(row[0])


def registry(fail: bool = False) -> MigrationRegistry:
    """A stand-in step 1 <-> 2."""
    def up(p: Path) -> None:
        if fail:
            raise RuntimeError("disk on fire")
        set_version(p, 2)

    reg = MigrationRegistry()
    reg.register(Migration(1, 2, up, lambda p: set_version(p, 1), "test step"))
    return reg


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file() and p.name not in ("LOCK",) and "ops" not in p.parts and not p.name.endswith(("-wal", "-shm"))}


def contents(path: Path) -> dict[object, bytes]:
    with MemoryStore(path, read_only=True) as s:
        assert s.verify()["ok"]
        return {k: serialize(s.retrieve(k)) for k in s.keys()}


GOLDEN_STORES = sorted(p for p in GOLDEN.glob("stores-v*/*") if p.is_dir())  # every format, current included
FORMAT_1_STORES = [p for p in GOLDEN_STORES if p.parent.name == "stores-v1"]


@pytest.fixture
def golden_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(GOLDEN / "stores-v1" / "mixed", dst)
    return dst


def test_detect_every_golden_store(tmp_path: Path) -> None:
    assert GOLDEN_STORES
    for p in GOLDEN_STORES:
        assert detect_version(p) == int(p.parent.name.split("-v")[1])
    with MemoryStore(tmp_path / "new") as s:
        s["k"] = "v"
    assert detect_version(tmp_path / "new") == 2


@pytest.mark.parametrize("golden", FORMAT_1_STORES, ids=lambda p: p.name)
def test_the_registered_upgrade_on_every_golden_store(tmp_path: Path, golden: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(golden, store)
    before = contents(store)
    report = migrate_store(store, 2)
    assert (report["from"], report["version"]) == (1, 2) and report["backup"] is not None
    assert detect_version(store) == 2 and contents(store) == before
    assert not (store / "store.sqlite").exists()
    with pytest.raises(MigrationError, match="no registered migration 2 -> 1"):
        migrate_store(store, 1)
    # the backup taken first still restores the format-1 store
    from memstrata.ops import restore_backup

    restore_backup(store / "ops" / "backups", tmp_path / "restored", snapshot=report["backup"])
    assert detect_version(tmp_path / "restored") == 1 and contents(tmp_path / "restored") == before


def test_detect_from_shape_and_errors(tmp_path: Path, golden_copy: Path) -> None:
    conn = sqlite3.connect(golden_copy / "store.sqlite")
    with conn:
        conn.execute("DELETE FROM meta")
    conn.close()
    assert detect_version(golden_copy) == 1  # predates the version row: known by its kv table
    with pytest.raises(MigrationError, match="not a memstrata store"):
        detect_version(tmp_path)


def test_up_and_down_with_backup_first(golden_copy: Path) -> None:
    before = contents(golden_copy)
    report = migrate_store(golden_copy, 2, registry=registry(), detect=detect)
    assert report["from"] == 1 and report["version"] == 2 and report["steps"] == ["test step"]
    assert detect(golden_copy) == 2
    backups = list_backups(golden_copy / "ops" / "backups")
    assert [b["id"] for b in backups] == [report["backup"]]
    down = migrate_store(golden_copy, 1, registry=registry(), detect=detect)
    assert down["steps"] == ["undo: test step"] and detect(golden_copy) == 1
    assert contents(golden_copy) == before
    assert migrate_store(golden_copy, 1, registry=registry(), detect=detect)["steps"] == []
    with pytest.raises(MigrationError, match="no registered migration 2 -> 3"):
        migrate_store(golden_copy, 3, registry=registry(), detect=detect)
    dry = migrate_store(golden_copy, 2, registry=registry(), detect=detect, dry_run=True)
    assert dry["steps"] == ["test step"] and detect(golden_copy) == 1


def test_a_failing_step_leaves_the_original_untouched(golden_copy: Path) -> None:
    before = tree(golden_copy)
    with pytest.raises(MigrationError, match="disk on fire.*untouched"):
        migrate_store(golden_copy, 2, registry=registry(fail=True), detect=detect)
    assert tree(golden_copy) == before
    assert not list(golden_copy.parent.glob(".store.migrating-*"))


SLOW = """
import sys, time
from pathlib import Path
from memstrata.ops import Migration, MigrationRegistry, migrate_store
reg = MigrationRegistry()
def up(p):
    print("step", flush=True)
    time.sleep(30)
reg.register(Migration(1, 2, up))
migrate_store(sys.argv[1], 2, registry=reg)
"""


def test_sigkill_during_migration_leaves_the_original(golden_copy: Path) -> None:
    before = tree(golden_copy)
    proc = subprocess.Popen([sys.executable, "-c", SLOW, str(golden_copy)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "step"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert tree(golden_copy) == before and detect_version(golden_copy) == 1
    assert list(golden_copy.parent.glob(".store.migrating-*"))  # the abandoned staging copy
    migrate_store(golden_copy, 1, registry=registry(), detect=detect)  # the next run clears it
    assert not list(golden_copy.parent.glob(".store.migrating-*"))


def test_an_interrupted_swap_is_undone(golden_copy: Path) -> None:
    before = contents(golden_copy)
    os.rename(golden_copy, golden_copy.parent / ".store.pre-migration-abc")
    time.sleep(0)
    assert migrate_store(golden_copy, 1, registry=registry(), detect=detect)["from"] == 1
    assert contents(golden_copy) == before
