"""The ``.msvm`` file: one VectorMemory state (a snapshot or a checkpoint), checksummed section by section.

Layout (format version 1, unchanged since the first release): magic
``MSVECMEM``, format version, header length and header CRC-32 (``<8sIII``); a
JSON header (settings, sequence number, metadata, and per array its dtype,
shape, offset, size and CRC-32); zero padding to 64 bytes; then the arrays,
each padded with zeros to a multiple of 64 bytes. The file ends where the
last section does, so every byte is covered by a checksum, a zero-padding
check or the length check. No pickle.

The float ``originals`` section (memories with ``rescore``) is not read into
RAM: it is mapped from the file (after its checksum is verified), so a
loaded memory keeps one copy of those bytes, on disk.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from memstrata.errors import CorruptDataError

MAGIC = b"MSVECMEM"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIII")  # magic, format version, header length, header crc32
_ALIGN = 64
#: bytes checksummed per step when verifying a mapped section (bounds the RSS of a verify)
_CRC_STEP = 8 << 20


def _padded(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def sync_directory(path: Path) -> None:
    """fsync a directory, so a rename or unlink in it survives power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Blocks:
    """A section too large to gather in RAM: ``read(start, stop)`` returns rows ``start:stop``."""

    def __init__(self, dtype: Any, shape: tuple[int, ...], read: Callable[[int, int], np.ndarray], step: int = 16384):
        self.dtype, self.shape, self.read, self.step = np.dtype(dtype), shape, read, step
        self.nbytes = int(np.prod(shape)) * self.dtype.itemsize

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, self.shape[0], self.step):
            yield np.ascontiguousarray(self.read(start, min(self.shape[0], start + self.step)), self.dtype)


def write_state(
    path: Path, header: dict[str, Any], sections: dict[str, np.ndarray | Blocks], *, sync: bool = True
) -> int:
    """Write ``header`` + ``sections`` to ``path`` atomically (temporary file, fsync, rename); returns its size.

    The file at ``path``, if any, is replaced, never rewritten: an instance
    that maps it keeps reading the old bytes.
    """
    layout: list[dict[str, Any]] = []
    offset = 0
    arrays = [a if isinstance(a, Blocks) else np.ascontiguousarray(a) for a in sections.values()]
    for name, arr in zip(sections, arrays):
        crc = 0
        for block in arr if isinstance(arr, Blocks) else [arr]:
            crc = zlib.crc32(block.data.cast("B"), crc) if block.nbytes else crc
        layout.append(
            {
                "name": name,
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "offset": offset,
                "nbytes": int(arr.nbytes),
                "crc32": crc,
            }
        )
        offset += _padded(arr.nbytes)
    header_bytes = json.dumps({**header, "sections": layout}, separators=(",", ":")).encode()
    data_start = _padded(_PREFIX.size + len(header_bytes))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), zlib.crc32(header_bytes)))
            f.write(header_bytes)
            f.write(b"\0" * (data_start - _PREFIX.size - len(header_bytes)))
            for entry, arr in zip(layout, arrays):
                for block in arr if isinstance(arr, Blocks) else [arr]:
                    if block.nbytes:
                        f.write(block.data.cast("B"))
                f.write(b"\0" * (_padded(entry["nbytes"]) - entry["nbytes"]))
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if sync:
        sync_directory(path.parent)
    return data_start + offset


def read_state(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify a ``.msvm`` file: ``(header, arrays)``; ``arrays["originals"]`` is a read-only map.

    Raises
    ------
    memstrata.CorruptDataError
        Bad magic, version, header, padding, sizes or checksum.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < _PREFIX.size:
            raise CorruptDataError(f"{path}: too short for a VectorMemory file ({size} bytes)")
        mapped = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)
    data = memoryview(mapped)
    magic, version, header_len, header_crc = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CorruptDataError(f"{path}: not a VectorMemory file (bad magic {magic!r})")
    if version != FORMAT_VERSION:
        raise CorruptDataError(f"{path}: unsupported VectorMemory format version {version}")
    header_bytes = bytes(data[_PREFIX.size : _PREFIX.size + header_len])
    if len(header_bytes) != header_len or zlib.crc32(header_bytes) != header_crc:
        raise CorruptDataError(f"{path}: header checksum mismatch")
    try:
        header = json.loads(header_bytes)
        data_start = _padded(_PREFIX.size + header_len)
        # every byte is accounted for: header padding and section padding must be zero
        # and the file must end where the last section does, so no flipped byte goes unseen
        if bytes(data[_PREFIX.size + header_len : data_start]).strip(b"\0"):
            raise CorruptDataError(f"{path}: non-zero bytes in header padding")
        expected_end = data_start
        for entry in header["sections"]:
            expected_end = data_start + int(entry["offset"]) + _padded(int(entry["nbytes"]))
            if bytes(data[data_start + int(entry["offset"]) + int(entry["nbytes"]) : expected_end]).strip(b"\0"):
                raise CorruptDataError(f"{path}: non-zero bytes in the padding after section {entry['name']!r}")
        if size != expected_end:
            raise CorruptDataError(f"{path}: file is {size} bytes, expected {expected_end}")
        arrays: dict[str, np.ndarray] = {}
        for entry in header["sections"]:
            start = data_start + int(entry["offset"])
            stop = start + int(entry["nbytes"])
            dtype = np.dtype(entry["dtype"])
            shape = tuple(int(s) for s in entry["shape"])
            if dtype.hasobject or stop > size or int(np.prod(shape)) * dtype.itemsize != stop - start:
                raise CorruptDataError(f"{path}: section {entry['name']!r} does not fit the file")
            crc = 0
            for pos in range(start, stop, _CRC_STEP):
                crc = zlib.crc32(data[pos : min(stop, pos + _CRC_STEP)], crc)
            if crc != entry["crc32"]:
                raise CorruptDataError(f"{path}: checksum mismatch in section {entry['name']!r}")
            view = np.frombuffer(mapped, dtype=dtype, count=int(np.prod(shape)), offset=start).reshape(shape)
            arrays[entry["name"]] = view if entry["name"] == "originals" else view.copy()
    except CorruptDataError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptDataError(f"{path}: malformed VectorMemory header ({exc})") from exc
    finally:
        data.release()
    return header, arrays
