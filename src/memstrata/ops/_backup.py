"""Backups of a store: consistent snapshots under a live writer, full and incremental, verify, drill, restore, rotate.

A snapshot is taken in a staging directory next to the store by
:func:`memstrata.store.snapshot_store`: sealed segments and pack files are
hard-linked (never written again), the active segment is copied up to its last
committed batch, so the copy is the state after one committed batch however
fast the writer writes or compacts. The staged directory is a complete store;
it is opened and checked, then cut into chunks that go to the repository.
Segments and packs only grow while their inode lives (sealed ones never
change): the part of such a file that the parent backup took from the same
inode is not read again, only the bytes appended since.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from memstrata.errors import CorruptDataError
from memstrata.ops._catalog import check_catalog
from memstrata.ops._repo import BackupError, Repository

__all__ = [
    "create_backup", "list_backups", "restore_backup", "rotate_backups", "select_snapshot", "verify_backups",
]

Progress = Callable[[int, int], None]
RECORDS_FILE = "records.msgpack"
_WORKERS = max(1, min(4, os.cpu_count() or 1))


def _open_repo(repo: str | os.PathLike[str] | Repository, create: bool) -> Repository:
    if isinstance(repo, Repository):
        return repo
    return Repository.init(repo) if create else Repository(repo)


# ------------------------------------------------------------- snapshot --

def _stage(store: Path, staging: Path) -> tuple[int, dict[str, int]]:
    """A consistent copy of ``store`` in ``staging`` (:func:`memstrata.store.snapshot_store`), opened read-only
    and checked before anything is read from it; returns its sequence number and its append-only files."""
    from memstrata.store import snapshot_store

    snap = snapshot_store(store, staging)
    return int(snap["seq"]), dict(snap["append_only"])


def _reusable_prefix(repo: Repository, path: Path, size: int, old: dict[str, Any] | None, ident: int | None
                     ) -> list[list[Any]]:
    """The parent's chunks that are still this file's first bytes.

    Only for a file that only grows (a segment or pack) copied from the same
    inode as the parent's: its old bytes are a prefix of the new ones. The
    leading full-size chunks are taken (all of them when the size is unchanged),
    after re-hashing the first and the last taken against their digests.
    """
    if ident is None or old is None or old.get("ident") != ident or old["size"] > size:
        return []
    chunks = old["chunks"]
    k = len(chunks) if old["size"] == size else 0
    if not k:
        while k < len(chunks) and chunks[k][1] == repo.chunk_bytes:
            k += 1
    if not k:
        return []
    with open(path, "rb") as f:
        for i in {0, k - 1}:
            f.seek(i * repo.chunk_bytes)
            if hashlib.sha256(f.read(chunks[i][1])).hexdigest() != chunks[i][0]:
                return []
    return [list(c) for c in chunks[:k]]


def _agent_records(staging: Path, agent: str) -> bytes:
    """Every record of ``agent`` (a mapping value whose ``agent`` field is ``agent``), as one serialized list."""
    from memstrata.codecs import serialize
    from memstrata.store import MemoryStore

    out = []
    with MemoryStore(staging, read_only=True) as snap:
        for key in snap.keys():
            value = snap.retrieve(key)
            if isinstance(value, dict) and value.get("agent") == agent:
                out.append([key, serialize(value)])
    return serialize(out)


# --------------------------------------------------------------- create --

def _chunk_work(data: bytes, known: set[str], cctx_level: int = 1) -> tuple[str, int, bytes | None]:
    import zstandard

    digest = hashlib.sha256(data).hexdigest()
    if digest in known:
        return digest, len(data), None
    return digest, len(data), zstandard.ZstdCompressor(level=cctx_level).compress(data)


def _file_digest(chunks: list[list[Any]]) -> str:
    return hashlib.sha256("".join(d for d, _ in chunks).encode()).hexdigest()


def _upload_file(repo: Repository, path: Path, size: int, pool: ThreadPoolExecutor, tick: Callable[[int], None],
                 stats: dict[str, int], dry_run: bool, start: int = 0) -> list[list[Any]]:
    """Chunks of the first ``size`` bytes of ``path`` (the active pack may grow meanwhile: later bytes are
    not referenced by the staged database)."""
    known = repo.known_chunks()
    chunks: list[list[Any]] = []
    pending = []
    left = size - start
    with open(path, "rb") as f:
        f.seek(start)
        while left > 0:
            data = f.read(min(repo.chunk_bytes, left))
            if not data:
                raise BackupError(f"store: {path.name} shrank while it was backed up")
            left -= len(data)
            pending.append(pool.submit(_chunk_work, data, known))
            if len(pending) >= 2 * _WORKERS:
                chunks.append(_finish(repo, pending.pop(0).result(), tick, stats, dry_run))
    chunks.extend(_finish(repo, fut.result(), tick, stats, dry_run) for fut in pending)
    return chunks


def _finish(repo: Repository, result: tuple[str, int, bytes | None], tick: Callable[[int], None],
            stats: dict[str, int], dry_run: bool) -> list[Any]:
    digest, size, blob = result
    if blob is not None and digest not in repo.known_chunks():
        stats["chunks_new"] += 1
        stats["bytes_added"] += len(blob)
        if not dry_run:
            repo.write_compressed(digest, blob)
        else:
            repo.known_chunks().add(digest)
    tick(size)
    return [digest, size]


def create_backup(
    store: str | os.PathLike[str],
    repo: str | os.PathLike[str] | Repository,
    *,
    incremental: bool = True,
    agent: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Back up the store directory ``store`` into ``repo``; returns the manifest.

    ``incremental`` links the backup to the newest earlier backup of the same
    store and scope (its parent) and reads only what was appended to segments
    and packs since the parent (see :func:`_reusable_prefix`); chunks the
    repository already has are never written again.
    ``agent`` backs up only that agent's records (mapping values whose ``agent``
    field matches). ``dry_run`` reads everything and reports what would be
    written, writing nothing.
    """
    from memstrata.store import is_store

    store = Path(store)
    if not is_store(store):
        raise BackupError(f"store: {store} is not a memstrata store")
    scratch = dry_run and not isinstance(repo, Repository) and not _exists_repo(repo)
    # a dry run into a repository that does not exist yet plans against an empty one in RAM
    repository = Repository.init(f"memory://dry-run-{os.getpid()}-{time.monotonic_ns()}") if scratch \
        else _open_repo(repo, create=not dry_run)
    source = str(store.resolve())
    parent = None
    if incremental:
        for m in reversed(list_backups(repository)):
            if m["source"] == source and m.get("agent") == agent:
                parent = repository.read_manifest(m["id"])
                break
    created = clock()
    staging = Path(tempfile.mkdtemp(prefix=".backup-", dir=store))
    stats = {"chunks_new": 0, "bytes_added": 0, "files_reused": 0, "bytes_reused": 0}
    try:
        seq, append_only = _stage(store, staging)
        if agent is not None:
            (staging / RECORDS_FILE).write_bytes(_agent_records(staging, agent))
            paths = [RECORDS_FILE]
        else:
            paths = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        sizes = {p: (staging / p).stat().st_size for p in paths}
        ident = {p: append_only.get(p) if agent is None else None for p in paths}
        parent_files = {f["path"]: f for f in parent["files"]} if parent else {}
        total = sum(sizes.values())
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress(done[0], total)

        files = []
        with ThreadPoolExecutor(_WORKERS) as pool:
            for p in paths:
                # the part of a growing file the parent already holds is not read again
                chunks = _reusable_prefix(repository, staging / p, sizes[p], parent_files.get(p), ident[p])
                start = sum(n for _, n in chunks)
                if chunks:
                    stats["files_reused"] += 1
                    stats["bytes_reused"] += start
                    tick(start)
                if start < sizes[p]:
                    chunks += _upload_file(repository, staging / p, sizes[p], pool, tick, stats, dry_run, start)
                files.append({"path": p, "size": sizes[p], "ident": ident[p], "chunks": chunks,
                              "sha256": _file_digest(chunks)})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if scratch:
            repository.fs.rm(repository.root, recursive=True)
    manifest = {
        "id": Repository.new_snapshot_id(created),
        "created": created,
        "created_iso": datetime.fromtimestamp(created, timezone.utc).isoformat(),
        "source": source,
        "kind": "incremental" if parent else "full",
        "parent": parent["id"] if parent else None,
        "seq": seq,
        "agent": agent,
        "layout": "records" if agent is not None else "files",
        "files": files,
        "bytes_total": total,
        "bytes_added": stats["bytes_added"],
        "chunks_new": stats["chunks_new"],
        "files_reused": stats["files_reused"],
        "bytes_reused": stats["bytes_reused"],
        "dry_run": dry_run,
    }
    if not dry_run:
        repository.write_manifest(manifest)
    return manifest


def _exists_repo(repo: str | os.PathLike[str]) -> bool:
    try:
        Repository(repo)
    except BackupError:
        return False
    return True


# ---------------------------------------------------------------- list --

def list_backups(repo: str | os.PathLike[str] | Repository) -> list[dict[str, Any]]:
    """A summary of every backup, oldest first (``files`` left out)."""
    repository = _open_repo(repo, create=False)
    out = []
    for sid in repository.snapshot_ids():
        m = repository.read_manifest(sid)
        out.append({k: v for k, v in m.items() if k != "files"} | {"n_files": len(m["files"])})
    return sorted(out, key=lambda m: m["created"])  # ids name the second only: two backups may share it


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
    repository = _open_repo(repo, create=False)
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
) -> dict[str, Any]:
    """Restore a backup (see :func:`select_snapshot`) into ``target``.

    A file backup is written to a temporary sibling of ``target``, every chunk
    checked against its digest, and renamed to ``target`` only when complete, so
    an interrupted restore leaves ``target`` as it was; ``target`` must not
    exist or be an empty directory. An agent backup stores its records into
    the store at ``target`` (created if missing).
    """
    repository = _open_repo(repo, create=False)
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
    done = 0
    try:
        for f in m["files"]:
            dest = tmp / f["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as out:
                with ThreadPoolExecutor(_WORKERS) as pool:
                    for data in pool.map(repository.get_chunk, [d for d, _ in f["chunks"]]):
                        out.write(data)
                        done += len(data)
                        if progress is not None:
                            progress(done, total)
                out.flush()
                os.fsync(out.fileno())
            if dest.stat().st_size != f["size"]:
                raise CorruptDataError(f"snapshot {m['id']}: {f['path']} restored to {dest.stat().st_size} bytes, "
                                       f"the manifest says {f['size']}")
        (tmp / "packs").mkdir(exist_ok=True)
        if target.exists():
            target.rmdir()
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report | {"ok": True}


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
    repository = _open_repo(repo, create=False)
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
                if _file_digest(f["chunks"]) != f["sha256"] or sum(s for _, s in f["chunks"]) != f["size"]:
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
            report = restore_backup(repository, target, snapshot=m["id"])
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


# -------------------------------------------------------------- rotate --

def rotate_backups(
    repo: str | os.PathLike[str] | Repository,
    *,
    keep_last: int = 0,
    keep_daily: int = 0,
    keep_weekly: int = 0,
    keep_monthly: int = 0,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Forget backups no policy keeps and delete the chunks no remaining backup uses.

    The policies are restic's ``forget`` ones: the ``keep_last`` newest; for
    each of the newest ``keep_daily`` days (weeks, months) that have backups,
    the newest backup of that day. Each backup holds all its chunks, so a kept
    incremental never needs its parent.
    """
    for name, v in (("keep_last", keep_last), ("keep_daily", keep_daily), ("keep_weekly", keep_weekly),
                    ("keep_monthly", keep_monthly)):
        if int(v) < 0:
            raise ValueError(f"{name}: expected a count >= 0, got {v}")
    if not (keep_last or keep_daily or keep_weekly or keep_monthly):
        raise ValueError("rotate: give at least one of keep_last, keep_daily, keep_weekly, keep_monthly")
    repository = _open_repo(repo, create=False)
    snaps = sorted(list_backups(repository), key=lambda m: m["created"], reverse=True)
    keep: dict[str, list[str]] = {}

    def bucket(policy: str, n: int, key: Callable[[datetime], Any]) -> None:
        seen: list[Any] = []
        for m in snaps:
            k = key(datetime.fromtimestamp(m["created"], timezone.utc))
            if k in seen:
                continue
            if len(seen) >= n:
                break
            seen.append(k)
            keep.setdefault(m["id"], []).append(policy)

    for m in snaps[:keep_last]:
        keep.setdefault(m["id"], []).append("last")
    bucket("daily", keep_daily, lambda d: d.date())
    bucket("weekly", keep_weekly, lambda d: d.isocalendar()[:2])
    bucket("monthly", keep_monthly, lambda d: (d.year, d.month))
    forget = [m["id"] for m in snaps if m["id"] not in keep]
    used: set[str] = set()
    for sid in keep:
        used |= {d for f in repository.read_manifest(sid)["files"] for d, _ in f["chunks"]}
    garbage = repository.known_chunks() - used
    freed = repository.chunk_bytes_stored(garbage)
    if not dry_run:
        for sid in forget:  # manifests first: a crash now leaves only unreferenced chunks
            repository.remove_manifest(sid)
        for d in garbage:
            repository.remove_chunk(d)
    return {"keep": {sid: keep[sid] for sid in sorted(keep)}, "forget": sorted(forget),
            "chunks_removed": len(garbage), "bytes_freed": freed, "dry_run": dry_run}
