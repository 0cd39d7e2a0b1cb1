"""The log's index checkpoint: every live key's location, written atomically.

Layout, version 3 (little endian)::

    "MSCK" | version u16 | reserved u16 | seq u64 | live keys u64 | tail segment u32 | tail offset u64
    segments u32 | (segment id u32, size u64) * segments | zeros to a multiple of 8 bytes
    fingerprint mask u32 | reserved u32 | hashed keys u64 (h)
    locations i64[h] | fingerprints u32[h]
    named key lengths u16[live - h] | named locations i64[live - h] | named keys (concatenated)
    digest (16 bytes) of everything before it

Most keys are kept by fingerprint only (:mod:`memstrata._native.keyindex`:
the arrays are the table's own, so loading is an array copy); the few "named"
keys (metadata and dictionaries, scanned by prefix) by their bytes.
Version 2 listed every key by its bytes (key lengths u16[live] | locations
i64[live] | keys, after the segments); it still loads.

A location is ``segment id << 32 | offset``. The sequence number and the key
count are also implied by the log itself, so :meth:`LogBackend.integrity_check`
compares both. The file is written to a temporary name, fsynced and renamed,
so it is either the old or the new checkpoint, never a mix.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from memstrata.errors import CorruptDataError
from memstrata.tiers._segments import fsync_dir

__all__ = ["CHECKPOINT_NAME", "Checkpoint", "load_checkpoint", "parse_checkpoint", "write_checkpoint"]

CHECKPOINT_NAME = "CHECKPOINT"
MAGIC = b"MSCK"
VERSION = 3
HEAD = struct.Struct("<4sHHQQIQI")
SEGMENT = struct.Struct("<IQ")
TABLE = struct.Struct("<IIQ")  # fingerprint mask, reserved, hashed keys
ALL_BITS = 0xFFFFFFFF


def _empty(dtype: str) -> np.ndarray:
    return np.empty(0, dtype=dtype)


@dataclass
class Checkpoint:
    """A checkpoint's contents: ``named`` keys by their bytes, the others as fingerprint/location arrays.

    A version-2 file lists every key in ``named`` (``fingerprints`` empty).
    """

    seq: int
    tail_segment: int
    tail_offset: int
    segments: list[tuple[int, int]]
    named: dict[bytes, int] = field(default_factory=dict)
    fingerprints: np.ndarray = field(default_factory=lambda: _empty("<u4"))
    locations: np.ndarray = field(default_factory=lambda: _empty("<i8"))
    mask: int = ALL_BITS
    version: int = VERSION


def _repair_hint(directory: Path) -> str:
    store = directory.parent
    return f"run `memstrata repair {store}` (or MemoryStore.repair({str(store)!r})) to rebuild it from the segment files"


def write_checkpoint(directory: Path, ck: Checkpoint, sync: bool = True) -> int:
    """Write ``ck`` atomically (format version 3); returns the file's size."""
    from memstrata._native.hashing import digest

    keys = list(ck.named)
    klens = np.fromiter((len(k) for k in keys), dtype="<u2", count=len(keys))
    locs = np.fromiter(ck.named.values(), dtype="<i8", count=len(keys))
    n_hashed = len(ck.fingerprints)
    head = HEAD.pack(MAGIC, VERSION, 0, ck.seq, n_hashed + len(keys), ck.tail_segment, ck.tail_offset, len(ck.segments))
    segs = b"".join(SEGMENT.pack(s, n) for s, n in ck.segments)
    parts = [
        head,
        segs,
        bytes(-(len(head) + len(segs)) % 8),
        TABLE.pack(ck.mask, 0, n_hashed),
        np.ascontiguousarray(ck.locations, dtype="<i8").tobytes(),
        np.ascontiguousarray(ck.fingerprints, dtype="<u4").tobytes(),
        klens.tobytes(),
        locs.tobytes(),
        b"".join(keys),
    ]
    body = b"".join(parts)
    data = body + digest(body)
    tmp = directory / (CHECKPOINT_NAME + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        from memstrata.tiers._segments import write_all

        write_all(fd, data, 0, str(tmp))
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / CHECKPOINT_NAME)
    if sync:
        fsync_dir(directory)
    return len(data)


def load_checkpoint(directory: Path, *, with_index: bool = True) -> Checkpoint:
    """Read and check the checkpoint; ``CorruptDataError`` naming the file and the repair command.

    ``with_index=False`` checks the digest and reads the segment list only (no key or location).
    """
    path = directory / CHECKPOINT_NAME
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CorruptDataError(f"the index checkpoint {path} cannot be read ({exc.strerror}); {_repair_hint(directory)}") from exc
    return parse_checkpoint(data, path, with_index=with_index)


def parse_checkpoint(data: bytes, path: Path, *, with_index: bool = True) -> Checkpoint:
    """The checkpoint held by ``data`` (the bytes of the file ``path``, named in errors); see :func:`load_checkpoint`."""
    from memstrata._native.hashing import digest

    directory = path.parent
    bad = f"the index checkpoint {path} is damaged"
    if len(data) < HEAD.size + 16 or digest(data[:-16]) != data[-16:]:
        raise CorruptDataError(f"{bad} (checksum mismatch or truncated); {_repair_hint(directory)}")
    magic, version, _r, seq, n, tail_seg, tail_off, n_segs = HEAD.unpack_from(data)
    if magic != MAGIC:
        raise CorruptDataError(f"{bad} (not a checkpoint); {_repair_hint(directory)}")
    if version > VERSION:
        raise CorruptDataError(f"the index checkpoint {path} has format version {version}; this memstrata reads up to {VERSION}")
    pos = HEAD.size
    segments = [(int(s), int(z)) for s, z in (SEGMENT.unpack_from(data, pos + i * SEGMENT.size) for i in range(n_segs))]
    pos += n_segs * SEGMENT.size
    if not with_index:
        return Checkpoint(seq, tail_seg, tail_off, segments, version=version)
    end = len(data) - 16
    sizes_wrong = CorruptDataError(f"{bad} (its sizes do not add up); {_repair_hint(directory)}")
    mask, n_hashed, fps, locs = ALL_BITS, 0, _empty("<u4"), _empty("<i8")
    if version >= 3:
        pos += -pos % 8
        if pos + TABLE.size > end:
            raise sizes_wrong
        mask, _r, n_hashed = TABLE.unpack_from(data, pos)
        pos += TABLE.size
        if n_hashed > n or pos + 12 * n_hashed > end:
            raise sizes_wrong
        locs = np.frombuffer(data, dtype="<i8", count=n_hashed, offset=pos)
        fps = np.frombuffer(data, dtype="<u4", count=n_hashed, offset=pos + 8 * n_hashed)
        pos += 12 * n_hashed
    n_named = n - n_hashed
    if pos + 10 * n_named > end:
        raise sizes_wrong
    klens = np.frombuffer(data, dtype="<u2", count=n_named, offset=pos).astype(np.int64)
    pos += 2 * n_named
    named_locs = np.frombuffer(data, dtype="<i8", count=n_named, offset=pos)
    pos += 8 * n_named
    ends = np.cumsum(klens) + pos
    if (n_named and int(ends[-1]) != end) or (not n_named and pos != end):
        raise sizes_wrong
    starts = (ends - klens).tolist()
    keys = [data[a:b] for a, b in zip(starts, ends.tolist())]
    named = dict(zip(keys, named_locs.tolist()))
    if len(named) != n_named:
        raise CorruptDataError(f"{bad} (a key is listed twice); {_repair_hint(directory)}")
    return Checkpoint(seq, tail_seg, tail_off, segments, named, fps, locs, mask, version)
