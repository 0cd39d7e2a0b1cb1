"""MemoryCore's write path in C: one audit entry appended in one call, and the layers' records.

:func:`append_entry` appends one entry to the binary audit log: encode, chain
hash, intent record, writes. The single write's path of :class:`memstrata.core.FileLogStore` spent most of
its time in Python glue around C (a list of one item, the intent record's
``struct``/``crc32``/``join``, two ``os.write`` calls). :func:`append_entry`
does the same work in C with the GIL released for the system calls, and
writes the same bytes (the Python path in ``memstrata.core._filelog`` is its
twin: a hypothesis property and golden files check that they agree):

``audit.log.intents`` (when the entry has a payload)
    ``u32 n | u64 seq | payload | crc32(seq bytes || payload)``, little-endian.
``audit.log``
    ``u32 n | previous hash | n canonical bytes | hash`` with
    ``hash = SHA256(previous hash || canonical bytes)``, the canonical bytes
    being ``be64 seq | be64 time bits`` then five ``be32``-length-prefixed
    fields (actor, operation, key, digest, result), as
    :mod:`memstrata._native.auditchain` encodes them.

:func:`encode_record` builds the record a layer holds (``memstrata.core._layers``):
``be64 seq | u8 kind | check | payload``, ``check`` being the first 16 bytes of
``SHA256(be32 len(key) || key || be64 seq || u8 kind || payload)``; the Python
``encode_record_py`` there is its twin.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EINTR, errno
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from _audit_entry cimport put_be32, put_entry_body


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL


cdef extern from "ms_sha256.h" nogil:
    int MS_SHA_PORTABLE, MS_SHA_SHANI
    int ms_sha256_supported(int path)
    void ms_sha256(int path, const uint8_t* data, size_t length, uint8_t* out)


cdef extern from "ms_crc32.h" nogil:
    void ms_crc32_init()
    uint32_t ms_crc32(uint32_t crc, const uint8_t* p, size_t n)


cdef extern from "<unistd.h>" nogil:
    ssize_t write(int fd, const void* buf, size_t n)
    int fdatasync(int fd)


cdef extern from "<sys/uio.h>" nogil:
    struct iovec:
        void* iov_base
        size_t iov_len
    ssize_t writev(int fd, const iovec* iov, int n)


ms_crc32_init()

cdef enum:
    HEAD_ = 36  # length, previous hash
    TAIL_ = 32  # hash
    MIN_ = 36  # seq, time and five empty length-prefixed fields
    INTENT_HEAD_ = 12  # u32 n, u64 seq
    STACK_ = 512  # records (and hashed record input) up to this size are built on the stack
    REC_HEAD_ = 9  # a layer record's seq and kind
    CHECK_ = 16  # its check

#: bytes an intent record adds around its payload (head and crc32)
INTENT_OVERHEAD = INTENT_HEAD_ + 4

cdef int _path = MS_SHA_SHANI if ms_sha256_supported(MS_SHA_SHANI) else MS_SHA_PORTABLE


cdef inline void _put_le32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>v
    p[1] = <uint8_t>(v >> 8)
    p[2] = <uint8_t>(v >> 16)
    p[3] = <uint8_t>(v >> 24)


cdef int _write_all(int fd, const uint8_t* p, size_t n) noexcept nogil:
    """Write ``n`` bytes (going on after a short write or EINTR); 0, or the errno of the failure."""
    cdef ssize_t k
    while n:
        k = write(fd, p, n)
        if k < 0:
            if errno == EINTR:
                continue
            return errno
        p += k
        n -= <size_t>k
    return 0


cdef int _write_intent(int fd, uint8_t* head, const uint8_t* payload, size_t n, uint8_t* crc) noexcept nogil:
    """The intent record's three parts in one ``writev`` (no copy of the payload); 0 or errno."""
    cdef iovec iov[3]
    cdef ssize_t k
    iov[0].iov_base = head
    iov[0].iov_len = INTENT_HEAD_
    iov[1].iov_base = <void*>payload
    iov[1].iov_len = n
    iov[2].iov_base = crc
    iov[2].iov_len = 4
    while True:
        k = writev(fd, iov, 3)
        if k >= 0 or errno != EINTR:
            break
    if k < 0:
        return errno
    if <size_t>k == INTENT_HEAD_ + n + 4:
        return 0
    # a short write: the rest part by part, from where it stopped
    cdef size_t done = <size_t>k, at
    cdef int i, err
    for i in range(3):
        at = iov[i].iov_len if done >= iov[i].iov_len else done
        done -= at
        err = _write_all(fd, <const uint8_t*>iov[i].iov_base + at, iov[i].iov_len - at)
        if err:
            return err
    return 0


cdef const char* _utf8(object s, Py_ssize_t* n, str name) except NULL:
    if type(s) is not str:
        raise TypeError(f"{name}: expected a str, got {type(s).__name__}")
    return PyUnicode_AsUTF8AndSize(s, n)


def append_entry(int fd, int ifd, tuple item not None, int64_t seq, bytes prev not None, double when, bint sync):
    """Append entry ``seq`` (``item`` = ``(actor, operation, key, digest, result, payload)``) after ``prev``.

    Writes the intent record of ``payload`` to ``ifd`` (unless ``payload`` is
    None), then the log record to ``fd`` (with ``fdatasync`` when ``sync``),
    in this order, with the GIL released. Returns ``(hash, record_size)``.

    Raises
    ------
    TypeError
        A field of the wrong type; nothing is written.
    OSError
        A write failed; its ``filename`` is ``"intents"`` (nothing written to
        the log) or ``"log"`` (the intent record is written; the log may hold
        part of the record). The caller undoes what was written.

    Examples
    --------
    >>> import os, tempfile
    >>> from memstrata._native import auditchain
    >>> d = tempfile.mkdtemp()
    >>> fd, ifd = (os.open(os.path.join(d, n), os.O_RDWR | os.O_CREAT | os.O_APPEND) for n in ("log", "intents"))
    >>> item = ("agent", "write", "k", b"", "ok", b"value")
    >>> h, size = append_entry(fd, ifd, item, 0, bytes(32), 1.5, False)
    >>> records, rows, _, _ = auditchain.encode_records([item], 0, bytes(32), [1.5])
    >>> os.pread(fd, size, 0) == records and h == rows[0][7]
    True
    >>> os.pread(ifd, 100, 0)[12:17]
    b'value'
    >>> os.close(fd); os.close(ifd)
    """
    cdef Py_ssize_t lens[5]
    cdef const char* ptrs[5]
    cdef Py_ssize_t size, total
    cdef uint8_t stack[STACK_]
    cdef uint8_t* rec
    cdef uint8_t* c
    cdef uint8_t ihead[INTENT_HEAD_]
    cdef uint8_t icrc[4]
    cdef const uint8_t* pay = NULL
    cdef Py_ssize_t npay = 0
    cdef int err = 0, stage = 0
    if len(item) != 6:
        raise ValueError(f"item: expected (actor, operation, key, digest, result, payload), got {len(item)} fields")
    if PyBytes_GET_SIZE(prev) != 32:
        raise ValueError(f"prev: expected a 32-byte hash, got {len(prev)} bytes")
    ptrs[0] = _utf8(item[0], &lens[0], "actor")
    ptrs[1] = _utf8(item[1], &lens[1], "operation")
    ptrs[2] = _utf8(item[2], &lens[2], "key")
    digest = item[3]
    if type(digest) is not bytes:
        raise TypeError(f"digest: expected bytes, got {type(digest).__name__}")
    ptrs[3] = PyBytes_AS_STRING(digest)
    lens[3] = PyBytes_GET_SIZE(digest)
    ptrs[4] = _utf8(item[4], &lens[4], "result")
    payload = item[5]
    if payload is not None:
        if type(payload) is not bytes:
            raise TypeError(f"payload: expected bytes or None, got {type(payload).__name__}")
        if PyBytes_GET_SIZE(payload) > 0xFFFFFFFF:
            raise ValueError(f"payload: {len(payload)} bytes do not fit an intent record")
        pay = <const uint8_t*>PyBytes_AS_STRING(payload)
        npay = PyBytes_GET_SIZE(payload)
    size = MIN_ + lens[0] + lens[1] + lens[2] + lens[3] + lens[4]
    if size > 0xFFFFFFFF:
        raise ValueError(f"item: an entry of {size} bytes does not fit a record")
    total = HEAD_ + size + TAIL_
    rec = &stack[0] if total <= STACK_ else <uint8_t*>malloc(total)
    if rec == NULL:
        raise MemoryError()
    try:
        _put_le32(rec, <uint32_t>size)
        memcpy(rec + 4, PyBytes_AS_STRING(prev), 32)
        c = put_entry_body(rec + HEAD_, <uint64_t>seq, when, lens, ptrs)
        if pay != NULL:
            _put_le32(ihead, <uint32_t>npay)
            _put_le32(ihead + 4, <uint32_t>(<uint64_t>seq))
            _put_le32(ihead + 8, <uint32_t>(<uint64_t>seq >> 32))
            _put_le32(icrc, ms_crc32(ms_crc32(0, ihead + 4, 8), pay, <size_t>npay))
        with nogil:
            ms_sha256(_path, rec + 4, <size_t>(32 + size), c)
            if pay != NULL and ifd >= 0:
                err = _write_intent(ifd, ihead, pay, <size_t>npay, icrc)
                stage = 1
            if not err:
                stage = 2
                err = _write_all(fd, rec, <size_t>total)
                if not err and sync and fdatasync(fd) != 0:
                    err = errno
        if err:
            import os

            raise OSError(err, os.strerror(err), "intents" if stage == 1 else "log")
        return PyBytes_FromStringAndSize(<char*>c, 32), total
    finally:
        if rec != &stack[0]:
            free(rec)

def encode_record(bytes key not None, int64_t seq, int kind, bytes payload not None):
    """The record of ``payload`` under ``key`` at sequence ``seq`` with ``kind`` (0–255).

    Examples
    --------
    >>> import hashlib, struct
    >>> rec = encode_record(b"k", 7, 0, b"v")
    >>> head = struct.pack(">QB", 7, 0)
    >>> rec == head + hashlib.sha256(struct.pack(">I", 1) + b"k" + head + b"v").digest()[:16] + b"v"
    True
    """
    if seq < 0:
        raise ValueError(f"seq: expected a sequence number >= 0, got {seq}")
    if not 0 <= kind <= 255:
        raise ValueError(f"kind: expected a byte (0-255), got {kind}")
    cdef Py_ssize_t nk = PyBytes_GET_SIZE(key), npay = PyBytes_GET_SIZE(payload)
    if nk > 0xFFFFFFFF:
        raise ValueError(f"key: {nk} bytes do not fit a record")
    cdef Py_ssize_t nin = 4 + nk + REC_HEAD_ + npay
    cdef uint8_t stack[STACK_]
    cdef uint8_t* buf = &stack[0] if nin <= STACK_ else <uint8_t*>malloc(nin)
    if buf == NULL:
        raise MemoryError()
    out = PyBytes_FromStringAndSize(NULL, REC_HEAD_ + CHECK_ + npay)
    cdef uint8_t* o = <uint8_t*>PyBytes_AS_STRING(out)
    cdef uint8_t digest[32]
    put_be32(o, <uint32_t>(<uint64_t>seq >> 32))
    put_be32(o + 4, <uint32_t>seq)
    o[8] = <uint8_t>kind
    put_be32(buf, <uint32_t>nk)
    memcpy(buf + 4, PyBytes_AS_STRING(key), nk)
    memcpy(buf + 4 + nk, o, REC_HEAD_)
    memcpy(buf + 4 + nk + REC_HEAD_, PyBytes_AS_STRING(payload), npay)
    ms_sha256(_path, buf, <size_t>nin, digest)
    if buf != &stack[0]:
        free(buf)
    memcpy(o + REC_HEAD_, digest, CHECK_)
    memcpy(o + REC_HEAD_ + CHECK_, PyBytes_AS_STRING(payload), npay)
    return out
