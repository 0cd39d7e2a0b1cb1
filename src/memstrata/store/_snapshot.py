"""A consistent copy of a store directory, taken while a writer keeps writing (backups start here).

Pack files are hard-linked first: they are append-only and a compaction only
unlinks them, so a link keeps every byte the index may name, including bytes
appended later. Then the index is copied as of one committed batch (format 2:
:func:`memstrata.tiers.copy_log`; format 1: SQLite's online backup API, one
read transaction), then packs created meanwhile are linked too. A pack that
vanished before it was linked (a compaction) makes the copy start again.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memstrata.errors import MemstrataError
from memstrata.store._layout import DB_NAME, LOCK_NAME, LOG_DIR, PACKS_DIR, store_format

__all__ = ["snapshot_store"]

ATTEMPTS = 5
# entries of a store directory that are not part of its state
_SKIP = {LOCK_NAME, DB_NAME + "-wal", DB_NAME + "-shm", "ops", LOG_DIR, PACKS_DIR, DB_NAME}


def _pack_names(store: Path) -> list[str]:
    d = store / PACKS_DIR
    return sorted(n for n in os.listdir(d) if not n.startswith(".")) if d.is_dir() else []


def _link(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` to ``dst``, else copy it; True when linked."""
    try:
        os.link(src, dst)
        return True
    except FileNotFoundError:
        raise
    except OSError:  # no hard links here: a copy holds the bytes as of now (copied again after the index)
        shutil.copyfile(src, dst)
        return False


def _link_packs(store: Path, staging: Path, names: list[str], linked: set[str]) -> bool:
    """Link ``names`` into ``staging/packs`` (``linked`` gets those linked); False when one vanished."""
    for name in names:
        try:
            if _link(store / PACKS_DIR / name, staging / PACKS_DIR / name):
                linked.add(name)
        except FileNotFoundError:
            return False
    return True


def _copy_index(store: Path, staging: Path, fmt: int, full_check: bool, sources: dict[str, int],
                base: tuple[bytes, Mapping[str, int] | None] | None) -> tuple[int, str]:
    """Copy the index and warm records; returns the copy's sequence number (read from the copy) and which
    checkpoint it kept (``"base"`` or ``"current"``)."""
    from memstrata.tiers import SQLiteBackend, WarmTier

    if fmt == 2:
        from memstrata.tiers import copy_log

        prefix = LOG_DIR + "/"
        report = copy_log(store / LOG_DIR, staging / LOG_DIR, full_check=full_check, light=True,
                          inspect=lambda backend: WarmTier(backend).seq(),
                          base_checkpoint=base[0] if base else None,
                          base_sources={k[len(prefix):]: v for k, v in base[1].items() if k.startswith(prefix)}
                          if base and base[1] is not None else None)
        sources.update({prefix + name: ino for name, ino in report["sources"].items()})
        return int(report["inspect"]), str(report["checkpoint"])
    src = sqlite3.connect(Path(store / DB_NAME).resolve().as_uri() + "?mode=ro", uri=True)
    dst = sqlite3.connect(staging / DB_NAME)
    try:
        src.backup(dst)  # pages=-1: one step, one read transaction
    finally:
        dst.close()
        src.close()
    backend = SQLiteBackend(staging / DB_NAME, "normal", read_only=True)
    try:
        return WarmTier(backend).seq(), "current"
    finally:
        backend.close()


def snapshot_store(path: str | os.PathLike[str], staging: str | os.PathLike[str], *, full_check: bool = False,
                   base_checkpoint: bytes | None = None, base_sources: Mapping[str, int] | None = None
                   ) -> dict[str, Any]:
    """Copy the store at ``path`` into the new directory ``staging`` (see the module docstring).

    The copy is a complete store of the same format, as of one committed batch,
    whatever another process writes or compacts meanwhile; the copied index is
    opened and checked (``full_check``: every segment replayed, see
    :func:`memstrata.tiers.copy_log`). Returns ``{"format", "seq", "files",
    "append_only", "checkpoint"}`` (``seq``: :attr:`MemoryStore.seq` of the copy; ``files``:
    paths relative to ``staging``; ``append_only``: the files that only grow
    (segments, packs), each with the inode of its source in the store: while
    that inode lives, an earlier copy of it is a prefix of this one).

    ``base_checkpoint`` / ``base_sources``: the ``log/CHECKPOINT`` bytes and
    the ``append_only`` map of an earlier snapshot of this store; the copy
    keeps that checkpoint while it is still valid (format 2, see
    :func:`memstrata.tiers.copy_log`), so it differs from the earlier snapshot
    only by appended bytes. ``checkpoint`` in the result says which was kept.

    >>> import tempfile, os
    >>> from memstrata.store import MemoryStore, snapshot_store
    >>> d = tempfile.mkdtemp()
    >>> with MemoryStore(d + "/s") as s:
    ...     s["k"] = "v"
    ...     snap = snapshot_store(d + "/s", d + "/copy")
    >>> with MemoryStore(d + "/copy", read_only=True) as copy:
    ...     snap["format"], copy["k"]
    (2, 'v')
    """
    store, stage = Path(path), Path(staging)
    fmt = store_format(store) if store.is_dir() else None
    if fmt is None:
        raise FileNotFoundError(errno.ENOENT, "no memstrata store here", str(store))
    if stage.exists() and any(stage.iterdir()):
        raise FileExistsError(errno.EEXIST, "snapshot_store: the destination is not empty", str(stage))
    for _attempt in range(ATTEMPTS):
        shutil.rmtree(stage, ignore_errors=True)
        (stage / PACKS_DIR).mkdir(parents=True)
        before = _pack_names(store)
        linked: set[str] = set()
        if not _link_packs(store, stage, before, linked):
            continue
        sources: dict[str, int] = {}
        base = (base_checkpoint, base_sources) if base_checkpoint is not None else None
        seq, kept = _copy_index(store, stage, fmt, full_check, sources, base)
        after = _pack_names(store)
        if not _link_packs(store, stage, [n for n in after if n not in before], linked):
            continue
        # a pack created and compacted away while the index was copied leaves a gap in the numbering
        new_ids = sorted(int(n[5:13]) for n in after if n.startswith("pack-") and n not in before)
        if new_ids and new_ids != list(range(new_ids[0], new_ids[-1] + 1)):
            continue
        for name in before:  # a pack copied (not linked) before the index: take the bytes appended since
            src, dst = store / PACKS_DIR / name, stage / PACKS_DIR / name
            if name in after and name not in linked:
                shutil.copyfile(src, dst)
        for entry in os.scandir(store):
            if entry.name in _SKIP or entry.name.startswith(".") or entry.name.startswith(LOG_DIR + "."):
                continue
            if entry.is_file():
                shutil.copy2(entry.path, stage / entry.name)
        files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
        for name in linked:  # a linked pack is the store's inode
            sources[f"{PACKS_DIR}/{name}"] = (stage / PACKS_DIR / name).stat().st_ino
        return {"format": fmt, "seq": seq, "files": files, "append_only": sources, "checkpoint": kept}
    shutil.rmtree(stage, ignore_errors=True)
    raise MemstrataError(f"snapshot_store: {store} kept compacting during {ATTEMPTS} attempts; try again later")
