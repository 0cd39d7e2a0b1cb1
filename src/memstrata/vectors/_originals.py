"""Float originals for rescoring: one copy, on disk, read through maps.

Rows ``0 .. n_base-1`` live in a read-only base array (the ``originals``
section mapped from a ``.msvm`` file, or nothing); rows after them are
appended to a tail file. Files are only ever appended to or replaced, never
truncated or rewritten under a reader's map (a rewrite goes to a new file).
"""

from __future__ import annotations

import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from memstrata.errors import CorruptDataError


class Originals:
    """Float32 rows of width ``dim``: a mapped base plus an append-only tail file.

    Parameters
    ----------
    dim : int
    base : ndarray float32 (n_base, dim), optional
        Read-only rows (usually mapped from a checkpoint).
    tail_path : Path, optional
        The tail file; a new temporary file (removed on close) when None.
    tail_rows : int
        Rows already in an existing tail file that belong to this memory
        (replay); bytes after them are a write that was never acknowledged.
    writable : bool
        False for a reader: the tail is opened read-only and left as it is.
    """

    def __init__(
        self,
        dim: int,
        base: np.ndarray | None = None,
        tail_path: Path | None = None,
        tail_rows: int = 0,
        *,
        writable: bool = True,
    ) -> None:
        self.dim = dim
        self._row_bytes = 4 * dim
        self.base = base if base is not None else np.empty((0, dim), np.float32)
        self.owned = tail_path is None
        if tail_path is None:
            fd, name = tempfile.mkstemp(prefix="memstrata-originals-", suffix=".f32")
            os.close(fd)
            tail_path = Path(name)
        self.tail_path = tail_path
        try:
            self._fd: int | None = os.open(tail_path, os.O_RDWR | os.O_CREAT if writable else os.O_RDONLY, 0o644)
        except FileNotFoundError:
            if tail_rows:
                raise
            self._fd = None
            size = 0
        else:
            size = os.fstat(self._fd).st_size
        if size < tail_rows * self._row_bytes:
            raise CorruptDataError(f"{tail_path}: {size} bytes, expected at least {tail_rows * self._row_bytes}")
        if writable and self._fd is not None and size > tail_rows * self._row_bytes:
            # an append the log never acknowledged: no reader maps past the acknowledged rows
            os.ftruncate(self._fd, tail_rows * self._row_bytes)
        self.n_tail = tail_rows
        self._map: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.base.shape[0]) + self.n_tail

    @property
    def nbytes_on_disk(self) -> int:
        return len(self) * self._row_bytes

    def append(self, x: np.ndarray, *, sync: bool) -> tuple[int, int, int]:
        """Append rows; returns ``(first_row, n_rows, crc32)`` of what was written."""
        assert self._fd is not None
        data = np.ascontiguousarray(x, np.float32).data.cast("B")
        start = self.n_tail
        os.pwrite(self._fd, data, start * self._row_bytes)
        if sync:
            os.fdatasync(self._fd)
        self.n_tail += x.shape[0]
        return self.base.shape[0] + start, x.shape[0], zlib.crc32(data)

    def verify(self, first_row: int, n_rows: int, crc: int) -> None:
        """Check that tail rows ``first_row ..`` hold the bytes a log record names."""
        rows = self._tail()[first_row - self.base.shape[0] : first_row - self.base.shape[0] + n_rows]
        if rows.shape[0] != n_rows or zlib.crc32(np.ascontiguousarray(rows).data.cast("B")) != crc:
            raise CorruptDataError(f"{self.tail_path}: checksum mismatch in rows {first_row}..{first_row + n_rows - 1}")

    def _tail(self) -> np.ndarray:
        if self._map is None or self._map.shape[0] != self.n_tail:
            if self.n_tail == 0:
                return np.empty((0, self.dim), np.float32)
            self._map = np.memmap(self.tail_path, dtype=np.float32, mode="r", shape=(self.n_tail, self.dim))
        return self._map

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows as a float32 array (a copy), in the order given."""
        n_base = self.base.shape[0]
        if rows.size and rows.max() < n_base:
            return np.asarray(self.base[rows], np.float32)
        out = np.empty((rows.shape[0], self.dim), np.float32)
        in_base = rows < n_base
        out[in_base] = self.base[rows[in_base]]
        out[~in_base] = self._tail()[rows[~in_base] - n_base]
        return out

    def sync(self) -> None:
        if self._fd is not None:
            os.fdatasync(self._fd)

    def close(self) -> None:
        self._map = None
        self.base = np.empty((0, self.dim), np.float32)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.owned:
            self.tail_path.unlink(missing_ok=True)
            self.owned = False
