"""Frame headers and value preparation: the per-item hot paths of the codecs.

``build`` and ``parse`` are byte-for-byte twins of ``memstrata.codecs._frame``
(``build_frame`` / ``parse_frame``), which is the readable reference of the
format; ``prepare`` is the twin of ``memstrata.codecs._values._prepare``.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.dict cimport PyDict_Copy, PyDict_Next, PyDict_SetItem
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_SET_ITEM
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.stdint cimport uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy

from _xxh3 cimport ms_u128, ms_u128_to_canonical, ms_xxh3_128

from memstrata._frame_head import FrameVersionError, check_head, resolve_dictionary
from memstrata.errors import CorruptDataError

cdef extern from "Python.h":
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1
    bint PyLong_CheckExact(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyFloat_CheckExact(object o)
    bint PyBytes_CheckExact(object o)
    bint PyDict_CheckExact(object o)
    bint PyList_CheckExact(object o)
    bint PyBool_Check(object o)

cdef enum:
    CHECKSUM_SIZE = 8
    MIN_SIZE = 14
    FORMAT_VERSION = 1
    FLAG_KIND = 0x07
    FLAG_LONG_DIGEST = 0x08
    FLAG_META = 0x10
    FLAG_DICT = 0x20
    FLAG_IMPLICIT = 0x40
    FLAG_RESERVED = 0x80
    IMPLICIT_MAX_LENGTH = 65536
    IMPLICIT_MAX_CODEC = 3


cdef inline int checksum_into(const uint8_t* body, size_t n, const uint8_t* tail, size_t n_tail, uint8_t* out) except -1:
    """First 8 bytes of XXH3-128(body ‖ tail) into ``out`` (tail: dictionary and/or content digest)."""
    cdef uint8_t full[16]
    cdef uint8_t* tmp
    cdef ms_u128 h
    if n_tail == 0:
        with nogil:
            h = ms_xxh3_128(body, n, 0)
    else:
        tmp = <uint8_t*>malloc(n + n_tail)
        if tmp == NULL:
            raise MemoryError()
        memcpy(tmp, body, n)
        memcpy(tmp + n, tail, n_tail)
        with nogil:
            h = ms_xxh3_128(tmp, n + n_tail, 0)
        free(tmp)
    ms_u128_to_canonical(h, full)
    memcpy(out, full, CHECKSUM_SIZE)
    return 0


cdef inline Py_ssize_t put_varint(uint8_t* p, uint64_t n) noexcept nogil:
    cdef Py_ssize_t i = 0
    while n >= 0x80:
        p[i] = <uint8_t>((n & 0x7F) | 0x80)
        n >>= 7
        i += 1
    p[i] = <uint8_t>n
    return i + 1


cdef inline Py_ssize_t get_varint(const uint8_t* p, Py_ssize_t pos, Py_ssize_t end, uint64_t* out) except -1:
    cdef uint64_t result = 0
    cdef int shift = 0
    cdef uint8_t b
    while True:
        if pos >= end or shift > 63:
            raise CorruptDataError("frame: malformed length field")
        b = p[pos]
        pos += 1
        if shift == 63 and (b & 0x7F) > 1:
            raise CorruptDataError("frame: malformed length field")
        result |= (<uint64_t>(b & 0x7F)) << shift
        if b < 0x80:
            out[0] = result
            return pos
        shift += 7


def build(int codec_id, int kind, payload, uint64_t original_length, bytes content_digest,
          bytes meta=b"", dictionary_digest=None, bint implicit=False) -> bytes:
    """Assemble a frame (see ``memstrata.codecs._frame._py_build_frame``, its readable reference).

    Examples
    --------
    >>> frame = build(0, 1, b"hello", 5, bytes(range(8)))
    >>> len(frame), frame[:3]    # 5-byte head + varint length + digest + payload + checksum
    (27, b'\\x89M\\x01')
    >>> build(0, 1, b"hello", 5, b"short")
    Traceback (most recent call last):
    ...
    ValueError: content_digest: expected 8 or 16 bytes
    """
    cdef Py_buffer view
    cdef uint8_t head[64]
    cdef uint8_t tail[32]
    cdef Py_ssize_t h = 5, n_digest = len(content_digest), n_stored, n_meta = len(meta), total, n_tail = 0
    cdef int flags = kind
    cdef bytes dd_bytes
    if implicit:
        if n_digest != 16:
            raise ValueError("content_digest: an implicit digest needs all 16 bytes")
        flags |= FLAG_IMPLICIT
        n_stored = 0
    else:
        if n_digest != 8 and n_digest != 16:
            raise ValueError("content_digest: expected 8 or 16 bytes")
        if n_digest == 16:
            flags |= FLAG_LONG_DIGEST
        n_stored = n_digest
    h += put_varint(head + h, original_length)
    if n_meta:
        flags |= FLAG_META
        h += put_varint(head + h, <uint64_t>n_meta)
    if dictionary_digest is not None:
        dd_bytes = bytes(dictionary_digest)
        if len(dd_bytes) != 16:
            raise ValueError("dictionary_digest: expected 16 bytes")
        flags |= FLAG_DICT
        memcpy(head + h, PyBytes_AS_STRING(dd_bytes), 4)
        h += 4
        memcpy(tail, PyBytes_AS_STRING(dd_bytes), 16)
        n_tail = 16
    if implicit:
        memcpy(tail + n_tail, PyBytes_AS_STRING(content_digest), 16)
        n_tail += 16
    head[0] = 0x89
    head[1] = 0x4D
    head[2] = FORMAT_VERSION
    head[3] = <uint8_t>codec_id
    head[4] = <uint8_t>flags
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        total = h + n_stored + n_meta + view.len + CHECKSUM_SIZE
        out = PyBytes_FromStringAndSize(NULL, total)
        p = <uint8_t*>PyBytes_AS_STRING(out)
        memcpy(p, head, h)
        if n_stored:
            memcpy(p + h, PyBytes_AS_STRING(content_digest), n_stored)
            h += n_stored
        if n_meta:
            memcpy(p + h, PyBytes_AS_STRING(meta), n_meta)
            h += n_meta
        memcpy(p + h, view.buf, view.len)
        h += view.len
    finally:
        PyBuffer_Release(&view)
    checksum_into(p, <size_t>h, tail, <size_t>n_tail, p + h)
    return out


def checksum_matches(frame, bytes tail) -> bool:
    """Whether the last 8 bytes of ``frame`` are the checksum of the rest followed by ``tail``.

    Examples
    --------
    >>> digest = bytes(range(16))
    >>> frame = build(0, 1, b"hello", 5, digest, implicit=True)   # the digest is not stored
    >>> checksum_matches(frame, digest), checksum_matches(frame, bytes(16))
    (True, False)
    """
    cdef Py_buffer view
    cdef uint8_t expected[CHECKSUM_SIZE]
    cdef bint ok
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    try:
        if view.len < CHECKSUM_SIZE:
            return False
        checksum_into(<const uint8_t*>view.buf, <size_t>(view.len - CHECKSUM_SIZE),
                      <const uint8_t*>PyBytes_AS_STRING(tail), <size_t>len(tail), expected)
        ok = memcmp(expected, <const uint8_t*>view.buf + view.len - CHECKSUM_SIZE, CHECKSUM_SIZE) == 0
    finally:
        PyBuffer_Release(&view)
    return ok


def parse(frame, lookup, bint verify=True):
    """Parse and verify a frame header (see ``memstrata.codecs._frame.parse_frame``).

    Returns ``(version, codec_id, kind, original_length, content_digest,
    dictionary_ref, meta_start, meta_length, payload_offset, payload_length,
    dictionary, dictionary_digest, implicit)``. With ``implicit`` true the
    checksum also covers the content digest, which the caller computes from the
    decoded payload and checks with :func:`checksum_matches`.

    Examples
    --------
    >>> frame = build(3, 1, b"hello", 5, bytes(range(8)))
    >>> fields = parse(frame, None)
    >>> fields[:4], fields[4], frame[fields[8]:fields[8] + fields[9]]
    ((1, 3, 1, 5), b'\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07', b'hello')
    >>> damaged = bytearray(frame)
    >>> damaged[20] ^= 0x01                 # one flipped bit in the payload
    >>> parse(bytes(damaged), None)
    Traceback (most recent call last):
    ...
    memstrata.errors.CorruptDataError: ...
    """
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t end, body_end, pos, meta_start, digest_length
    cdef uint64_t original_length = 0, meta_length = 0
    cdef int version, codec_id, flags
    cdef uint8_t expected[CHECKSUM_SIZE]
    cdef const uint8_t* dd = NULL
    cdef bint implicit
    ref = None
    dictionary = None
    dict_digest = None
    PyObject_GetBuffer(frame, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        end = view.len
        if end < MIN_SIZE or p[0] != 0x89 or p[1] != 0x4D or p[2] != FORMAT_VERSION or p[4] & FLAG_RESERVED:
            check_head(PyBytes_FromStringAndSize(<const char*>p, 5 if end >= 5 else end), end)  # raises
        version = p[2]
        codec_id = p[3]
        flags = p[4]
        implicit = (flags & FLAG_IMPLICIT) != 0
        body_end = end - CHECKSUM_SIZE
        pos = get_varint(p, 5, body_end, &original_length)
        if implicit and (flags & FLAG_LONG_DIGEST or (flags & FLAG_KIND) > 2 or codec_id > IMPLICIT_MAX_CODEC
                         or original_length > IMPLICIT_MAX_LENGTH):
            raise CorruptDataError("frame: implicit content digest on a frame that cannot have one")
        if flags & FLAG_META:
            pos = get_varint(p, pos, body_end, &meta_length)
        if flags & FLAG_DICT:
            if pos + 4 > body_end:
                raise CorruptDataError("frame: truncated (header runs past the end)")
            ref = PyBytes_FromStringAndSize(<const char*>p + pos, 4)
            pos += 4
            dict_digest, dictionary = resolve_dictionary(ref, lookup)
            dd = <const uint8_t*>PyBytes_AS_STRING(dict_digest)
        digest_length = 0 if implicit else 16 if flags & FLAG_LONG_DIGEST else 8
        if pos + digest_length > body_end or meta_length > <uint64_t>(body_end - pos - digest_length):
            raise CorruptDataError("frame: truncated (header runs past the end)")
        content_digest = PyBytes_FromStringAndSize(<const char*>p + pos, digest_length)
        pos += digest_length
        meta_start = pos
        pos += <Py_ssize_t>meta_length
        if verify and not implicit:
            checksum_into(p, <size_t>body_end, dd, 16 if dd != NULL else 0, expected)
            if memcmp(expected, p + body_end, CHECKSUM_SIZE) != 0:
                raise CorruptDataError("frame: checksum mismatch (corrupt, truncated or spliced frame)")
    finally:
        PyBuffer_Release(&view)
    return (version, codec_id, flags & FLAG_KIND, original_length, content_digest, ref,
            meta_start, <Py_ssize_t>meta_length, pos, body_end - pos, dictionary, dict_digest, implicit)


cdef object INT_MAX = 2**64 - 1


cdef inline bint int_fits(object v) except -1:
    """Whether an exact int is msgpack-native: in [-2**63, 2**64 - 1]."""
    cdef int overflow = 0
    PyLong_AsLongLongAndOverflow(v, &overflow)
    if overflow == 0:
        return True
    if overflow < 0:
        return False
    return v <= INT_MAX


cdef object prep(object v, object fallback, int depth):
    cdef Py_ssize_t i, n, pos
    cdef PyObject* k
    cdef PyObject* x
    cdef object y, out
    if depth > 10000:
        raise RecursionError("value: nested too deeply")
    if PyUnicode_CheckExact(v) or PyFloat_CheckExact(v) or v is None or PyBytes_CheckExact(v):
        return v
    if PyLong_CheckExact(v):
        if int_fits(v):
            return v
        return fallback(v)
    if PyBool_Check(v):  # bool is final: exactly True or False
        return v
    if PyList_CheckExact(v):
        n = PyList_GET_SIZE(v)
        out = None
        for i in range(n):
            x = PyList_GET_ITEM(v, i)
            y = prep(<object>x, fallback, depth + 1)
            if y is not <object>x:
                if out is None:
                    out = list(v)
                out[i] = y
        return v if out is None else out
    if PyDict_CheckExact(v):
        out = None
        pos = 0
        while PyDict_Next(v, &pos, &k, &x):
            key = <object>k
            if not (PyUnicode_CheckExact(key) or PyBytes_CheckExact(key) or PyFloat_CheckExact(key)
                    or key is None or PyBool_Check(key)):
                if not PyLong_CheckExact(key):
                    raise TypeError(f"value: dict keys of type {type(key).__name__} are not serializable "
                                    "(use str, int, bytes, float, bool or None)")
                if not int_fits(key):
                    raise TypeError("value: dict keys must be ints within 64 bits")
            y = prep(<object>x, fallback, depth + 1)
            if y is not <object>x:
                if out is None:
                    out = PyDict_Copy(v)
            if out is not None:
                PyDict_SetItem(out, key, y)
        return v if out is None else out
    return fallback(v)


def prepare(value, fallback):
    """``value`` with every part that is not plain msgpack data replaced by ``fallback(part)``.

    Plain data: exact ``str``, ``bytes``, ``float``, ``bool``, ``None``, 64-bit
    ``int``, and exact ``list`` / ``dict`` of plain data (dict keys: str, int,
    bytes, float, bool, None). Containers are copied only when something inside
    them changes.

    Examples
    --------
    >>> plain = {"a": [1, 2.5, None]}
    >>> prepare(plain, repr) is plain        # nothing to replace: not copied
    True
    >>> prepare({"a": [1, {2, 3}]}, sorted)  # a set is not msgpack data
    {'a': [1, [2, 3]]}
    """
    return prep(value, fallback, 0)


cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident()

cdef extern from "Python.h":
    object PyByteArray_FromStringAndSize(const char* s, Py_ssize_t n)

cdef enum:
    KIND_BYTES = 0
    KIND_VALUE = 1
    KIND_ARRAY = 2
    CODEC_RAW = 0
    CODEC_ZSTD = 2
    CODEC_BLOSC2 = 4
    BLOSC2_HEADER = 32
    BLOSC2_EXTENDED_MEMCPY = 0x07


cdef inline uint64_t le32(const uint8_t* p) noexcept nogil:
    return <uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16) | (<uint64_t>p[3] << 24)


def quick(lookup, dict decompressors not None, decoder, dict specs not None, frombuffer, slow, bytes frame not None):
    """The compiled twin of ``memstrata.codecs._quick.quick_decode``: the value it gives, or ``slow``.

    ``frame`` comes last so that the other arguments can be bound once. Where
    the readable twin would first make something, this returns ``slow`` and
    leaves that to it: this thread's zstd decompressor for the frame's
    dictionary (``decompressors``, keyed by ``(thread id, dictionary digest)``),
    the ``(dtype, shape)`` of an array frame's meta block (``specs``, keyed by
    the block's bytes). ``decoder`` decodes serialized values, ``frombuffer`` is
    ``numpy.frombuffer``.

    >>> frame = build(0, 0, b"hello", 5, bytes(16), implicit=True)   # raw bytes, but a wrong digest
    >>> quick(None, {}, None, {}, None, "slow", frame)
    'slow'
    """
    cdef tuple fields
    try:
        fields = parse(frame, lookup, True)
    except CorruptDataError:
        return slow
    cdef int codec = fields[1], kind = fields[2]
    cdef Py_ssize_t n = fields[3], meta_start = fields[6], meta_length = fields[7]
    cdef Py_ssize_t offset = fields[8], length = fields[9]
    cdef object dictionary_digest = fields[11]
    cdef bint implicit = fields[12]
    cdef const uint8_t* p = <const uint8_t*>PyBytes_AS_STRING(frame)
    cdef Py_ssize_t end = len(frame), t, i
    cdef const uint8_t* c
    cdef uint8_t tail[32]
    cdef uint8_t expected[CHECKSUM_SIZE]
    if kind == KIND_VALUE or kind == KIND_BYTES:
        if meta_length:
            return slow
        if codec == CODEC_ZSTD and n:
            d = decompressors.get((PyThread_get_thread_ident(), dictionary_digest))
            if d is None:
                return slow
            try:
                out = d.decompress(frame[offset:offset + length], max_output_size=n)
            except Exception:  # the general path names the failure
                return slow
        elif codec == CODEC_RAW:
            out = frame[offset:offset + length]
        else:
            return slow
        if type(out) is not bytes or len(out) != n:  # a decompressor's output, whole
            return slow
        if implicit:  # the checksum covers the digest of the decoded bytes
            t = 0
            if dictionary_digest is not None:
                memcpy(tail, PyBytes_AS_STRING(dictionary_digest), 16)
                t = 16
            ms_u128_to_canonical(ms_xxh3_128(PyBytes_AS_STRING(out), <size_t>n, 0), tail + t)
            checksum_into(p, <size_t>(end - CHECKSUM_SIZE), tail, <size_t>(t + 16), expected)
            if memcmp(expected, p + end - CHECKSUM_SIZE, CHECKSUM_SIZE) != 0:
                return slow
        if kind == KIND_BYTES:
            return out
        try:
            return decoder.decode(out)
        except Exception:
            return slow
    if kind != KIND_ARRAY or codec != CODEC_BLOSC2 or implicit or not meta_length:
        return slow
    spec = specs.get(frame[meta_start:meta_start + meta_length])
    if spec is None or n <= 0 or length != n + BLOSC2_HEADER:
        return slow
    c = p + offset  # a blosc2 chunk: only one that holds its bytes whole, unfiltered, is taken here
    if c[2] & BLOSC2_EXTENDED_MEMCPY != BLOSC2_EXTENDED_MEMCPY or le32(c + 4) != <uint64_t>n or le32(c + 12) != <uint64_t>length:
        return slow
    for i in range(16, 22):
        if c[i]:
            return slow
    if c[31]:
        return slow
    try:
        return frombuffer(PyByteArray_FromStringAndSize(<const char*>c + BLOSC2_HEADER, n), dtype=spec[0]).reshape(spec[1])
    except ValueError:
        return slow
