"""Rebuilding a log's index from its self-describing records (``memstrata repair``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from memstrata._tail import read_tail
from memstrata.errors import CorruptDataError
from memstrata.tiers._counts import COUNTS_KEY
from memstrata.tiers._segments import (
    F_DEL,
    F_END,
    F_HEAD,
    F_SEAL,
    next_valid_record,
    scan_records,
    segment_id_of,
    segment_name,
)

__all__ = ["repair_log", "scan_log"]


def scan_log(directory: Path, seed: int) -> tuple[dict[bytes, tuple[int, int]], int, list[tuple[str, int]]]:
    """Replay every segment file in id order, skipping damage.

    Returns ``(key -> (segment id, offset), highest sequence number, damaged (file, offset) list)``;
    a batch counts only when its ``END`` record was read.
    """
    index: dict[bytes, tuple[int, int]] = {}
    damaged: list[tuple[str, int]] = []
    seq = 0
    try:
        names = os.listdir(directory)
    except OSError:
        names = []
    for seg in sorted(s for s in map(segment_id_of, names) if s is not None):
        path = directory / segment_name(seg)
        try:
            data = path.read_bytes()
        except OSError:
            damaged.append((str(path), 0))
            continue
        pos: int | None = 0
        pending: list[Any] = []
        while pos is not None and pos < len(data):
            nxt = None
            for item in scan_records(data, pos, seed):
                if isinstance(item, int):
                    damaged.append((str(path), item))
                    pending = []
                    nxt = next_valid_record(data, item, seed)
                    break
                if item.flags & (F_HEAD | F_SEAL):
                    continue
                pending.append(item)
                if item.flags & F_END:
                    for r in pending:
                        if r.flags & F_DEL:
                            index.pop(r.key, None)
                        else:
                            index[r.key] = (seg, r.offset)
                    seq = max(seq, item.seq)
                    pending = []
            pos = nxt
    return index, seq, damaged


def finish_swap(directory: Path) -> None:
    """Complete a swap of ``directory`` for its rebuilt copy that a crash interrupted (idempotent)."""
    from memstrata.tiers._checkpoint import CHECKPOINT_NAME

    staging = directory.with_name(directory.name + ".repair")
    retired = directory.with_name(directory.name + ".old")
    if not directory.exists() and (staging / CHECKPOINT_NAME).exists():
        os.replace(staging, directory)
    if directory.exists():
        for leftover in (staging, retired):
            if leftover.exists():
                shutil.rmtree(leftover)


def repair_log(directory: Path, seed: int, durability: str = "normal") -> dict[str, Any]:
    """Rebuild ``directory``'s log from its records into a new directory, then swap it in.

    Steps, each leaving a readable state after a crash: write ``<dir>.repair``
    completely (segments and checkpoint, fsynced); rename ``<dir>`` to
    ``<dir>.old``; rename ``<dir>.repair`` to ``<dir>``; delete ``<dir>.old``.
    """
    from memstrata.tiers._log import LogBackend

    index, seq, damaged = scan_log(directory, seed)
    try:
        tail = read_tail(directory)
    except CorruptDataError:
        tail = None
    staging = directory.with_name(directory.name + ".repair")
    retired = directory.with_name(directory.name + ".old")
    for leftover in (staging, retired):
        if leftover.exists():
            shutil.rmtree(leftover)
    fresh = LogBackend(staging, durability)
    recovered = 0
    by_segment: dict[int, list[tuple[bytes, int]]] = {}
    for key, (seg, off) in index.items():
        if key != COUNTS_KEY:  # saved counters describe the old log; the store recounts after a repair
            by_segment.setdefault(seg, []).append((key, off))
    try:
        for seg, items in sorted(by_segment.items()):
            data = (directory / segment_name(seg)).read_bytes()
            batch: dict[bytes, bytes] = {}
            for key, off in items:
                for item in scan_records(data, off, seed):
                    if not isinstance(item, int) and item.key == key:
                        batch[key] = item.value
                        recovered += 1
                    break
                if len(batch) >= 1000:
                    fresh.apply(batch)
                    batch = {}
            if batch:
                fresh.apply(batch)
        fresh.flush()
    finally:
        fresh.close()
    n_old = sum(1 for p in directory.iterdir() if segment_id_of(p.name) is not None)
    os.replace(directory, retired)
    os.replace(staging, directory)
    shutil.rmtree(retired)
    return {
        "keys_recovered": recovered,
        "highest_seq_seen": seq,
        # batches the tail marker proves were committed after the log's end: their writes are lost
        "batches_missing": max(0, tail.floor() - seq) if tail is not None else 0,
        "damaged_records": [f"{f} at offset {o}" for f, o in damaged],
        "segments_rewritten": n_old,
    }
