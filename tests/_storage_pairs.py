"""Two tiered storages fed the same writes: one with the native write paths, one through the Python plan.

The plan (``TieredStorage._plan_write``) is the reference of every native
write path (``_write_new``, ``_write_superseding``): given the same writes
and the same clock, both stores must leave byte-equal segment files and
equal counters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memstrata.codecs import get_codec
from memstrata.tiers import LogBackend, TieredStorage

COUNTERS = ("_items", "_stored", "_unique", "_n_blobs", "_n_keys", "_logical", "_n_tombstones", "_n_garbage", "_seq")
CONTENTS = [get_codec("zstd").encode({"text": f"content {i} " * (i % 5 + 1), "i": i}) for i in range(12)]


def planned_only(ts: TieredStorage) -> TieredStorage:
    """``ts`` with its native write paths declined: every write takes the plan."""
    ts._write_new = (  # type: ignore[method-assign]
        lambda seq, key, kb, frame, make, t, pin, d, rl, hv: ts._write_planned(
            seq, key, kb, frame, make, t, pin, d, rl, hv, None, True))
    ts._write_superseding = (  # type: ignore[method-assign]
        lambda seq, key, kb, frame, make, t, pin, d, rl, hv, old: ts._write_planned(
            seq, key, kb, frame, make, t, pin, d, rl, hv, old, False))
    return ts


def storage(path: Path, *, planned: bool, segment_max_bytes: int = 1 << 20, clock: list[float] | None = None,
            **kwargs: Any) -> tuple[TieredStorage, list[float]]:
    """A storage on a segment log at ``path`` with the clock ``now[0]`` (``planned``: through the plan only)."""
    now = [1000.0] if clock is None else clock
    ts = TieredStorage(LogBackend(path, "none", segment_max_bytes=segment_max_bytes), hot_max_bytes=2000,
                       clock=lambda: now[0], **kwargs)
    return (planned_only(ts) if planned else ts), now


def segment_files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.name.startswith("seg-")}


def assert_same_state(native: TieredStorage, planned: TieredStorage) -> None:
    """Equal counters and statistics (the plan's commit is the reference of the RAM changes)."""
    for name in COUNTERS:
        assert getattr(native, name) == getattr(planned, name), name
    assert native.statistics() == planned.statistics()


def entry_and_blob(ts: TieredStorage, key: str) -> tuple[bytes, bytes]:
    """The entry record of str ``key`` and the blob record it names."""
    entry = ts.backend.get(b"ks" + key.encode())
    assert entry is not None
    blob = ts.backend.get(b"a" + entry[9:25])
    assert blob is not None
    return entry, blob
