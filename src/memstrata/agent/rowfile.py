"""int8 vector rows in a private file, read back and checked before they are scored.

An agent memory rebuilds its vector index from the store on every open, so
this file holds nothing that is not also in the store: it is a temporary file,
written only by appends (a removed row is overwritten with zeros so its codes
do not linger), and removed on close. It lives in the agent's own directory
(a dot-name, which store snapshots and backups skip), on the disk the user
chose for the memory: the system's temporary directory may be a RAM file
system, where the rows would take RAM again. Files that a killed process left
behind are removed by :func:`remove_stale` when the directory is next opened. Reads copy the slots out of a
read-only memory map and then release its pages (``MADV_DONTNEED``): a page a
map touches counts in the process's resident memory until released, and that
memory is what keeping the rows here saves. One ``pread`` a row would do the
same with no map, at about four times the cost (~2.5 µs a row against ~0.6 µs
for 128 scattered rows at 10^4).

A slot holds ``id`` (int64), ``scale`` (float32), 4 zero bytes, the ``d``
int8 codes padded to 8 bytes, and a 64-bit check: the sum of every other
64-bit word and of the slot number, each times its own odd constant, modulo
2**64, plus one (so a zeroed slot fails). An odd multiplier is invertible modulo 2**64, so a change in any one
word always changes the check; a row written to another slot fails through
the slot term and the id. A row that fails raises ``CorruptDataError`` naming
the file and slot; it is never scored.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from pathlib import Path

import numpy as np

from memstrata.agent.nearkernels import nearscreen_kernels
from memstrata.errors import CorruptDataError

__all__ = ["PREFIX", "RowFile", "encode_rows", "remove_stale"]

#: Name prefix of row files (a dot-name: store snapshots skip it).
PREFIX = ".agent-rows-"
_SUFFIX = ".i8"
_HEAD_WORDS = 2  # id, then scale + 4 zero bytes
_CHECK_SEED = 0x726F7773
_PREAD_ROWS = 4  # up to this many slots a read uses pread, more go through the map (see RowFile._gather)


def encode_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows (n, d) as int8 codes (n, d) and one float32 scale per row (peak magnitude / 127)."""
    peak = np.abs(x).max(axis=1)
    scale = (np.where(peak > 0, peak, 1.0) / 127.0).astype(np.float32)
    # |x| / scale <= 127 up to rounding, so the rounded codes need no clip
    codes = np.rint(x / scale[:, None]).astype(np.int8)
    return codes, scale


def remove_stale(directory: Path) -> int:
    """Remove the row files in ``directory`` (left by killed processes); returns how many.

    Called by the memory's writer when it opens ``directory``, before it makes
    its own row file. A reader process that still has one open keeps reading
    it: a removed file stays readable through its open descriptor.
    """
    n = 0
    for p in directory.glob(PREFIX + "*" + _SUFFIX):
        p.unlink(missing_ok=True)
        n += 1
    return n


class RowFile:
    """Slots of int8 rows of width ``dim`` in a temporary file: append, clear, read with checks.

    ``directory`` is where the file is made (the system's temporary directory when None).
    """

    def __init__(self, dim: int, directory: Path | None = None) -> None:
        self.dim = int(dim)
        self._code_words = (self.dim + 7) // 8
        self._words = _HEAD_WORDS + self._code_words + 1
        self.row_bytes = 8 * self._words
        rng = np.random.default_rng(_CHECK_SEED)
        self._mult = rng.integers(0, 2**63, self._words, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        fd, name = tempfile.mkstemp(prefix=PREFIX, suffix=_SUFFIX, dir=directory)
        self.path = Path(name)
        self._fd: int | None = fd
        self.n_slots = 0
        self._map: mmap.mmap | None = None
        self._rows_view: np.ndarray | None = None

    def _checks(self, words: np.ndarray, slots: np.ndarray) -> np.ndarray:
        from memstrata.kernels.rowscore import word_checksums  # here: kernels load numba, not `import memstrata.agent`

        # uint64 arithmetic wraps modulo 2**64; the + 1 means an all-zero slot (a cleared row) never passes
        return word_checksums(words, self._mult, slots.astype(np.int64, copy=False))

    def append(self, ids: np.ndarray, codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Write rows in new slots (one write); returns their slot numbers."""
        if self._fd is None:
            raise ValueError(f"{self.path}: the row file is closed")
        n = ids.shape[0]
        words = np.zeros((n, self._words), np.uint64)
        raw = words.view(np.uint8)
        raw[:, 0:8] = ids.astype(np.int64).reshape(n, 1).view(np.uint8)
        raw[:, 8:12] = scales.astype(np.float32).reshape(n, 1).view(np.uint8)
        raw[:, 8 * _HEAD_WORDS : 8 * _HEAD_WORDS + self.dim] = codes.view(np.uint8)
        slots = np.arange(self.n_slots, self.n_slots + n, dtype=np.int64)
        words[:, -1] = self._checks(words, slots)
        data = words.data
        written = os.pwrite(self._fd, data, self.n_slots * self.row_bytes)
        if written != data.nbytes:
            raise OSError(f"{self.path}: short write ({written} of {data.nbytes} bytes)")
        self.n_slots += n
        return slots

    def clear(self, slot: int) -> None:
        """Overwrite a removed row's slot with zeros (it is never read again)."""
        if self._fd is not None:
            os.pwrite(self._fd, bytes(self.row_bytes), int(slot) * self.row_bytes)

    def read(self, slots: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes (n, d) int8 and scales (n,) of ``slots``, which must hold ``ids``; ``CorruptDataError`` otherwise."""
        if self._fd is None:
            raise ValueError(f"{self.path}: the row file is closed")
        n = slots.shape[0]
        words = self._gather(slots) if n else np.empty((0, self._words), np.uint64)
        bad = (words[:, -1] != self._checks(words, slots)) | (words[:, 0].view(np.int64) != ids)
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise CorruptDataError(
                f"{self.path}: slot {int(slots[at])} (id {int(ids[at])}) fails its checksum or holds another id"
            )
        scales = words[:, 1:2].view(np.float32)[:, 0].copy()
        codes = words[:, _HEAD_WORDS : _HEAD_WORDS + self._code_words].view(np.int8)[:, : self.dim]
        return codes, scales

    def _gather(self, slots: np.ndarray) -> np.ndarray:
        """A copy of the slots' words, through a read-only map whose pages are released again at once.

        A few slots (a write's near-duplicate candidates, usually one) are read with one ``pread`` each instead:
        the map's fixed costs (its size check, a new map after the file grew, the release) are larger there.
        """
        assert self._fd is not None
        if slots.shape[0] <= _PREAD_ROWS:
            return self._pread(slots)
        need = (int(slots.max()) + 1) * self.row_bytes
        size = os.fstat(self._fd).st_size
        if size < need:  # checked first: touching a mapped page past the end of the file kills the process
            raise CorruptDataError(f"{self.path}: {size} bytes, expected at least {need} (a slot is past the end)")
        if self._map is None or len(self._map) < need:
            self._release_map()
            self._map = mmap.mmap(self._fd, self.n_slots * self.row_bytes, prot=mmap.PROT_READ)
            self._rows_view = np.frombuffer(self._map, np.uint64).reshape(self.n_slots, self._words)
        assert self._rows_view is not None
        words = self._rows_view[slots]  # fancy indexing copies
        # the touched pages leave this process's resident set (the page cache keeps them, as it would for pread)
        self._map.madvise(mmap.MADV_DONTNEED)
        return words

    def _pread(self, slots: np.ndarray) -> np.ndarray:
        assert self._fd is not None
        parts = []
        for slot in slots.tolist():
            part = os.pread(self._fd, self.row_bytes, slot * self.row_bytes)
            if len(part) != self.row_bytes:  # the file was cut short under this slot
                raise CorruptDataError(f"{self.path}: slot {slot} is past the end of the file ({len(part)} of "
                                       f"{self.row_bytes} bytes read)")
            parts.append(part)
        return np.frombuffer(b"".join(parts), np.uint64).reshape(len(parts), self._words).copy()

    def _release_map(self) -> None:
        self._rows_view = None  # the only view on the map: dropped before the map is closed
        if self._map is not None:
            self._map.close()
            self._map = None

    def scores(self, slots: np.ndarray, ids: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Cosines (m,) float32 of the unit query ``q`` (d,) float32 with the rows of a few ``slots`` (int64), which must
        hold ``ids`` (int64); checked as :meth:`read` checks."""
        if self._fd is None:
            raise ValueError(f"{self.path}: the row file is closed")
        words = self._gather(slots) if slots.shape[0] else np.empty((0, self._words), np.uint64)
        out = np.empty(slots.shape[0], np.float32)
        bad = nearscreen_kernels().rerank(words, self._mult, slots, ids, q, out)
        if bad >= 0:
            raise CorruptDataError(
                f"{self.path}: slot {int(slots[bad])} (id {int(ids[bad])}) fails its checksum or holds another id"
            )
        return out

    def vectors(self, slots: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The decoded float32 rows of ``slots`` (see :meth:`read`)."""
        codes, scales = self.read(slots, ids)
        return codes.astype(np.float32) * scales[:, None]

    def close(self) -> None:
        self._release_map()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self.path.unlink(missing_ok=True)
