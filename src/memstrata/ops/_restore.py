"""Restore and verify backups: point-in-time selection, parallel checked restore, verify and drill.

A file backup is restored into a temporary sibling of the target: every file
is created at its final size, then worker threads fetch, decompress and check
each chunk against its digest and write it in place (no chunk is written
before it is proven), every file is fsynced, and the directory is renamed to
the target only when all of it is there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from memstrata.errors import CorruptDataError
from memstrata.ops._catalog import check_catalog
from memstrata.ops._repo import BackupError, Progress, Repository, file_digest, list_backups, open_repo

__all__ = ["restore_backup", "select_snapshot", "verify_backups"]

_WORKERS = max(1, min(4, os.cpu_count() or 1))
# restore threads mostly wait on reads, zstd and writes, which all release the GIL
_RESTORE_WORKERS = max(2, min(8, 2 * (os.cpu_count() or 1)))


def _parse_time(at: float | str | datetime) -> float:
    if isinstance(at, datetime):
        return at.timestamp()
    if isinstance(at, (int, float)):
        return float(at)
    try:
        return float(at)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(at)
    except ValueError as exc:
        raise ValueError(f"at: expected a Unix time or an ISO 8601 date/time, got {at!r}") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def select_snapshot(
    repo: str | os.PathLike[str] | Repository,
    *,
    snapshot: str | None = None,
    at: float | str | datetime | None = None,
    seq: int | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """The manifest to restore: ``snapshot`` by id, else the newest taken at or before ``at``, else the
    newest whose sequence number is at most ``seq``, else the newest."""
    repository = open_repo(repo)
    if snapshot is not None:
        return repository.read_manifest(snapshot)
    candidates = [m for m in list_backups(repository) if source is None or m["source"] == source]
    if at is not None:
        t = _parse_time(at)
        candidates = [m for m in candidates if m["created"] <= t]
    if seq is not None:
        candidates = [m for m in candidates if m["seq"] <= int(seq)]
    if not candidates:
        raise BackupError(f"repository {repository.url}: no backup matches (at={at!r}, seq={seq!r})")
    best = max(candidates, key=lambda m: (m["created"], m["seq"])) if seq is None else \
        max(candidates, key=lambda m: (m["seq"], m["created"]))
    return repository.read_manifest(best["id"])


# ------------------------------------------------------------- restore --

def restore_backup(
    repo: str | os.PathLike[str] | Repository,
    target: str | os.PathLike[str],
    *,
    snapshot: str | None = None,
    at: float | str | datetime | None = None,
    seq: int | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    durable: bool = True,
) -> dict[str, Any]:
    """Restore a backup (see :func:`select_snapshot`) into ``target``.

    A file backup is written to a temporary sibling of ``target``, every chunk
    checked against its digest, and renamed to ``target`` only when complete, so
    an interrupted restore leaves ``target`` as it was; ``target`` must not
    exist or be an empty directory. An agent backup stores its records into
    the store at ``target`` (created if missing). ``durable`` fsyncs every file
    and directory before the rename, so the restored store survives a power
    loss; ``False`` is for throwaway restores (the drill's).
    """
    from memstrata.tiers import fsync_dir

    repository = open_repo(repo)
    m = select_snapshot(repository, snapshot=snapshot, at=at, seq=seq)
    target = Path(target)
    total = sum(f["size"] for f in m["files"])
    report = {"snapshot": m["id"], "created": m["created"], "seq": m["seq"], "target": str(target),
              "files": len(m["files"]), "bytes": total, "layout": m["layout"], "dry_run": dry_run}
    if m["layout"] == "records":
        return report | _restore_records(repository, m, target, dry_run)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"target: {target} exists and is not empty; restore into a new directory")
    if dry_run:
        missing = sorted({d for f in m["files"] for d, _ in f["chunks"]} - repository.known_chunks())
        return report | {"missing_chunks": missing, "ok": not missing}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
    try:
        (tmp / "packs").mkdir()  # a store directory has one, even when empty
        _restore_files(repository, m, tmp, progress, total, durable)
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)
        if durable:
            fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report | {"ok": True}


def _restore_files(repository: Repository, m: dict[str, Any], root: Path, progress: Progress | None,
                   total: int, durable: bool) -> None:
    """Every file of ``m`` under ``root``: created at full size, chunks written in place by worker threads.

    A file is fsynced by the worker that writes its last chunk, while the
    others go on with the next files; the directories are fsynced at the end.
    """
    from memstrata.tiers import fsync_dir

    fds: list[int] = []
    left: dict[int, int] = {}  # fd -> chunks still to write
    jobs: list[tuple[int, int, str, int, str]] = []  # (fd, offset, digest, size, path)
    lock = threading.Lock()
    try:
        for f in m["files"]:
            dest = root / f["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            fds.append(fd)
            offset = 0
            for digest, size in f["chunks"]:
                jobs.append((fd, offset, digest, int(size), f["path"]))
                offset += int(size)
            if offset != f["size"]:
                raise CorruptDataError(f"snapshot {m['id']}: {f['path']}: its chunks add up to {offset} bytes, "
                                       f"the manifest says {f['size']}")
            os.ftruncate(fd, offset)  # full size now: chunks land in place, in any order
            left[fd] = len(f["chunks"])
            if not f["chunks"] and durable:
                os.fsync(fd)

        def write(job: tuple[int, int, str, int, str]) -> int:
            fd, offset, digest, size, path = job
            data = memoryview(repository.get_chunk(digest))  # checked against its digest
            if len(data) != size:
                raise CorruptDataError(f"snapshot {m['id']}: {path}: chunk {digest} holds {len(data)} bytes, "
                                       f"the manifest says {size}")
            pos = 0
            while pos < size:  # pwrite may write less than asked
                pos += os.pwrite(fd, data[pos:], offset + pos)
            with lock:
                left[fd] -= 1
                last = left[fd] == 0
            if last and durable:
                os.fsync(fd)
            return size

        pool = ThreadPoolExecutor(_RESTORE_WORKERS)
        try:
            done = 0
            for n in pool.map(write, jobs):
                done += n
                if progress is not None:
                    progress(done, total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # after an error: no more chunks fetched
    finally:
        for fd in fds:
            os.close(fd)
    for d in sorted({(root / f["path"]).parent for f in m["files"]} | {root}, reverse=True) if durable else ():
        fsync_dir(d)


def _restore_records(repository: Repository, m: dict[str, Any], target: Path, dry_run: bool) -> dict[str, Any]:
    from memstrata.codecs import deserialize
    from memstrata.store import MemoryStore

    raw = b"".join(repository.get_chunk(d) for f in m["files"] for d, _ in f["chunks"])
    records = deserialize(raw)
    if dry_run:
        return {"records": len(records), "ok": True}
    with MemoryStore(target) as store:
        store.store_many((key, deserialize(value)) for key, value in records)
    return {"records": len(records), "ok": True}


# -------------------------------------------------------------- verify --

def verify_backups(
    repo: str | os.PathLike[str] | Repository,
    snapshot: str | None = None,
    *,
    drill: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Check every chunk of every backup (or of ``snapshot``) against its digest.

    ``drill`` also restores each backup into a temporary directory, opens it
    and runs :meth:`MemoryStore.verify` on it. Checking the whole repository
    also compares the snapshots present with its catalog (a deleted backup is
    an error). Returns ``ok``, per-snapshot results, every error found and
    ``warnings`` (never raises for damage it can describe).
    """
    repository = open_repo(repo)
    ids = [snapshot] if snapshot is not None else repository.snapshot_ids()
    checked: dict[str, str | None] = {}
    results: list[dict[str, Any]] = []
    manifests = []
    for sid in ids:
        try:
            manifests.append(repository.read_manifest(sid))
        except (CorruptDataError, BackupError) as exc:
            results.append({"id": sid, "ok": False, "errors": [str(exc)]})
    total = sum(f["size"] for m in manifests for f in m["files"])
    done = 0

    def check(digest: str) -> str | None:
        try:
            repository.get_chunk(digest)
        except CorruptDataError as exc:
            return str(exc)
        return None

    with ThreadPoolExecutor(_WORKERS) as pool:
        for m in manifests:
            todo = sorted({d for f in m["files"] for d, _ in f["chunks"]} - checked.keys())
            for digest, err in zip(todo, pool.map(check, todo)):
                checked[digest] = err
            errors: list[str] = sorted({e for f in m["files"] for d, _ in f["chunks"] if (e := checked[d]) is not None})
            for f in m["files"]:
                if file_digest(f["chunks"]) != f["sha256"] or sum(s for _, s in f["chunks"]) != f["size"]:
                    errors.append(f"snapshot {m['id']}: {f['path']} does not match its manifest entry")
            entry: dict[str, Any] = {"id": m["id"], "ok": not errors, "errors": errors}
            if drill and not errors:
                entry["drill"] = _drill(repository, m)
                entry["ok"] = entry["drill"]["ok"]
                entry["errors"] = entry["drill"]["errors"]
            results.append(entry)
            done += sum(f["size"] for f in m["files"])
            if progress is not None:
                progress(done, total)
    all_errors = [e for r in results for e in r["errors"]]
    warnings: list[str] = []
    if snapshot is None:  # the whole repository: is every backup the catalog lists still there?
        catalog_errors, warnings = check_catalog(repository, {m["id"]: m for m in manifests})
        all_errors += catalog_errors
    return {"ok": not all_errors, "snapshots": results, "chunks_checked": len(checked), "errors": all_errors,
            "warnings": warnings, "drill": drill}


def _drill(repository: Repository, m: dict[str, Any]) -> dict[str, Any]:
    """Restore ``m`` into a temporary directory, open it and verify every frame."""
    from memstrata.store import MemoryStore

    with tempfile.TemporaryDirectory(prefix="memstrata-drill-") as tmp:
        target = Path(tmp) / "store"
        try:
            report = restore_backup(repository, target, snapshot=m["id"], durable=False)  # deleted right after
            with MemoryStore(target, read_only=True) as store:
                v = store.verify()
                seq = int(store.seq)
        except (CorruptDataError, BackupError, OSError) as exc:
            return {"ok": False, "errors": [f"snapshot {m['id']}: drill failed: {exc}"]}
        errors = [f"snapshot {m['id']}: restored store: {e}" for e in v["errors"]]
        if m["layout"] == "records" and v["keys"] != report.get("records"):
            errors.append(f"snapshot {m['id']}: {v['keys']} keys restored, the backup holds {report.get('records')}")
        if m["layout"] == "files" and seq != m["seq"]:
            errors.append(f"snapshot {m['id']}: restored store is at seq {seq}, the manifest says {m['seq']}")
        return {"ok": not errors and v["ok"], "errors": errors, "keys": v["keys"], "seq": seq,
                "records": report.get("records")}


