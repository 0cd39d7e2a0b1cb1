"""Rotation of backups: restic's ``forget`` policies, then the chunks no remaining backup uses are deleted."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from memstrata.ops._repo import Repository, list_backups, open_repo

__all__ = ["rotate_backups"]


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
    repository = open_repo(repo)
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
