"""Persistence of VectorMemory: snapshots (save / load) and durable directories (open, log, checkpoint, compact)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memstrata._locks import WriterLock
from memstrata._tail import TAIL_NAME, Tail, TailMarker, read_tail
from memstrata.errors import CorruptDataError
from memstrata.vectors._directory import (
    CURRENT,
    LOCK,
    Current,
    log_path,
    originals_path,
    read_current,
    remove_other_generations,
    state_path,
    write_current,
)
from memstrata.vectors._format import Blocks, read_state, write_state
from memstrata.vectors._log import LogWriter, read_log
from memstrata.vectors._originals import Originals

if TYPE_CHECKING:
    from memstrata.vectors._memory import VectorMemory
    from memstrata.vectors._state import IndexState

DURABILITY_LEVELS = ("none", "normal", "full")
#: a durable memory checkpoints once its log and new originals outgrow this and the last checkpoint
CHECKPOINT_MIN_BYTES = 64 << 20
_SETTINGS = ("dim", "codec", "metric", "rescore", "shortlist")


class Durable:
    """The log side of a durable memory: its directory, generation and log writer (None for a reader)."""

    def __init__(
        self, generation: int, durability: str, log: LogWriter | None, state_bytes: int, marker: TailMarker | None = None
    ) -> None:
        self.generation = generation
        self.durability = durability
        self.log = log
        self.state_bytes = state_bytes
        self.marker = marker  # the writer's tail marker (see ``memstrata._tail``)

    def append(self, seq: int, record: dict[str, Any]) -> None:
        assert self.log is not None
        self.log.append(seq, record, sync=self.durability == "full")
        if self.marker is not None:
            self.marker.record(seq, synced=self.durability == "full")

    def wants_checkpoint(self, memory: IndexState) -> bool:
        tail = memory._originals.n_tail * 4 * memory.dim if memory._originals is not None else 0
        return self.log is not None and self.log.size + tail > max(CHECKPOINT_MIN_BYTES, self.state_bytes)


# ------------------------------------------------------------------ state <-> file


def header_of(memory: IndexState) -> dict[str, Any]:
    return {
        "format": "memstrata.VectorMemory",
        **{name: getattr(memory, name) for name in _SETTINGS},
        "seq": memory.seq,
        "next_id": memory._next_id,
        "metadata": [[i, m] for i, m in memory._metadata.items()],
        **({"target_recall": memory.target_recall} if memory.rescore == "auto" else {}),
    }


def sections_of(memory: IndexState) -> dict[str, np.ndarray | Blocks]:
    """The arrays of a compacted memory; the originals are streamed in row order, never gathered whole."""
    memory._compact_rows()
    sections: dict[str, np.ndarray | Blocks] = {"ids": memory._ids, "codes": memory._codes}
    for name in ("_bits", "_row_bias", "_scales", "_offsets", "_center"):
        value = getattr(memory, name)
        if value is not None:
            sections[name.lstrip("_")] = value
    if memory._originals is not None:
        rows, originals = memory._orig_rows, memory._originals
        assert rows is not None
        sections["originals"] = Blocks(np.float32, (rows.shape[0], memory.dim), lambda a, b: originals.take(rows[a:b]))
    return sections


def _blank(cls: type[VectorMemory], settings: dict[str, Any]) -> VectorMemory:
    memory = cls.__new__(cls)
    memory._lock = threading.RLock()
    memory._init(settings["dim"], settings["codec"], settings["metric"], settings["rescore"], settings["shortlist"])
    return memory


def _restore(memory: VectorMemory, header: dict[str, Any], arrays: dict[str, np.ndarray], path: Path) -> np.ndarray | None:
    """Fill ``memory`` from a state file's arrays; returns the mapped originals (or None)."""
    try:
        memory._ids = arrays["ids"]
        memory._codes = arrays["codes"]
        n = memory._ids.shape[0]
        if memory._codes.shape != (n, memory._width):
            raise CorruptDataError(f"{path}: codes of shape {memory._codes.shape}, expected {(n, memory._width)}")
        memory._alive = np.ones(n, bool)
        for name in ("bits", "row_bias", "scales", "offsets", "center"):
            if name in arrays:
                setattr(memory, "_" + name, arrays[name])
        memory.seq = int(header["seq"])
        memory._next_id = int(header["next_id"])
        for i, meta in header["metadata"]:
            memory._set_metadata(int(i), meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptDataError(f"{path}: malformed VectorMemory header ({exc})") from exc
    memory._columns.append([memory._metadata.get(i) for i in memory._ids.tolist()], memory._ids)
    base = arrays.get("originals")
    if memory.rescore is not None:
        if base is None or base.shape != (n, memory.dim):
            raise CorruptDataError(f"{path}: expected {n} rows of float originals, got {None if base is None else base.shape}")
        memory._orig_rows = np.arange(n, dtype=np.int64)
    return base


# ------------------------------------------------------------------ snapshots


def private_originals(memory: VectorMemory, path: Any, base: np.ndarray | None = None) -> Originals:
    """Originals for a memory in RAM: a temporary tail file, or a fresh file at ``path`` (locked to this instance)."""
    if path is None:
        return Originals(memory.dim, base=base)
    path = Path(path)
    memory._locks.append(WriterLock(path.with_name(path.name + ".lock"), "originals_path"))
    fresh = path.with_name(f".{path.name}.new-{os.getpid()}")
    fresh.write_bytes(b"")
    os.replace(fresh, path)  # a new file: an instance still mapping the old one keeps its bytes
    return Originals(memory.dim, base=base, tail_path=path)


def save_snapshot(memory: VectorMemory, path: Path) -> None:
    write_state(path, header_of(memory), sections_of(memory), sync=True)


def _from_state(
    cls: type[VectorMemory], header: dict[str, Any], arrays: dict[str, np.ndarray], path: Path
) -> tuple[VectorMemory, np.ndarray | None]:
    """A memory with the settings and rows of a snapshot or checkpoint; also the originals it maps, if any."""
    try:
        memory = _blank(cls, {name: header[name] for name in _SETTINGS})
        memory.target_recall = float(header.get("target_recall", 0.99))
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptDataError(f"{path}: malformed VectorMemory header ({exc})") from exc
    return memory, _restore(memory, header, arrays, path)


def load_snapshot(cls: type[VectorMemory], path: Path, originals: Any) -> VectorMemory:
    header, arrays = read_state(path)
    memory, base = _from_state(cls, header, arrays, path)
    if memory.rescore is not None:
        memory._originals = private_originals(memory, originals, base)
    return memory


def compact_files(memory: VectorMemory) -> None:
    """After ``_compact_rows``: rewrite the files so no byte of a deleted row remains in them."""
    if memory._durable is not None:
        checkpoint(memory)
        return
    old = memory._originals
    if old is None:
        return
    rows = memory._orig_rows
    assert rows is not None
    fresh = None if old.owned else old.tail_path.with_name(f".{old.tail_path.name}.new-{os.getpid()}")
    new = Originals(memory.dim, tail_path=fresh)
    for start in range(0, rows.shape[0], 16384):
        new.append(old.take(rows[start : start + 16384]), sync=False)
    new.sync()
    if fresh is not None:
        os.replace(fresh, old.tail_path)  # never rewrite the file an old map may read
        new.tail_path = old.tail_path
    old.close()
    memory._originals = new
    memory._orig_rows = np.arange(rows.shape[0], dtype=np.int64)


# ------------------------------------------------------------------ durable directories


def open_directory(
    cls: type[VectorMemory], directory: Path, settings: dict[str, Any], *, read_only: bool, durability: str
) -> VectorMemory:
    if durability not in DURABILITY_LEVELS:
        raise ValueError(f"durability: expected one of {', '.join(DURABILITY_LEVELS)}, got {durability!r}")
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"VectorMemory.open: {directory} is a file; expected a directory (created if missing)")
    if read_only:
        for _attempt in range(10):
            current = read_current(directory) if directory.is_dir() else None
            if current is None:
                raise FileNotFoundError(f"VectorMemory.open: {directory} holds no VectorMemory to open read-only")
            try:
                return _open_generation(cls, directory, current, settings, None, durability)
            except FileNotFoundError:
                continue  # the writer checkpointed between our reads: read CURRENT again
        raise CorruptDataError(f"{directory}: the files CURRENT names keep disappearing")
    directory.mkdir(parents=True, exist_ok=True)
    lock = WriterLock(directory / LOCK, "VectorMemory.open")
    try:
        current = read_current(directory)
        if current is None:
            memory = _create(cls, directory, settings, durability)
        else:
            try:
                memory = _open_generation(cls, directory, current, settings, lock, durability)
            except FileNotFoundError as exc:
                raise CorruptDataError(
                    f"{directory}: a file of generation {current.generation} is missing ({exc.filename})"
                ) from exc
    except BaseException:
        lock.release()
        raise
    memory._locks.append(lock)
    return memory


def _create(cls: type[VectorMemory], directory: Path, settings: dict[str, Any], durability: str) -> VectorMemory:
    if settings["dim"] is None:
        raise ValueError(f"dim: {directory} holds no VectorMemory yet; pass dim= (and codec=, metric=, ...) to create one")
    defaults = {"codec": "int8", "metric": "cosine"}
    memory = _blank(cls, {k: defaults.get(k) if v is None else v for k, v in settings.items()})
    sync = durability != "none"
    remove_other_generations(directory, 0)
    if memory.rescore is not None:
        memory._originals = Originals(memory.dim, tail_path=originals_path(directory, 0))
    size = write_state(state_path(directory, 0), header_of(memory), sections_of(memory), sync=sync)
    log = LogWriter(log_path(directory, 0), 0, create=True)
    write_current(directory, 0, memory.seq, log.size, sync=sync)
    memory.path = directory
    memory._durable = Durable(0, durability, log, size, TailMarker(directory, memory.seq, memory.seq, sync=sync))
    return memory


def _open_generation(
    cls: type[VectorMemory], directory: Path, current: Current, settings: dict[str, Any], lock: Any, durability: str
) -> VectorMemory:
    generation = current.generation
    path = state_path(directory, generation)
    header, arrays = read_state(path)
    for name in _SETTINGS:
        wanted = settings[name]
        if wanted is not None and header.get(name) != wanted:
            raise ValueError(f"{name}: the VectorMemory at {directory} has {name}={header.get(name)!r}, got {wanted!r}")
    memory, base = _from_state(cls, header, arrays, path)
    log_file = log_path(directory, generation)
    tail = read_tail(directory)  # before the log: the writer appends to the log first, then to the marker
    records = list(read_log(log_file, generation))
    if memory.rescore is not None:
        n_base = 0 if base is None else base.shape[0]
        ends = [r["orig"][0] + r["orig"][1] for _, r, _ in records if "orig" in r]
        memory._originals = Originals(
            memory.dim, base=base, tail_path=originals_path(directory, generation),
            tail_rows=max(ends, default=n_base) - n_base, writable=lock is not None,
        )
    try:
        for seq, record, _ in records:
            if seq != memory.seq + 1:
                raise CorruptDataError(f"{log_file}: record with sequence number {seq} follows {memory.seq}")
            if "orig" in record:
                assert memory._originals is not None
                memory._originals.verify(*record["orig"])
            memory._apply(record)
        _check_floor(log_file, current, records, memory.seq, tail)
    except (KeyError, TypeError, ValueError, IndexError, AssertionError) as exc:
        memory.close()
        raise CorruptDataError(f"{log_file}: a log record does not fit the memory ({exc!r})") from exc
    except BaseException:
        memory.close()
        raise
    memory.path = directory
    memory.read_only = lock is None
    log = marker = None
    if lock is not None:
        log = LogWriter(log_file, generation, create=False, valid_bytes=records[-1][2] if records else None)
        remove_other_generations(directory, generation)
        synced = max(current.seq or 0, tail.synced if tail is not None else 0)
        marker = TailMarker(directory, memory.seq, synced, sync=durability != "none")
    memory._durable = Durable(generation, durability, log, path.stat().st_size, marker)
    return memory


def _check_floor(
    log_file: Path, current: Current, records: list[tuple[int, Any, int]], last_seq: int, tail: Tail | None
) -> None:
    """The log reaches the floors ``CURRENT`` and the tail marker record, and ends where ``CURRENT`` says."""
    if current.seq is not None and current.log_bytes is not None:  # a format-1 CURRENT records no floor
        if last_seq < current.seq:
            raise CorruptDataError(
                f"{log_file}: ends at sequence number {last_seq}, but {CURRENT} records {current.seq} as committed: "
                "the log was cut short or replaced by an older copy"
            )
        end = next((e for s, _, e in records if s == current.seq), None)
        if end is not None and end != current.log_bytes:
            raise CorruptDataError(
                f"{log_file}: record {current.seq} ends at byte {end}, but {CURRENT} records {current.log_bytes}: "
                "the log is not the one CURRENT was written with"
            )
    if tail is not None and last_seq < tail.floor():
        raise CorruptDataError(
            f"{log_file}: ends at sequence number {last_seq}, but {tail.floor()} was committed (the tail marker "
            f"{log_file.parent / TAIL_NAME} says so): the log was cut short or replaced by an older copy"
        )


def checkpoint(memory: IndexState) -> None:
    """Write the state to generation g+1 (state, empty log, empty originals tail), switch CURRENT, drop g."""
    durable, directory = memory._durable, memory.path
    assert durable is not None and durable.log is not None and directory is not None
    generation = durable.generation + 1
    sync = durable.durability != "none"
    path = state_path(directory, generation)
    size = write_state(path, header_of(memory), sections_of(memory), sync=sync)
    log = LogWriter(log_path(directory, generation), generation, create=True)
    if sync:
        log.sync()
    originals = None
    if memory._originals is not None:
        _, arrays = read_state(path)  # verifies what was written, and maps the originals from it
        originals = Originals(memory.dim, base=arrays["originals"], tail_path=originals_path(directory, generation))
    write_current(directory, generation, memory.seq, log.size, sync=sync)
    durable.log.close()
    durable.log, durable.generation, durable.state_bytes = log, generation, size
    if originals is not None:
        assert memory._originals is not None
        memory._originals.close()
        memory._originals = originals
        memory._orig_rows = np.arange(memory._ids.shape[0], dtype=np.int64)


def close_durable(memory: VectorMemory) -> None:
    durable = memory._durable
    if durable is None or durable.log is None:
        return
    if durable.durability != "none":
        if memory._originals is not None:
            memory._originals.sync()
        durable.log.sync()
        if durable.marker is not None:
            durable.marker.record(memory.seq, synced=True)
    assert memory.path is not None
    # the floor: a log found shorter than this on a later open was damaged, not cut by a crash
    write_current(memory.path, durable.generation, memory.seq, durable.log.size, sync=durable.durability != "none")
    durable.log.close()
    if durable.marker is not None:
        durable.marker.close()
