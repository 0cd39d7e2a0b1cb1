"""The repository's catalog: which backups exist, recorded apart from the backups themselves.

A backup is its manifest file; a deleted manifest would simply not be listed,
and a verify over what is listed would say ok. So the repository also keeps
``catalog.json``: every published snapshot id with its manifest's digest,
replaced whole (temporary name, then move) after each backup and before each
removal. :func:`check_catalog` compares the two:

- a snapshot the catalog lists whose manifest is missing, or whose manifest
  has another digest, is damage (an error);
- a manifest the catalog does not list is what a backup interrupted between
  its manifest and the catalog leaves: reported as a warning, never lost;
- a catalog that is missing while a manifest says it was catalogued, or that
  fails its own digest, is damage.

Repositories written before the catalog existed have manifests without
``catalogued``; their first new backup writes the catalog.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from memstrata.errors import CorruptDataError

if TYPE_CHECKING:
    from memstrata.ops._repo import Repository

__all__ = ["CATALOG_NAME", "check_catalog", "forget_snapshot", "record_snapshot"]

log = logging.getLogger("memstrata.ops")

CATALOG_NAME = "catalog.json"


def _digest(entries: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_catalog(repo: Repository) -> dict[str, str] | None:
    """``{snapshot id: manifest digest}``, or None when there is no catalog; ``CorruptDataError`` when damaged."""
    path = repo.path_of(CATALOG_NAME)
    try:
        raw = repo.fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        body = json.loads(raw)
        entries = {str(k): str(v) for k, v in body["snapshots"].items()}
        stated = body["sha256"]
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        raise CorruptDataError(f"backup catalog {path} is damaged (not the catalog's JSON)") from exc
    if stated != _digest(entries):
        raise CorruptDataError(f"backup catalog {path} does not match its digest")
    return entries


def _write(repo: Repository, entries: dict[str, str]) -> None:
    path = repo.path_of(CATALOG_NAME)
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    repo.fs.pipe_file(tmp, json.dumps({"snapshots": entries, "sha256": _digest(entries)}, sort_keys=True).encode())
    repo.fs.mv(tmp, path)


def _entries_for_update(repo: Repository) -> dict[str, str]:
    try:
        entries = read_catalog(repo)
    except CorruptDataError as exc:
        log.warning("memstrata: %s; writing it afresh from the manifests present", exc)
        entries = None
    if entries is None:  # a new repository, or one from before the catalog: start from what is there
        entries = {}
    for sid in set(repo.snapshot_ids()) - entries.keys():  # and take in backups interrupted before their entry
        try:
            entries[sid] = repo.read_manifest(sid)["manifest_sha256"]
        except CorruptDataError:
            continue  # verify names it; the catalog only lists whole manifests
    return entries


def record_snapshot(repo: Repository, snapshot_id: str, manifest_sha256: str) -> None:
    """Add a just-published snapshot to the catalog."""
    entries = _entries_for_update(repo)
    entries[snapshot_id] = manifest_sha256
    _write(repo, entries)


def forget_snapshot(repo: Repository, snapshot_id: str) -> None:
    """Drop a snapshot from the catalog (before its manifest is removed)."""
    entries = _entries_for_update(repo)
    entries.pop(snapshot_id, None)
    _write(repo, entries)


def check_catalog(repo: Repository, manifests: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    """``(errors, warnings)`` comparing the catalog with ``manifests`` (id -> manifest, every whole one present).

    ``manifests`` holds the manifests that were read whole; ids present but
    damaged are the caller's errors already, so they are not repeated here.
    """
    errors: list[str] = []
    warnings: list[str] = []
    present = set(repo.snapshot_ids())
    try:
        entries = read_catalog(repo)
    except CorruptDataError as exc:
        return [str(exc)], warnings
    if entries is None:
        if any(m.get("catalogued") for m in manifests.values()):
            errors.append(f"backup catalog {repo.path_of(CATALOG_NAME)} is missing; the backups' manifests say it was written")
        return errors, warnings
    for sid, digest in sorted(entries.items()):
        if sid not in present:
            errors.append(f"snapshot {sid}: listed in the catalog, but its manifest is missing from {repo.url}")
        elif sid in manifests and manifests[sid].get("manifest_sha256") != digest:
            errors.append(f"snapshot {sid}: its manifest is not the one the catalog recorded (replaced by another copy?)")
    for sid in sorted(present - entries.keys()):
        warnings.append(f"snapshot {sid}: not in the catalog (a backup interrupted before its catalog entry?)")
    return errors, warnings
