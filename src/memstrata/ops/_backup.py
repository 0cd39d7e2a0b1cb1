"""Backups of a store: consistent snapshots under a live writer, full, incremental and agent-scoped.

A snapshot is taken in a staging directory next to the store by
:func:`memstrata.store.snapshot_store`: sealed segments and pack files are
hard-linked (never written again), the active segment is copied up to its last
committed batch, so the copy is the state after one committed batch however
fast the writer writes or compacts. The staged directory is a complete store;
it is opened and checked, then cut into chunks that go to the repository.
Segments and packs only grow while their inode lives (sealed ones never
change): the part of such a file that the parent backup took from the same
inode is not read again, only the bytes appended since. The log's index
checkpoint is not sent again either: the parent's checkpoint is handed to the
snapshot, which keeps it while it still opens the copied log (no compaction
since), so an incremental backup is the appended bytes plus its manifest.

Restore, verify and drill are in :mod:`memstrata.ops._restore`, rotation in
:mod:`memstrata.ops._rotate`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from memstrata.ops._repo import BackupError, Progress, Repository, file_digest, list_backups, open_repo

__all__ = ["create_backup"]

RECORDS_FILE = "records.msgpack"
CHECKPOINT_FILE = "log/CHECKPOINT"
MANIFEST_VERSION = 2  # 2: "digest" names the chunk digest; 1 (no "version"): SHA-256 chunks
_WORKERS = max(1, min(4, os.cpu_count() or 1))


# ------------------------------------------------------------- snapshot --

def _stage(store: Path, staging: Path, base: tuple[bytes, dict[str, int]] | None) -> dict[str, Any]:
    """A consistent copy of ``store`` in ``staging`` (:func:`memstrata.store.snapshot_store`), opened read-only
    and checked before anything is read from it; ``base``: the parent's checkpoint and append-only files."""
    from memstrata.store import snapshot_store

    if base is None:
        return snapshot_store(store, staging)
    return snapshot_store(store, staging, base_checkpoint=base[0], base_sources=base[1])


def _parent_checkpoint(repository: Repository, parent: dict[str, Any] | None) -> tuple[bytes, dict[str, int]] | None:
    """The parent's log checkpoint (its chunks fetched and checked) and the source inodes of its growing files."""
    if parent is None or parent.get("layout") != "files":
        return None
    entry = next((f for f in parent["files"] if f["path"] == CHECKPOINT_FILE), None)
    if entry is None:
        return None
    data = b"".join(repository.get_chunk(d) for d, _ in entry["chunks"])
    if len(data) != entry["size"]:
        return None
    return data, {f["path"]: f["ident"] for f in parent["files"] if f.get("ident") is not None}


def _reusable_prefix(repo: Repository, path: Path, size: int, old: dict[str, Any] | None, ident: int | None
                     ) -> list[list[Any]]:
    """The parent's chunks, when they are still this file's first bytes.

    Only for a file that only grows (a segment or pack) copied from the same
    inode as the parent's: its old bytes are a prefix of the new ones. Every
    chunk is taken (the last may be short: the bytes appended since follow it
    in new chunks), after re-hashing the first and the last against their
    digests (a guard against a recycled inode number).
    """
    if ident is None or old is None or old.get("ident") != ident or old["size"] > size or not old["chunks"]:
        return []
    chunks = old["chunks"]
    offsets = [0]
    for _d, n in chunks:
        offsets.append(offsets[-1] + n)
    with open(path, "rb") as f:
        for i in {0, len(chunks) - 1}:
            f.seek(offsets[i])
            if repo.digest(f.read(chunks[i][1])) != chunks[i][0]:
                return []
    return [list(c) for c in chunks]


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

def _chunk_work(repo: Repository, data: bytes, known: set[str], cctx_level: int = 1) -> tuple[str, int, bytes | None]:
    import zstandard

    digest = repo.digest(data)
    if digest in known:
        return digest, len(data), None
    return digest, len(data), zstandard.ZstdCompressor(level=cctx_level).compress(data)


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
            pending.append(pool.submit(_chunk_work, repo, data, known))
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
    store and scope (its parent), reads only what was appended to segments
    and packs since the parent (see :func:`_reusable_prefix`) and keeps the
    parent's log checkpoint while no compaction happened since; chunks the
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
        else open_repo(repo, create=not dry_run)
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
    base = _parent_checkpoint(repository, parent) if agent is None else None
    try:
        snap = _stage(store, staging, base)
        seq, append_only = int(snap["seq"]), dict(snap["append_only"])
        same_checkpoint = base is not None and snap["checkpoint"] == "base"
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
                # the part of a growing file the parent already holds is not read again, nor its kept checkpoint
                if p == CHECKPOINT_FILE and same_checkpoint and parent_files[p]["size"] == sizes[p]:
                    chunks = [list(c) for c in parent_files[p]["chunks"]]
                else:
                    chunks = _reusable_prefix(repository, staging / p, sizes[p], parent_files.get(p), ident[p])
                start = sum(n for _, n in chunks)
                if chunks:
                    stats["files_reused"] += 1
                    stats["bytes_reused"] += start
                    tick(start)
                if start < sizes[p]:
                    chunks += _upload_file(repository, staging / p, sizes[p], pool, tick, stats, dry_run, start)
                files.append({"path": p, "size": sizes[p], "ident": ident[p], "chunks": chunks,
                              "sha256": file_digest(chunks)})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if scratch:
            repository.fs.rm(repository.root, recursive=True)
    manifest = {
        "version": MANIFEST_VERSION,
        "digest": repository.digest_name,
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
        "checkpoint_kept": same_checkpoint,
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
