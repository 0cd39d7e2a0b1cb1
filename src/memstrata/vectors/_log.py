"""The append log of a durable VectorMemory: one record per acknowledged add / delete / update.

File: ``MSVMLOG1`` + generation (u64) + CRC-32 of those 16 bytes, then
records. A record is ``<IQII`` (payload length, sequence number, CRC-32 of
the payload, CRC-32 of the 16 bytes before it) followed by the payload: msgpack (msgspec) of a
dict whose arrays are ``[dtype, shape, bytes]``. Each record goes to the file
in one ``write``, so a killed process leaves whole records; a record cut
short at the end of the file (power loss) was never acknowledged under
``durability="full"`` and is dropped. A whole record whose checksum fails
raises ``CorruptDataError``.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from memstrata.errors import CorruptDataError

LOG_MAGIC = b"MSVMLOG1"
_FILE_HEAD = struct.Struct("<8sQI")
_RECORD_HEAD = struct.Struct("<IQII")
_HEAD_FIELDS = struct.Struct("<IQI")


def _encode_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {"__nd__": [arr.dtype.str, list(arr.shape), arr.tobytes()]}
    if isinstance(value, dict):
        return {k: _encode_value(v) for k, v in value.items()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "__nd__" in value and len(value) == 1:
            dtype, shape, raw = value["__nd__"]
            return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
        return {k: _decode_value(v) for k, v in value.items()}
    return value


class LogWriter:
    """Appends records to a log file; ``sync`` fsyncs each one (``durability="full"``)."""

    def __init__(self, path: Path, generation: int, *, create: bool, valid_bytes: int | None = None) -> None:
        self.path = path
        if create:
            head = LOG_MAGIC + struct.pack("<Q", generation)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, _FILE_HEAD.pack(LOG_MAGIC, generation, zlib.crc32(head)))
        else:
            fd = os.open(path, os.O_RDWR)
            if valid_bytes is not None and os.fstat(fd).st_size > valid_bytes:
                # drop a record cut short by a crash (the log is read, never mapped)
                os.ftruncate(fd, valid_bytes)
        self._fd: int | None = fd
        self.size = os.fstat(fd).st_size

    def append(self, seq: int, record: dict[str, Any], *, sync: bool) -> None:
        assert self._fd is not None
        payload = msgspec.msgpack.encode(_encode_value(record))
        fields = _HEAD_FIELDS.pack(len(payload), seq, zlib.crc32(payload))
        head = fields + struct.pack("<I", zlib.crc32(fields))
        os.pwrite(self._fd, head + payload, self.size)
        if sync:
            os.fdatasync(self._fd)
        self.size += len(head) + len(payload)

    def sync(self) -> None:
        if self._fd is not None:
            os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_log(path: Path, generation: int) -> Iterator[tuple[int, dict[str, Any], int]]:
    """Yield ``(seq, record, end_offset)`` for each whole record of the log of ``generation``.

    Raises
    ------
    memstrata.CorruptDataError
        Missing or bad file header, wrong generation, a checksum mismatch or
        an undecodable record.
    """
    data = path.read_bytes()
    if len(data) < _FILE_HEAD.size:
        raise CorruptDataError(f"{path}: too short for a VectorMemory log ({len(data)} bytes)")
    magic, gen, crc = _FILE_HEAD.unpack_from(data)
    if magic != LOG_MAGIC or zlib.crc32(data[:16]) != crc:
        raise CorruptDataError(f"{path}: not a VectorMemory log (bad magic or header checksum)")
    if gen != generation:
        raise CorruptDataError(f"{path}: log of generation {gen}, expected {generation}")
    pos = _FILE_HEAD.size
    while pos + _RECORD_HEAD.size <= len(data):
        length, seq, crc, head_crc = _RECORD_HEAD.unpack_from(data, pos)
        if zlib.crc32(data[pos : pos + _HEAD_FIELDS.size]) != head_crc:
            raise CorruptDataError(f"{path}: checksum mismatch in the header of the log record at byte {pos}")
        end = pos + _RECORD_HEAD.size + length
        if end > len(data):
            return  # cut short by a crash: never acknowledged as durable
        payload = data[pos + _RECORD_HEAD.size : end]
        if zlib.crc32(payload) != crc:
            raise CorruptDataError(f"{path}: checksum mismatch in the log record at byte {pos}")
        try:
            record = _decode_value(msgspec.msgpack.decode(payload))
        except (msgspec.DecodeError, ValueError, TypeError) as exc:
            raise CorruptDataError(f"{path}: undecodable log record at byte {pos} ({exc})") from exc
        yield seq, record, end
        pos = end
