"""A backup repository on any fsspec file system: content-addressed chunks and snapshot manifests.

Layout under the repository root::

    memstrata-backup.json        format marker and chunk size
    chunks/ab/abcd...            zstd-compressed chunk, named by the SHA-256 of its raw bytes
    snapshots/<id>.json          one manifest per backup, written last (tmp name, then move)
    catalog.json                 every snapshot id with its manifest's digest (see ``_catalog``)

A backup is valid once its manifest exists; a process killed earlier leaves
only unreferenced chunks, which never affect other backups. Chunks are
immutable and shared between backups, so an incremental backup writes only
the chunks its parent does not already have.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import secrets
from typing import Any

import zstandard

from memstrata.errors import CorruptDataError, MemstrataError
from memstrata.ops._catalog import forget_snapshot, record_snapshot

__all__ = ["BackupError", "Repository"]

FORMAT = "memstrata-backup"
FORMAT_VERSION = 1
CHUNK_BYTES = 1 << 20


class BackupError(MemstrataError):
    """A backup repository or snapshot is missing, damaged or used wrongly."""


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec.core  # type: ignore[import-untyped]

    fs, root = fsspec.core.url_to_fs(url)
    return fs, root.rstrip("/") or "/"


class Repository:
    """A backup repository at ``url`` (a local path or any fsspec URL such as ``memory://b``).

    >>> repo = Repository.init("memory://doctest-repo")
    >>> digest = repo.put_chunk(b"hello")
    >>> repo.get_chunk(digest)
    b'hello'
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        self.url = os.fspath(url)
        self.fs, self.root = _filesystem(self.url)
        marker = self._path("memstrata-backup.json")
        if not self.fs.exists(marker):
            raise BackupError(f"repository: {self.url} is not a memstrata backup repository (no memstrata-backup.json)")
        try:
            meta = json.loads(self.fs.cat_file(marker))
            fmt, version, self.chunk_bytes = meta.get("format"), int(meta.get("version", 0)), int(meta["chunk_bytes"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptDataError(f"repository: {marker} is damaged (not the repository marker's JSON)") from exc
        if fmt != FORMAT or version > FORMAT_VERSION:
            raise BackupError(f"repository: {self.url} has format {fmt} v{version}; "
                              f"this memstrata reads {FORMAT} up to v{FORMAT_VERSION}")
        self._known: set[str] | None = None

    @classmethod
    def init(cls, url: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES) -> Repository:
        """Create the repository at ``url`` if it does not exist yet, and open it."""
        fs, root = _filesystem(os.fspath(url))
        marker = posixpath.join(root, "memstrata-backup.json")
        if not fs.exists(marker):
            if fs.exists(root) and fs.ls(root):
                raise BackupError(f"repository: {url} exists, is not empty and is not a backup repository")
            fs.makedirs(posixpath.join(root, "snapshots"), exist_ok=True)
            fs.makedirs(posixpath.join(root, "chunks"), exist_ok=True)
            body = {"format": FORMAT, "version": FORMAT_VERSION, "chunk_bytes": int(chunk_bytes)}
            fs.pipe_file(marker, json.dumps(body).encode())
        return cls(url)

    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def path_of(self, name: str) -> str:
        """The full path of ``name`` at the repository's root."""
        return self._path(name)

    def _chunk_path(self, digest: str) -> str:
        return self._path("chunks", digest[:2], digest)

    # ----------------------------------------------------------- chunks --

    def known_chunks(self) -> set[str]:
        """Digests of every chunk stored (listed once, then kept up to date by :meth:`put_chunk`)."""
        if self._known is None:
            base = self._path("chunks")
            self._known = {posixpath.basename(p) for p in self.fs.find(base) if not p.endswith(".tmp")}
        return self._known

    def put_chunk(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` (if new) and return its hex SHA-256."""
        digest = digest or hashlib.sha256(data).hexdigest()
        if digest in self.known_chunks():
            return digest
        self.write_compressed(digest, zstandard.ZstdCompressor(level=1).compress(data))
        return digest

    def write_compressed(self, digest: str, blob: bytes) -> None:
        """Store an already-compressed chunk under ``digest`` (temporary name, then move)."""
        path = self._chunk_path(digest)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        self.fs.pipe_file(tmp, blob)
        self.fs.mv(tmp, path)
        self.known_chunks().add(digest)

    def get_chunk(self, digest: str) -> bytes:
        """The raw bytes of chunk ``digest``, checked; ``CorruptDataError`` when missing or damaged."""
        path = self._chunk_path(digest)
        try:
            blob = self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise CorruptDataError(f"backup chunk {digest} is missing from {self.url}") from exc
        return self.decode_chunk(digest, blob)

    def decode_chunk(self, digest: str, blob: bytes) -> bytes:
        try:
            data = zstandard.ZstdDecompressor().decompress(blob)  # one per call: not shareable between threads
        except zstandard.ZstdError as exc:
            raise CorruptDataError(f"backup chunk {digest} in {self.url} is damaged: {exc}") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptDataError(f"backup chunk {digest} in {self.url} does not match its digest")
        return data

    def read_compressed(self, digest: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._chunk_path(digest)))
        except FileNotFoundError as exc:
            raise CorruptDataError(f"backup chunk {digest} is missing from {self.url}") from exc

    def remove_chunk(self, digest: str) -> None:
        self.fs.rm_file(self._chunk_path(digest))
        self.known_chunks().discard(digest)

    def chunk_bytes_stored(self, digests: set[str]) -> int:
        return int(sum(self.fs.size(self._chunk_path(d)) for d in digests))

    # -------------------------------------------------------- snapshots --

    @staticmethod
    def new_snapshot_id(created: float) -> str:
        import time

        return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(created)) + "-" + secrets.token_hex(3)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Publish a snapshot: the manifest (with its own digest) under a temporary name, then moved."""
        body = dict(manifest)
        body.pop("manifest_sha256", None)
        body["catalogued"] = True  # a missing catalog is damage from now on (see ``_catalog``)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        body["manifest_sha256"] = hashlib.sha256(canonical).hexdigest()
        path = self._path("snapshots", f"{manifest['id']}.json")
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        self.fs.pipe_file(tmp, json.dumps(body, sort_keys=True).encode())
        self.fs.mv(tmp, path)
        record_snapshot(self, manifest["id"], body["manifest_sha256"])

    def read_manifest(self, snapshot_id: str) -> dict[str, Any]:
        """The manifest of ``snapshot_id``, its own digest checked."""
        path = self._path("snapshots", f"{snapshot_id}.json")
        try:
            raw = self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise BackupError(f"snapshot: no backup {snapshot_id!r} in {self.url}") from exc
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise CorruptDataError(f"snapshot {snapshot_id}: manifest {path} is not valid JSON") from exc
        stated = body.pop("manifest_sha256", None)
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        if stated != hashlib.sha256(canonical).hexdigest():
            raise CorruptDataError(f"snapshot {snapshot_id}: manifest {path} does not match its digest")
        body["manifest_sha256"] = stated
        return dict(body)

    def snapshot_ids(self) -> list[str]:
        """Every published snapshot id, oldest first (ids sort by creation time)."""
        base = self._path("snapshots")
        if not self.fs.exists(base):
            return []
        names = [posixpath.basename(p) for p in self.fs.ls(base, detail=False)]
        return sorted(n[:-5] for n in names if n.endswith(".json"))

    def remove_manifest(self, snapshot_id: str) -> None:
        forget_snapshot(self, snapshot_id)  # first: a crash in between leaves an unlisted manifest, never a hole
        self.fs.rm_file(self._path("snapshots", f"{snapshot_id}.json"))
