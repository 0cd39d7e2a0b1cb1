"""A compact hash table from 32-bit key fingerprints to 64-bit record locations.

The segment log's in-RAM index: 12 bytes a slot (a ``uint32`` fingerprint and
an ``int64`` location in two parallel arrays), at most ``MAX_LOAD`` full, in
place of a Python ``dict`` holding each key's bytes. The table never holds a
key: several keys may share a fingerprint, so a lookup yields every location
stored under it and the caller proves which record is its key's by reading the
key stored in the record (the segment log's read path does so anyway).

Layout: open addressing with linear probing in Robin Hood order. A
fingerprint's home slot is ``(fp * capacity) >> 32`` (monotonic in ``fp``), and
a run keeps its entries sorted by (home, fingerprint), so a probe stops at the
first entry that sorts after the one it looks for; deletion shifts the run back
(no tombstones). Robin Hood order keeps probes short even 90 % full, so the
table runs between 60 % and ``MAX_LOAD`` (90 %) full: it grows by half when it
passes ``MAX_LOAD`` and shrinks when it falls below a quarter, with no
preallocation from a maximum; ``from_arrays`` (a log's open) builds it 85 %
full, which leaves room for the writes after an open before the first growth.

Fingerprints are part of the log's checkpoint format (``fingerprint``: XXH3-128
of the key with seed ``FP_SEED``, bits 32..63 of its low word, 0 mapped to 1):
never change them.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.stdint cimport int64_t, uint32_t, uint64_t

import numpy as np

from _xxh3 cimport ms_u128, ms_xxh3_128

#: Seed of the fingerprint hash (ASCII "KIDX"); part of the checkpoint format.
FP_SEED = 0x4B494458
#: The table grows when more than this share of its slots is taken.
MAX_LOAD = 0.9
#: Share of slots taken right after ``from_arrays`` (room to grow before the first resize).
BUILD_LOAD = 0.85
#: Bytes of one slot (fingerprint + location).
SLOT_BYTES = 12

cdef enum:
    MIN_CAPACITY = 8
    C_FP_SEED = 0x4B494458


cdef inline uint32_t _fp_of(const char* data, size_t n, uint32_t mask) noexcept nogil:
    cdef ms_u128 h = ms_xxh3_128(data, n, C_FP_SEED)
    cdef uint32_t f = (<uint32_t>(h.lo >> 32)) & mask
    return f if f else 1


cdef inline uint32_t _fp_checked(object key, uint32_t mask) except? 0:
    if type(key) is not bytes:
        raise TypeError(f"key: expected bytes, got {type(key).__name__}")
    return _fp_of(PyBytes_AS_STRING(key), <size_t>PyBytes_GET_SIZE(key), mask)


cdef uint32_t _mask_of(object mask) except? 0:
    if not isinstance(mask, int) or not 0 <= mask <= 0xFFFFFFFF:
        raise ValueError(f"mask: expected an int in [0, 2**32), got {mask!r}")
    return <uint32_t>mask


def fingerprint(bytes key not None, mask=0xFFFFFFFF) -> int:
    """The fingerprint of ``key`` (an int in [1, 2**32)): ``mask`` keeps some of its bits (a test hook).

    >>> fingerprint(b"k1") == fingerprint(b"k1") != fingerprint(b"k2")
    True
    >>> fingerprint(b"k1", mask=0)
    1
    """
    return _fp_checked(key, _mask_of(mask))


def fingerprints(keys, mask=0xFFFFFFFF):
    """Fingerprints of a list of ``bytes`` keys as a ``uint32`` array (same order)."""
    cdef uint32_t m = _mask_of(mask)
    cdef Py_ssize_t i, n = len(keys)
    out = np.empty(n, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    for i in range(n):
        o[i] = _fp_checked(keys[i], m)
    return out


def fingerprints_at(const unsigned char[::1] data, const int64_t[::1] starts, const int64_t[::1] lengths,
                    mask=0xFFFFFFFF):
    """Fingerprints (``uint32``) of the slices ``data[starts[i]:starts[i] + lengths[i]]``; 0 for a slice
    outside ``data``.

    One call checks every key of a segment buffer against the index.

    >>> import numpy as np
    >>> f = fingerprints_at(b"xxk1k2", np.array([2, 4, 5], dtype=np.int64), np.array([2, 2, 2], dtype=np.int64))
    >>> f.tolist() == [fingerprint(b"k1"), fingerprint(b"k2"), 0]
    True
    """
    cdef uint32_t m = _mask_of(mask)
    cdef Py_ssize_t i, n = starts.shape[0], size = data.shape[0]
    if lengths.shape[0] != n:
        raise ValueError(f"lengths: expected {n} entries like starts, got {lengths.shape[0]}")
    out = np.zeros(n, dtype=np.uint32)
    cdef uint32_t[::1] o = out
    cdef const unsigned char* base = &data[0] if size else NULL
    with nogil:
        for i in range(n):
            if 0 <= starts[i] and 0 <= lengths[i] and starts[i] + lengths[i] <= size:
                o[i] = _fp_of(<const char*>base + starts[i], <size_t>lengths[i], m)
    return out


@cython.final
@cython.auto_pickle(False)
cdef class KeyIndex:
    """Locations (``int64``) by key fingerprint (``uint32``): a multimap, see the module docstring.

    Every method runs holding the GIL (only ``from_arrays`` releases it, on a
    table no other thread can see yet), so threads never see a half-done change;
    callers that must pair a lookup with a change (replace the location a read
    proved) hold their own lock around both, as the segment log does.

    Parameters
    ----------
    mask : int
        Bits of every key's fingerprint that are kept (default all 32). A
        smaller mask forces keys to share fingerprints: a test hook for the
        callers' collision handling.

    Attributes
    ----------
    mask : int
        Bits of the fingerprints this index keeps (read-only).
    capacity : int
        Slots allocated (read-only); ``nbytes`` is ``capacity * SLOT_BYTES``.

    >>> t = KeyIndex()
    >>> f = t.fingerprint(b"k1")
    >>> t.insert(f, 4096)
    >>> t.lookup(b"k1"), t.find(f), len(t)
    ((4096,), (4096,), 1)
    >>> t.replace(f, 4096, 8192), t.lookup(b"k1")
    (True, (8192,))
    >>> t.remove(f, 8192), t.lookup(b"k1"), len(t)
    (True, (), 0)
    """

    cdef uint32_t* _fps
    cdef int64_t* _locs
    cdef readonly Py_ssize_t capacity
    cdef Py_ssize_t _n
    cdef readonly uint32_t mask

    def __cinit__(self, *args, **kwargs):
        self.mask = 0xFFFFFFFF
        self._fps = NULL
        self._locs = NULL
        self.capacity = 0
        self._n = 0
        self._alloc(MIN_CAPACITY)

    def __init__(self, mask=0xFFFFFFFF):
        self.mask = _mask_of(mask)

    def __dealloc__(self):
        PyMem_RawFree(self._fps)
        PyMem_RawFree(self._locs)

    cdef int _alloc(self, Py_ssize_t cap) except -1:
        """Point the table at ``cap`` fresh empty slots (the caller keeps the old arrays)."""
        cdef uint32_t* fps = <uint32_t*>PyMem_RawCalloc(cap, sizeof(uint32_t))
        cdef int64_t* locs = <int64_t*>PyMem_RawCalloc(cap, sizeof(int64_t))
        if fps == NULL or locs == NULL:
            PyMem_RawFree(fps)
            PyMem_RawFree(locs)
            raise MemoryError(f"KeyIndex: cannot allocate {cap} slots")
        self._fps, self._locs, self.capacity, self._n = fps, locs, cap, 0
        return 0

    cdef inline Py_ssize_t _home(self, uint32_t f) noexcept nogil:
        return <Py_ssize_t>((<uint64_t>f * <uint64_t>self.capacity) >> 32)

    cdef inline Py_ssize_t _dist(self, Py_ssize_t i, uint32_t f) noexcept nogil:
        cdef Py_ssize_t d = i - self._home(f)
        return d + self.capacity if d < 0 else d

    cdef inline bint _before(self, uint32_t g, Py_ssize_t gd, uint32_t f, Py_ssize_t d) noexcept nogil:
        """True when the entry ``g`` (at distance ``gd``) sorts after one of fingerprint ``f`` at distance ``d``."""
        return gd < d or (gd == d and g > f)

    cdef void _place(self, uint32_t f, int64_t loc) noexcept nogil:
        """Robin Hood insert into a table with a free slot."""
        cdef Py_ssize_t i = self._home(f), d = 0, gd
        cdef uint32_t g
        cdef int64_t l
        while True:
            g = self._fps[i]
            if g == 0:
                self._fps[i] = f
                self._locs[i] = loc
                self._n += 1
                return
            gd = self._dist(i, g)
            if self._before(g, gd, f, d):
                l = self._locs[i]
                self._fps[i] = f
                self._locs[i] = loc
                f, loc, d = g, l, gd
            i += 1
            if i == self.capacity:
                i = 0
            d += 1

    cdef int _resize(self, Py_ssize_t cap) except -1:
        cdef uint32_t* fps = self._fps
        cdef int64_t* locs = self._locs
        cdef Py_ssize_t i, old = self.capacity
        self._alloc(cap)
        for i in range(old):  # the GIL stays held: no other thread sees a half-filled table
            if fps[i]:
                self._place(fps[i], locs[i])
        PyMem_RawFree(fps)
        PyMem_RawFree(locs)
        return 0

    cdef Py_ssize_t _slot_of(self, uint32_t f, int64_t loc) noexcept nogil:
        """The slot holding ``(f, loc)``, or -1."""
        cdef Py_ssize_t i = self._home(f), d = 0
        cdef uint32_t g
        while True:
            g = self._fps[i]
            if g == 0 or self._before(g, self._dist(i, g), f, d):
                return -1
            if g == f and self._locs[i] == loc:
                return i
            i += 1
            if i == self.capacity:
                i = 0
            d += 1

    cdef tuple _find(self, uint32_t f):
        cdef Py_ssize_t i = self._home(f), d = 0
        cdef uint32_t g
        found = ()
        while True:
            g = self._fps[i]
            if g == 0 or self._before(g, self._dist(i, g), f, d):
                return found
            if g == f:
                found += (self._locs[i],)
            i += 1
            if i == self.capacity:
                i = 0
            d += 1

    cdef uint32_t _checked_fp(self, object fp) except? 0:
        if not isinstance(fp, int) or not 1 <= fp <= 0xFFFFFFFF or (fp & self.mask) != fp and fp != 1:
            raise ValueError(f"fp: expected a fingerprint of this index (an int in [1, 2**32) within its mask), got {fp!r}")
        return <uint32_t>fp

    # --------------------------------------------------------------- public --

    @property
    def nbytes(self) -> int:
        """Bytes of the slot arrays (``capacity * SLOT_BYTES``)."""
        return self.capacity * SLOT_BYTES

    def __len__(self) -> int:
        return self._n

    def fingerprint(self, bytes key not None) -> int:
        """The fingerprint of ``key`` under this index's mask."""
        return _fp_of(PyBytes_AS_STRING(key), <size_t>PyBytes_GET_SIZE(key), self.mask)

    def lookup(self, bytes key not None) -> tuple:
        """Locations stored under ``key``'s fingerprint (usually one or none), in probe order."""
        return self._find(_fp_of(PyBytes_AS_STRING(key), <size_t>PyBytes_GET_SIZE(key), self.mask))

    def find(self, fp) -> tuple:
        """Locations stored under the fingerprint ``fp``, in probe order."""
        return self._find(self._checked_fp(fp))

    def insert(self, fp, int64_t loc) -> None:
        """Add ``(fp, loc)`` (the caller has checked that its key is not in the table yet)."""
        cdef uint32_t f = self._checked_fp(fp)
        if (self._n + 1) * 10 > self.capacity * 9:  # MAX_LOAD
            self._resize(self.capacity + self.capacity // 2)
        self._place(f, loc)

    def replace(self, fp, int64_t old, int64_t new) -> bool:
        """Point the entry ``(fp, old)`` at ``new``; False when there is no such entry."""
        cdef Py_ssize_t i = self._slot_of(self._checked_fp(fp), old)
        if i < 0:
            return False
        self._locs[i] = new
        return True

    def remove(self, fp, int64_t loc) -> bool:
        """Remove the entry ``(fp, loc)``; False when there is no such entry."""
        cdef Py_ssize_t i = self._slot_of(self._checked_fp(fp), loc), j
        if i < 0:
            return False
        j = i + 1 if i + 1 < self.capacity else 0
        while self._fps[j] and self._dist(j, self._fps[j]) > 0:  # shift the run back: no tombstones
            self._fps[i] = self._fps[j]
            self._locs[i] = self._locs[j]
            i = j
            j = j + 1 if j + 1 < self.capacity else 0
        self._fps[i] = 0
        self._locs[i] = 0
        self._n -= 1
        if self.capacity > 4 * MIN_CAPACITY and self._n * 4 < self.capacity:
            self._resize(max(<Py_ssize_t>MIN_CAPACITY, self._n * 4 // 3 + 1))
        return True

    def clear(self) -> None:
        """Remove every entry and give the slots back."""
        cdef uint32_t* fps = self._fps
        cdef int64_t* locs = self._locs
        self._alloc(MIN_CAPACITY)
        PyMem_RawFree(fps)
        PyMem_RawFree(locs)

    def __iter__(self):
        """``(fingerprint, location)`` pairs in slot order (a snapshot: the table may change meanwhile)."""
        fps, locs = self.dump()
        return zip(fps.tolist(), locs.tolist())

    def dump(self):
        """``(fingerprints uint32[n], locations int64[n])``, copies in slot order (what ``from_arrays`` loads)."""
        fps = np.empty(self._n, dtype=np.uint32)
        locs = np.empty(self._n, dtype=np.int64)
        cdef uint32_t[::1] fo = fps
        cdef int64_t[::1] lo = locs
        cdef Py_ssize_t i, k = 0
        for i in range(self.capacity):
            if self._fps[i]:
                fo[k] = self._fps[i]
                lo[k] = self._locs[i]
                k += 1
        return fps, locs

    @staticmethod
    def from_arrays(fps, locs, mask=0xFFFFFFFF):
        """A table holding ``(fps[i], locs[i])`` for every ``i``, ``BUILD_LOAD`` full.

        ``fps``: ``uint32`` array of fingerprints within ``mask`` (none 0);
        ``locs``: ``int64`` array of the same length. Entries in ascending
        fingerprint order (as :meth:`dump` writes them, but for the few that
        wrapped around the end of the table) are laid out in one pass.
        """
        cdef uint32_t m = _mask_of(mask)
        fa = np.asarray(fps)
        la = np.asarray(locs)
        if fa.dtype != np.uint32 or fa.ndim != 1:
            raise TypeError(f"fps: expected a 1-d uint32 array, got {fa.dtype} with shape {fa.shape}")
        if la.dtype != np.int64 or la.shape != fa.shape:
            raise TypeError(f"locs: expected an int64 array of shape {fa.shape}, got {la.dtype} with shape {la.shape}")
        fa = np.ascontiguousarray(fa)
        la = np.ascontiguousarray(la)
        cdef Py_ssize_t n = fa.shape[0]
        if n and (not fa.all() or (((fa & np.uint32(m)) != fa) & (fa != 1)).any()):
            raise ValueError("fps: a fingerprint is 0 or outside the mask")
        cdef KeyIndex t = KeyIndex(mask)
        cdef Py_ssize_t cap = max(<Py_ssize_t>MIN_CAPACITY, n * 20 // 17 + 1)  # BUILD_LOAD
        PyMem_RawFree(t._fps)
        PyMem_RawFree(t._locs)
        t._fps = NULL
        t._locs = NULL
        t._alloc(cap)
        cdef const uint32_t[::1] fv = fa
        cdef const int64_t[::1] lv = la
        cdef Py_ssize_t i, pos, nxt = 0, n_late = 0
        cdef uint32_t prev = 0
        late = np.empty(n, dtype=np.intp)
        cdef Py_ssize_t[::1] lt = late
        with nogil:
            for i in range(n):  # ascending fingerprints: each goes to max(home, next free), no swaps
                pos = t._home(fv[i])
                if fv[i] < prev:
                    lt[n_late] = i
                    n_late += 1
                    continue
                if pos < nxt:
                    pos = nxt
                if pos >= cap:
                    lt[n_late] = i
                    n_late += 1
                    continue
                t._fps[pos] = fv[i]
                t._locs[pos] = lv[i]
                t._n += 1
                nxt = pos + 1
                prev = fv[i]
            for i in range(n_late):  # out of order or past the end: the general insert
                t._place(fv[lt[i]], lv[lt[i]])
        return t
