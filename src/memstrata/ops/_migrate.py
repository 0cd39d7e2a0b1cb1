"""Format versions of a store: detection, registered stepwise migrations, backup first, atomic swap.

A migration never touches the original directory until the end: the store is
backed up, the backup is restored (and so checked) into a sibling staging
directory, each step runs there, the result is opened and verified, and only
then are the two directories swapped by renames. A crash at any step leaves
the original as it was; a crash inside the swap is undone by the next call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memstrata.errors import MemstrataError

__all__ = ["Migration", "MigrationError", "MigrationRegistry", "default_registry", "detect_version", "migrate_store"]


class MigrationError(MemstrataError):
    """No path between two versions, or a step failed (the original store is untouched)."""


@dataclass(frozen=True)
class Migration:
    """One step ``source -> target``: ``up(path)`` rewrites the store at ``path`` in place; ``down`` reverses it."""

    source: int
    target: int
    up: Callable[[Path], Any]
    down: Callable[[Path], Any] | None = None
    description: str = ""


class MigrationRegistry:
    """The known steps; :meth:`path` chains them one version at a time, up or down."""

    def __init__(self) -> None:
        self.steps: dict[tuple[int, int], Callable[[Path], Any]] = {}
        self.descriptions: dict[tuple[int, int], str] = {}

    def register(self, m: Migration) -> Migration:
        if abs(m.target - m.source) != 1:
            raise ValueError(f"migration: steps go one version at a time, got {m.source} -> {m.target}")
        self.steps[(m.source, m.target)] = m.up
        self.descriptions[(m.source, m.target)] = m.description or f"{m.source} -> {m.target}"
        if m.down is not None:
            self.steps[(m.target, m.source)] = m.down
            self.descriptions[(m.target, m.source)] = f"undo: {m.description or f'{m.source} -> {m.target}'}"
        return m

    def latest(self) -> int:
        return max([1] + [t for _, t in self.steps])

    def path(self, source: int, target: int) -> list[tuple[int, int]]:
        step = 1 if target >= source else -1
        hops = [(v, v + step) for v in range(source, target, step)]
        missing = [h for h in hops if h not in self.steps]
        if missing:
            raise MigrationError(f"to: no registered migration {missing[0][0]} -> {missing[0][1]} "
                                 f"(known: {sorted(self.steps)})")
        return hops


def default_registry() -> MigrationRegistry:
    """The built-in steps: 1 -> 2 is the storage engine's own upgrade (:meth:`MemoryStore.upgrade`)."""
    from memstrata.store import MemoryStore

    reg = MigrationRegistry()
    reg.register(Migration(1, 2, MemoryStore.upgrade, None, "storage engine v1 (SQLite warm tier + packs) -> v2 segments"))
    return reg


def detect_version(path: str | os.PathLike[str]) -> int:
    """The store's format version: from its metadata, or from its shape for stores that predate it
    (:func:`memstrata.store.format_version`)."""
    from memstrata.store import format_version

    try:
        return format_version(path)
    except FileNotFoundError as exc:
        raise MigrationError(f"path: {path} is not a memstrata store") from exc
    except MemstrataError as exc:
        raise MigrationError(f"path: {exc}") from exc


def _recover_swap(p: Path) -> None:
    """Finish or undo a swap a crash interrupted: the original comes back if the store is missing."""
    olds = sorted(p.parent.glob(f".{p.name}.pre-migration-*"))
    if olds and not p.exists():
        os.rename(olds[-1], p)
        olds = olds[:-1]
    for d in olds + sorted(p.parent.glob(f".{p.name}.migrating-*")):
        shutil.rmtree(d, ignore_errors=True)


def migrate_store(
    path: str | os.PathLike[str],
    to: int,
    *,
    backup_repo: str | os.PathLike[str] | None = None,
    registry: MigrationRegistry | None = None,
    detect: Callable[[Path], int] = detect_version,
    check: Callable[[Path], None] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Bring the store at ``path`` to version ``to`` step by step (up or down).

    ``backup_repo`` (default ``PATH/ops/backups``) receives a backup first;
    ``check(staged_path)`` runs after the steps (default: open the result and
    ``verify()`` it when this memstrata reads that version); raising there
    abandons the migration with the original untouched.
    """
    from memstrata.ops._backup import create_backup
    from memstrata.ops._restore import restore_backup
    from memstrata.store import MemoryStore

    p = Path(path)
    _recover_swap(p)
    reg = registry or default_registry()
    source = detect(p)
    hops = reg.path(source, int(to))
    report: dict[str, Any] = {"store": str(p), "from": source, "to": int(to), "dry_run": dry_run,
                              "steps": [reg.descriptions[h] for h in hops], "backup": None}
    if dry_run or not hops:
        return report
    repo = backup_repo if backup_repo is not None else p / "ops" / "backups"
    with MemoryStore(p, {"migration_interval_seconds": None}):  # holds the write lock: no writer meanwhile
        report["backup"] = create_backup(p, repo)["id"]
    staged = Path(tempfile.mkdtemp(prefix=f".{p.name}.migrating-", dir=p.parent))
    staged.rmdir()
    try:
        restore_backup(repo, staged, snapshot=report["backup"])
        for h in hops:
            try:
                reg.steps[h](staged)
            except Exception as exc:
                raise MigrationError(f"migration {h[0]} -> {h[1]} failed: {exc}; the store is untouched") from exc
            got = detect(staged)
            if got != h[1]:
                raise MigrationError(f"migration {h[0]} -> {h[1]} left version {got}; the store is untouched")
        (check or _default_check)(staged)
        if (p / "ops").exists():
            shutil.copytree(p / "ops", staged / "ops", dirs_exist_ok=True, ignore=shutil.ignore_patterns("backups"))
        old = p.parent / f".{p.name}.pre-migration-{staged.name.rsplit('-', 1)[-1]}"
        with MemoryStore(p, {"migration_interval_seconds": None}):  # no writer may have opened it meanwhile
            pass
        os.rename(p, old)
        os.rename(staged, p)
        if (old / "ops" / "backups").exists():
            shutil.move(str(old / "ops" / "backups"), str(p / "ops" / "backups"))
        shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    report["version"] = detect(p)
    return report


def _default_check(staged: Path) -> None:
    from memstrata.store import MemoryStore

    try:
        with MemoryStore(staged, read_only=True) as s:
            v = s.verify()
    except MemstrataError as exc:
        if "schema version" in str(exc):  # a version this memstrata cannot open: the step's own check stands
            return
        raise
    if not v["ok"]:
        raise MigrationError(f"the migrated store does not verify: {v['errors'][:3]}; the store is untouched")
