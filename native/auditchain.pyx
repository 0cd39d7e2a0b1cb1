"""The audit log's hash chain in C: SHA-256, record encoding and the verify loop.

A record of the binary audit log (``memstrata.core._filelog``) is::

    u32 n (little-endian)  | 32-byte previous hash | n canonical bytes | 32-byte hash

where the canonical bytes are those of :func:`memstrata.core.encode_entry`
(seq and time, then five length-prefixed fields) and
``hash = SHA256(previous hash || canonical bytes)``: the two hashed parts are
adjacent, so each record is hashed in place. SHA-256 runs on the x86 SHA
extensions when CPUID reports them, else on portable C (:func:`sha256_paths`).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_New, PyList_SET_ITEM
from cpython.ref cimport Py_INCREF
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy

from _audit_entry cimport put_entry_body


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


cdef extern from "ms_sha256.h" nogil:
    int MS_SHA_PORTABLE
    int MS_SHA_SHANI
    int ms_sha256_supported(int path)
    void ms_sha256(int path, const uint8_t* data, size_t length, uint8_t* out)


#: the SHA-256 instruction paths, by name
PATHS = ("portable", "shani")
cdef enum:
    HEAD_ = 36  # bytes before the canonical part: length, previous hash
    TAIL_ = 32  # bytes after it: the hash
    MIN_ = 36  # the smallest canonical entry: seq, time and five empty length-prefixed fields
    OK_ = 0
    TORN_ = 1
    PREV_ = 2
    SEQ_ = 3
    HASH_ = 4
    FORM_ = 5
    NOMEM_ = 6

RECORD_HEAD = HEAD_
RECORD_TAIL = TAIL_
MIN_CANONICAL = MIN_
#: scan statuses: the reason a scan stopped
OK, TORN, PREV, SEQ, HASH, FORM = OK_, TORN_, PREV_, SEQ_, HASH_, FORM_

cdef int _best_path = MS_SHA_SHANI if ms_sha256_supported(MS_SHA_SHANI) else MS_SHA_PORTABLE


def sha256_paths():
    """The SHA-256 paths this CPU runs, best last (``"portable"`` always)."""
    return [name for i, name in enumerate(PATHS) if ms_sha256_supported(i)]


def sha256_path():
    """The path every function here uses: the best one this CPU runs."""
    return PATHS[_best_path]


cdef int _path_index(object path) except -1:
    if path is None:
        return _best_path
    if path not in PATHS:
        raise ValueError(f"path: expected one of {PATHS}, got {path!r}")
    cdef int i = PATHS.index(path)
    if not ms_sha256_supported(i):
        raise ValueError(f"path: this CPU does not run {path!r}; it runs {sha256_paths()}")
    return i


def sha256(const uint8_t[::1] data, path=None):
    """SHA-256 of ``data`` on ``path`` (default: the best this CPU runs); equals ``hashlib.sha256(data).digest()``.

    Examples
    --------
    >>> import hashlib
    >>> sha256(b"abc") == hashlib.sha256(b"abc").digest()
    True
    >>> all(sha256(b"x" * 100, p) == hashlib.sha256(b"x" * 100).digest() for p in sha256_paths())
    True
    """
    cdef int p = _path_index(path)
    out = PyBytes_FromStringAndSize(NULL, 32)
    cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
    cdef Py_ssize_t n = data.shape[0]
    cdef const uint8_t* d = &data[0] if n else <const uint8_t*>b""
    with nogil:
        ms_sha256(p, d, <size_t>n, o)
    return out


cdef inline uint32_t _be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | <uint32_t>p[3]


cdef inline uint64_t _be64(const uint8_t* p) noexcept nogil:
    return (<uint64_t>_be32(p) << 32) | <uint64_t>_be32(p + 4)


cdef inline uint32_t _le32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | <uint32_t>p[0]


cdef const char* _utf8(object s, Py_ssize_t* n, str name) except NULL:
    if type(s) is not str:
        raise TypeError(f"{name}: expected a str, got {type(s).__name__}")
    return PyUnicode_AsUTF8AndSize(s, n)


def encode_records(list items, int64_t seq0, bytes prev, list times):
    """Chain ``items`` after ``prev`` as binary records numbered from ``seq0``.

    ``items`` are ``(actor, operation, key, digest, result, ...)`` tuples and
    ``times`` their entry times. Returns ``(records, rows, starts, hashes)``:
    the records' bytes; each entry as ``(seq, time, actor, operation, key,
    digest, result, hash)``; where each record starts in ``records``
    (native-endian u64, as ``numpy.uint64``); the hashes end to end.

    Examples
    --------
    >>> records, rows, starts, hashes = encode_records([("agent", "write", "k", b"", "ok")], 0, bytes(32), [1.5])
    >>> rows[0][:7], len(records), hashes == rows[0][7]
    ((0, 1.5, 'agent', 'write', 'k', b'', 'ok'), 117, True)
    """
    cdef Py_ssize_t n = len(items), i, j, total = 0, size
    cdef Py_ssize_t lens[5]
    cdef const char* ptrs[5]
    cdef uint8_t* p
    cdef uint8_t* rec
    cdef uint8_t* c
    cdef uint64_t* st
    cdef double when
    if len(times) != n:
        raise ValueError(f"times: expected {n} entry times, got {len(times)}")
    if len(prev) != 32:
        raise ValueError(f"prev: expected a 32-byte hash, got {len(prev)} bytes")
    names = ("actor", "operation", "key", "digest", "result")
    for i in range(n):
        item = items[i]
        size = MIN_
        for j in range(5):
            if j == 3:
                if type(item[3]) is not bytes:
                    raise TypeError(f"digest: expected bytes, got {type(item[3]).__name__}")
                size += PyBytes_GET_SIZE(item[3])
            else:
                _utf8(item[j], &lens[j], names[j])
                size += lens[j]
        if size > 0xFFFFFFFF:
            raise ValueError(f"items[{i}]: an entry of {size} bytes does not fit a record")
        total += HEAD_ + size + TAIL_
    records = PyBytes_FromStringAndSize(NULL, total)
    starts = PyBytes_FromStringAndSize(NULL, 8 * n)
    rows = PyList_New(n)
    all_hashes = PyBytes_FromStringAndSize(NULL, 32 * n)
    cdef uint8_t* hs = <uint8_t*>PyBytes_AS_STRING(all_hashes)
    p = <uint8_t*>PyBytes_AS_STRING(records)
    st = <uint64_t*>PyBytes_AS_STRING(starts)
    cdef const uint8_t* last = <const uint8_t*>PyBytes_AS_STRING(prev)
    cdef int path = _best_path
    cdef Py_ssize_t off = 0
    for i in range(n):
        item = items[i]
        for j in range(5):
            if j == 3:
                ptrs[3] = PyBytes_AS_STRING(item[3])
                lens[3] = PyBytes_GET_SIZE(item[3])
            else:
                ptrs[j] = _utf8(item[j], &lens[j], names[j])
        when = times[i]
        rec = p + off
        st[i] = <uint64_t>off
        size = MIN_ + lens[0] + lens[1] + lens[2] + lens[3] + lens[4]
        rec[0] = <uint8_t>size
        rec[1] = <uint8_t>(size >> 8)
        rec[2] = <uint8_t>(size >> 16)
        rec[3] = <uint8_t>(size >> 24)
        memcpy(rec + 4, last, 32)
        c = put_entry_body(rec + HEAD_, seq0 + i, when, lens, ptrs)
        ms_sha256(path, rec + 4, <size_t>(32 + size), c)
        memcpy(hs + 32 * i, c, 32)
        row = (seq0 + i, when, item[0], item[1], item[2], item[3], item[4], PyBytes_FromStringAndSize(<char*>c, 32))
        Py_INCREF(row)
        PyList_SET_ITEM(rows, i, row)
        last = c
        off += HEAD_ + size + TAIL_
    return records, rows, starts, all_hashes


cdef inline bint _well_formed(const uint8_t* c, uint32_t n) noexcept nogil:
    """The five length-prefixed fields after seq and time fill exactly ``n`` bytes."""
    cdef uint64_t at = 16
    cdef int j
    for j in range(5):
        if at + 4 > n:
            return False
        at += 4 + <uint64_t>_be32(c + at)
    return at == n


def scan_records(const uint8_t[::1] buf, Py_ssize_t start, int64_t seq0, bytes prev, bint check_hashes, bint want_index):
    """Walk the records of ``buf[start:]``, numbered from ``seq0`` and chained after ``prev``.

    Each record must fit, be well formed, hold the expected seq and the
    previous record's hash (checked in this order), and (``check_hashes``) hash to its stored hash.
    Returns ``(count, end, status, found_seq, last_hash, starts, hashes)``: how many
    records passed, the offset after the last of them, why the walk stopped
    (``OK`` at the end of ``buf``, else ``TORN``, ``PREV``, ``SEQ``, ``HASH``,
    ``FORM``), the seq found in the failing record (``SEQ``), the hash of the
    last good record (``prev`` when none) and, with ``want_index``, the good
    records' offsets (native-endian u64) and their hashes (32 bytes each).

    Examples
    --------
    >>> records, rows, _, _ = encode_records([("a", "write", "k", b"", "")] * 3, 0, bytes(32), [0.0] * 3)
    >>> count, end, status, found, last, _, _ = scan_records(records, 0, 0, bytes(32), True, False)
    >>> count, end == len(records), status == OK, last == rows[-1][7]
    (3, True, True, True)
    >>> damaged = records[:50] + b"?" + records[51:]
    >>> scan_records(damaged, 0, 0, bytes(32), True, False)[:3] == (0, 0, HASH)
    True
    """
    cdef Py_ssize_t end = buf.shape[0], off = start, count = 0, cap = 0
    cdef int status = OK_
    cdef int64_t found = -1
    cdef uint32_t n
    cdef const uint8_t* b = &buf[0] if end else <const uint8_t*>b""
    cdef uint8_t last[32]
    cdef uint8_t h[32]
    cdef uint64_t* starts = NULL
    cdef uint64_t* grown
    cdef uint8_t* hashes = NULL
    cdef uint8_t* grown_h
    cdef int path = _best_path
    if len(prev) != 32:
        raise ValueError(f"prev: expected a 32-byte hash, got {len(prev)} bytes")
    if not 0 <= start <= end:
        raise ValueError(f"start: expected an offset in [0, {end}], got {start}")
    memcpy(last, PyBytes_AS_STRING(prev), 32)
    try:
        with nogil:
            while off < end:
                if end - off < HEAD_:
                    status = TORN_
                    break
                n = _le32(b + off)
                if <uint64_t>(end - off) < <uint64_t>HEAD_ + n + TAIL_:
                    status = TORN_
                    break
                if n < MIN_ or not _well_formed(b + off + HEAD_, n):
                    status = FORM_
                    break
                if <int64_t>_be64(b + off + HEAD_) != seq0 + count:
                    status = SEQ_
                    found = <int64_t>_be64(b + off + HEAD_)
                    break
                if memcmp(b + off + 4, last, 32) != 0:
                    status = PREV_
                    break
                if check_hashes:
                    ms_sha256(path, b + off + 4, 32 + n, h)
                    if memcmp(h, b + off + HEAD_ + n, 32) != 0:
                        status = HASH_
                        break
                if want_index:
                    if count == cap:
                        cap = 4096 if cap == 0 else cap * 2
                        grown = <uint64_t*>realloc(starts, cap * 8)
                        if grown != NULL:
                            starts = grown
                        grown_h = <uint8_t*>realloc(hashes, cap * 32)
                        if grown_h != NULL:
                            hashes = grown_h
                        if grown == NULL or grown_h == NULL:
                            status = NOMEM_
                            break
                    starts[count] = <uint64_t>off
                    memcpy(hashes + 32 * count, b + off + HEAD_ + n, 32)
                memcpy(last, b + off + HEAD_ + n, 32)
                off += HEAD_ + n + TAIL_
                count += 1
        if status == NOMEM_:
            raise MemoryError("scan_records: no memory for the record offsets")
        out_starts = PyBytes_FromStringAndSize(<char*>starts, 8 * count) if want_index and count else b""
        out_hashes = PyBytes_FromStringAndSize(<char*>hashes, 32 * count) if want_index and count else b""
    finally:
        free(starts)
        free(hashes)
    return count, off, status, found, PyBytes_FromStringAndSize(<char*>last, 32), out_starts, out_hashes
