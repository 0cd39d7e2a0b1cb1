"""A store directory: its files, its format version, its writer lock, and its upgrade and repair.

Format 2 (current)::

    PATH/LOCK          writer lock (flock)
    PATH/log/          segment files and the index checkpoint (memstrata.tiers.LogBackend)
    PATH/packs/        cold pack files

Format 1 kept warm frames, the index and metadata in ``PATH/store.sqlite``; it
opens read-only and :func:`upgrade` converts it in place.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from memstrata._locks import WriterLock
from memstrata.errors import CorruptDataError, MemstrataError, StoreLockedError

__all__ = ["check_store_path", "format_version", "is_store", "open_durable", "repair", "take_lock", "upgrade"]

log = logging.getLogger("memstrata.store")

LOG_DIR = "log"
DB_NAME = "store.sqlite"
PACKS_DIR = "packs"
LOCK_NAME = "LOCK"
UPGRADE_STAGING = "log.upgrade"
FORMAT_KEY = b"mformat"
FORMAT_VERSION = 2
#: Layout of the tiers' records inside a format-2 log: 3 keeps a blob written by one key inside that key's
#: entry record (see memstrata.tiers._tiers). A log without the record was written with layout 2 (every blob
#: shared), which layout 3 reads as it is: a writer records 3 at open, a reader changes nothing.
LAYOUT_KEY = b"mlayout"
LAYOUT_VERSION = 3
V1_FILES = (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm")

# called with the name of each finished upgrade step; tests replace it to simulate a crash there
_after_step: Callable[[str], None] = lambda step: None


def check_store_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a ``Path``; ``ValueError`` naming it when it cannot be a store directory."""
    if isinstance(path, str) and not path.strip():
        raise ValueError("path: expected a store directory, got an empty string (use None for a store in RAM)")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ValueError(f"path: {p} is a file, not a store directory")
    return p


def _repair_hint(path: Path) -> str:
    return f"run `memstrata repair {path}` (or MemoryStore.repair({str(path)!r}))"


def take_lock(path: Path) -> WriterLock:
    """Take the directory's writer lock (``PATH/LOCK``); ``lock.release()`` gives it back."""
    try:
        return WriterLock(path / LOCK_NAME, "MemoryStore")
    except StoreLockedError:
        raise
    except OSError as exc:
        raise PermissionError(
            f"MemoryStore: cannot open {path} for writing ({exc.strerror}); open it with read_only=True"
        ) from exc


def release_lock(lock: WriterLock | None) -> None:
    if lock is not None:
        lock.release()


def store_format(path: Path) -> int | None:
    """2 (segment log), 1 (``store.sqlite``) or ``None`` (no store here yet)."""
    if (path / LOG_DIR).is_dir() or (path / (LOG_DIR + ".repair")).is_dir():
        return 2
    if (path / DB_NAME).exists():
        return 1
    return None


def is_store(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a memstrata store directory (format 1 or 2)."""
    p = Path(path)
    return p.is_dir() and store_format(p) is not None


def format_version(path: str | os.PathLike[str]) -> int:
    """The format of the store at ``path``: 2 (``log/``) or 1 (``store.sqlite``, from its ``meta`` row, or its
    ``kv`` table for files that predate the row); ``FileNotFoundError`` or ``MemstrataError`` naming the path."""
    p = check_store_path(path)
    fmt = store_format(p) if p.is_dir() else None
    if fmt is None:
        raise FileNotFoundError(errno.ENOENT, "no memstrata store here", str(p))
    if fmt == 2:
        return 2
    db = p / DB_NAME
    uri = db.resolve().as_uri() + "?mode=ro" + ("&immutable=1" if _immutable(db) else "")
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            row = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone() \
                if "meta" in tables else None
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CorruptDataError(f"{db} cannot be read as a memstrata store ({exc})") from exc
    if row is not None and str(row[0]).isdigit():
        return int(row[0])
    if "kv" in tables:
        return 1
    raise MemstrataError(f"{db} has neither a format version nor the shape of a memstrata store")


def _has_data(path: Path) -> bool:
    packs = path / PACKS_DIR
    return packs.is_dir() and any(packs.iterdir())


def _immutable(db: Path) -> bool:
    """True when ``db`` can be read without SQLite creating files: no write-ahead log holds committed pages."""
    wal = db.with_name(db.name + "-wal")
    return not wal.exists() or wal.stat().st_size == 0 or not os.access(db.parent, os.W_OK)


def check_v1_file(db: Path) -> None:
    """Refuse a ``store.sqlite`` that memstrata did not write (never add tables to someone else's database)."""
    uri = db.resolve().as_uri() + "?mode=ro" + ("&immutable=1" if _immutable(db) else "")
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            version = None
            if {"meta", "kv"} <= tables:
                row = conn.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
                version = None if row is None else row[0]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CorruptDataError(f"MemoryStore: {db} cannot be read as a memstrata store ({exc})") from exc
    if version != "1":
        raise MemstrataError(
            f"MemoryStore: {db} is not a memstrata store file (another program's database?); refusing to write "
            "into it: choose another directory"
        )


def open_durable(path: Path, cfg: Any, read_only: bool) -> tuple[Any, int, WriterLock | None, bool]:
    """Open the store at ``path``: ``(backend, format version, writer lock, read_only)``."""
    from memstrata.tiers import LogBackend, SQLiteBackend

    fmt = store_format(path)
    if fmt is None:
        if _has_data(path):
            raise CorruptDataError(
                f"MemoryStore: {path} has cold pack files but no index ({LOG_DIR}/ and {DB_NAME} are missing); "
                f"{_repair_hint(path)}"
            )
        if read_only:
            raise FileNotFoundError(errno.ENOENT, "no memstrata store here", str(path))
        path.mkdir(parents=True, exist_ok=True)
    if fmt == 1:
        check_v1_file(path / DB_NAME)
        if not read_only:
            log.warning("memstrata: %s is a format-1 store, opened read-only; MemoryStore.upgrade(path) converts it", path)
        db = path / DB_NAME
        return SQLiteBackend(db, cfg.durability, read_only=True, immutable=_immutable(db)), 1, None, True
    lock = None if read_only else take_lock(path)
    try:
        if not read_only:
            _remove_v1(path)  # an upgrade that stopped after its swap: finish it
            if (path / UPGRADE_STAGING).exists():
                shutil.rmtree(path / UPGRADE_STAGING)
        backend = LogBackend(path / LOG_DIR, cfg.durability, max_disk_bytes=cfg.max_disk_bytes, read_only=read_only)
        try:
            layout = _check_layout(path, backend)
            if not read_only:
                puts = {} if backend.get(FORMAT_KEY) is not None else {FORMAT_KEY: str(FORMAT_VERSION).encode()}
                if layout < LAYOUT_VERSION:
                    puts[LAYOUT_KEY] = str(LAYOUT_VERSION).encode()
                if puts:
                    backend.apply(puts)
        except BaseException:
            backend.close()
            raise
    except BaseException:
        release_lock(lock)
        raise
    return backend, 2, lock, read_only


def _check_layout(path: Path, backend: Any) -> int:
    """The record layout of the log (2 when unrecorded); ``MemstrataError`` for one newer than this memstrata reads."""
    raw = backend.get(LAYOUT_KEY)
    try:
        layout = 2 if raw is None else int(raw)
    except ValueError:
        raise CorruptDataError(f"MemoryStore: {path}: its record layout {raw!r} is not a number; {_repair_hint(path)}") from None
    fmt = backend.get(FORMAT_KEY)
    if layout > LAYOUT_VERSION or (fmt is not None and fmt.isdigit() and int(fmt) > FORMAT_VERSION):
        raise MemstrataError(
            f"MemoryStore: {path} was written by a newer memstrata (format {fmt!r}, record layout {layout}); this one "
            f"reads format {FORMAT_VERSION} up to layout {LAYOUT_VERSION}: upgrade memstrata to open it"
        )
    return layout


def _remove_v1(path: Path) -> list[str]:
    removed = []
    for name in V1_FILES:
        p = path / name
        if p.exists():
            p.unlink()
            removed.append(name)
    if removed:
        from memstrata.tiers import fsync_dir

        fsync_dir(path)
    return removed


@contextmanager
def _existing_store_locked(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The checked path of an existing store, its writer lock held (the offline upgrade and repair)."""
    p = check_store_path(path)
    if not p.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no memstrata store here", str(p))
    lock = take_lock(p)
    try:
        yield p
    finally:
        lock.release()


def upgrade(path: str | os.PathLike[str], durability: str = "normal") -> dict[str, Any]:
    """Convert a format-1 store to format 2 in place (see :meth:`MemoryStore.upgrade`)."""
    from memstrata.tiers import SEED, LogBackend, SQLiteBackend, fsync_dir

    with _existing_store_locked(path) as p:
        report: dict[str, Any] = {"path": str(p), "from_version": 1, "to_version": FORMAT_VERSION, "records": 0,
                                  "removed": []}
        if (p / LOG_DIR).is_dir():
            report["from_version"] = 2
            report["removed"] = _remove_v1(p)  # a swap done before a crash: only the old files remain to go
            return report
        db = p / DB_NAME
        if not db.exists():
            raise MemstrataError(f"MemoryStore.upgrade: {p} holds no format-1 store (no {DB_NAME})")
        check_v1_file(db)
        staging = p / UPGRADE_STAGING
        if staging.exists():
            shutil.rmtree(staging)
        src = SQLiteBackend(db, durability, read_only=True, immutable=_immutable(db))
        try:
            rows = list(src.scan(b""))
        finally:
            src.close()
        dst = LogBackend(staging, durability)
        try:
            for i in range(0, len(rows), 1000):
                dst.apply(dict(rows[i : i + 1000]))
            dst.apply({FORMAT_KEY: str(FORMAT_VERSION).encode()})
        finally:
            dst.close()
        _after_step("copy")
        check = LogBackend(staging, read_only=True)
        try:
            bad = [k for k, v in rows if check.get(k) != v]
            problems = check.integrity_check()
            if bad or problems or len(check) != len(rows) + 1:
                raise CorruptDataError(
                    f"MemoryStore.upgrade: the converted copy of {p} does not match ({len(bad)} records differ; "
                    f"{problems}); the format-1 store is untouched"
                )
        finally:
            check.close()
        _after_step("verify")
        os.replace(staging, p / LOG_DIR)  # the commit point: from here on the store is format 2
        fsync_dir(p)
        _after_step("swap")
        report["removed"] = _remove_v1(p)
        report["records"] = len(rows)
        report["seed"] = SEED
        _after_step("remove")
        return report


def repair(path: str | os.PathLike[str], durability: str = "normal") -> dict[str, Any]:
    """Rebuild a store's index from its records (see :meth:`MemoryStore.repair`)."""
    from memstrata.tiers import SEED, finish_swap, repair_log

    with _existing_store_locked(path) as p:
        logdir = p / LOG_DIR
        finish_swap(logdir)
        if not logdir.is_dir():
            if (p / DB_NAME).exists():
                raise MemstrataError(f"MemoryStore.repair: {p} is a format-1 store; MemoryStore.upgrade(path) converts it")
            raise CorruptDataError(
                f"MemoryStore.repair: {p} has no segment files: nothing holds the keys; the cold packs "
                f"({PACKS_DIR}/) hold frames without keys and are left untouched"
            )
        report = repair_log(logdir, SEED, durability)
    from memstrata.store._store import MemoryStore

    with MemoryStore(p, {"migration_interval_seconds": None, "durability": durability}) as store:
        check = store.verify()
        report["keys"] = check["keys"]
        report["unrecoverable_keys"] = check["bad_keys"]
        report["verify_ok"] = check["ok"]
        report["errors"] = check["errors"]
    report["path"] = str(p)
    return report
