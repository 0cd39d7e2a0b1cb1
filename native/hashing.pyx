"""Content digests and stable key hashing.

The digest is XXH3-128 (xxHash 0.8 stable format, seed 0) in its canonical
16-byte big-endian form: the same bytes as ``xxhash.xxh3_128_digest(data)``, on
every platform, process and release. It is a fast non-cryptographic hash: good
for deduplication and integrity checks against accidents, not against an
adversary who crafts collisions.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint64_t

import numpy as np

from memstrata._keyarrays import (
    KIND_DIGESTS as _DIGESTS, KIND_UINT64 as _UINT64, classify_with_result as _classify_with_result,
)

from _xxh3 cimport (
    key_material,
    key_name,
    ms_read64_be,
    ms_u128,
    ms_u128_to_canonical,
    ms_xxh3_128,
    ms_xxh3_long_isa,
    ms_xxh3_long_with,
    uint64_material,
)

# Above this many bytes, hashing releases the GIL (bytes are immutable; other
# buffers are held exported for the duration).
cdef enum:
    NOGIL_BYTES = 65536


cdef inline int digest_into(object data, uint8_t* out, str argname, Py_ssize_t index=-1) except -1:
    cdef ms_u128 h
    cdef Py_buffer view
    cdef const char* ptr
    cdef Py_ssize_t size
    if type(data) is bytes:
        ptr = PyBytes_AS_STRING(data)
        size = PyBytes_GET_SIZE(data)
        if size >= NOGIL_BYTES:
            with nogil:
                h = ms_xxh3_128(ptr, <size_t>size, 0)
        else:
            h = ms_xxh3_128(ptr, <size_t>size, 0)
    else:
        if isinstance(data, str):
            raise TypeError(f"{key_name(argname, index)}: expected a bytes-like object, got str; encode it "
                            f"first, e.g. {key_name(argname, index)}.encode()")
        try:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        except (BufferError, ValueError):
            raise ValueError(f"{key_name(argname, index)}: expected C-contiguous bytes-like data, got a non-contiguous "
                             f"{type(data).__name__}; copy it first (e.g. numpy.ascontiguousarray)") from None
        except TypeError:
            raise TypeError(f"{key_name(argname, index)}: expected a bytes-like object (bytes, bytearray, memoryview, "
                            f"contiguous numpy array), got {type(data).__name__}") from None
        try:
            with nogil:
                h = ms_xxh3_128(view.buf, <size_t>view.len, 0)
        finally:
            PyBuffer_Release(&view)
    ms_u128_to_canonical(h, out)
    return 0


def digest(data) -> bytes:
    """Return the 16-byte content digest (XXH3-128) of a bytes-like object.

    Parameters
    ----------
    data : bytes-like
        ``bytes``, ``bytearray``, ``memoryview`` or a C-contiguous numpy array
        (its raw bytes are hashed). Not copied.

    Returns
    -------
    bytes
        16 bytes, identical to ``xxhash.xxh3_128_digest(data)``.

    Raises
    ------
    TypeError
        ``data`` is not bytes-like (a ``str`` must be encoded first).
    ValueError
        ``data`` is a non-contiguous buffer.

    Examples
    --------
    >>> from memstrata import digest
    >>> digest(b"").hex()
    '99aa06d3014798d86001c324468d497f'
    >>> digest(bytearray(b"abc")) == digest(memoryview(b"abc"))
    True
    """
    cdef uint8_t out[16]
    digest_into(data, out, "data")
    return PyBytes_FromStringAndSize(<char*>out, 16)


def digest_many(items) -> np.ndarray:
    """Digest each bytes-like object of a sequence, or each row of a 2-D uint8 array.

    Parameters
    ----------
    items : sequence of bytes-like, or numpy.ndarray of shape (n, w) and dtype uint8
        With an array, each row's ``w`` bytes are one item.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, 16)``, dtype uint8: row ``i`` is ``digest(items[i])``.

    Raises
    ------
    TypeError
        ``items`` is not a sequence, or an item is not bytes-like.

    Examples
    --------
    >>> from memstrata import digest, digest_many
    >>> d = digest_many([b"a", b"b"])
    >>> d.shape, bytes(d[1]) == digest(b"b")
    ((2, 16), True)
    """
    cdef Py_ssize_t i, n, width
    cdef const uint8_t[:, ::1] rows
    cdef uint8_t[:, ::1] o
    if isinstance(items, np.ndarray):
        if items.dtype != np.uint8 or items.ndim != 2:
            raise TypeError(f"items: expected a sequence of bytes-like objects or a 2-D uint8 array, "
                            f"got {items.dtype} array of shape {items.shape}")
        rows = np.ascontiguousarray(items)
        n = rows.shape[0]
        width = rows.shape[1]
        out = np.empty((n, 16), dtype=np.uint8)
        o = out
        with nogil:
            for i in range(n):
                ms_u128_to_canonical(ms_xxh3_128(&rows[i, 0] if width else NULL, <size_t>width, 0), &o[i, 0])
        return out
    if isinstance(items, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"items: expected a sequence of bytes-like objects, got a single "
                        f"{type(items).__name__}; use digest() for one value")
    if not isinstance(items, (list, tuple)):
        try:
            items = list(items)
        except TypeError:
            raise TypeError(f"items: expected a sequence of bytes-like objects, "
                            f"got {type(items).__name__}") from None
    n = len(items)
    out = np.empty((n, 16), dtype=np.uint8)
    if n == 0:
        return out
    o = out
    i = 0
    for item in items:
        if type(item) is bytes:
            ms_u128_to_canonical(ms_xxh3_128(PyBytes_AS_STRING(item), <size_t>PyBytes_GET_SIZE(item), 0),
                                 &o[i, 0])
        else:
            digest_into(item, &o[i, 0], "items", i)
        i += 1
    return out


def hash_key(key) -> int:
    """Return a stable 64-bit hash of a str, bytes-like or int key.

    Unlike the built-in ``hash()``, the value is the same in every process
    (whatever ``PYTHONHASHSEED``), platform and release, so it can be persisted.
    It is the low 64 bits of the key's XXH3-128 material: bytes-like keys hash
    their content (seed 0), ``str`` keys their UTF-8 encoding (seed 1), ints in
    ``[0, 2**64)`` their 8 little-endian bytes (seed 2), other ints their
    shortest two's-complement little-endian bytes (seed 3). ``True`` hashes
    like ``1``, as ``True == 1``; numpy integer scalars hash like Python ints.

    Parameters
    ----------
    key : str, bytes-like or int

    Returns
    -------
    int
        In ``[0, 2**64)``.

    Raises
    ------
    TypeError
        ``key`` is of another type (float, tuple, None, ...).

    Examples
    --------
    >>> from memstrata import hash_key
    >>> hash_key("agent-7") == hash_key("agent-7") != hash_key(b"agent-7")
    True
    >>> hash_key(42)
    9179783601678362669
    """
    cdef ms_u128 h
    key_material(key, &h, "key")
    return h.lo


def hash_keys(keys) -> np.ndarray:
    """Return the stable 64-bit hashes of a batch of keys (see :func:`hash_key`).

    Parameters
    ----------
    keys : numpy.ndarray or sequence
        A 1-D unsigned (or non-negative signed) integer array, an ``(n, 16)``
        uint8 array of content digests (each row stands for the bytes it is the
        digest of), or a sequence of str / bytes-like / int keys.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)``, dtype uint64.

    Examples
    --------
    >>> import numpy as np
    >>> from memstrata import digest_many, hash_key, hash_keys
    >>> int(hash_keys(np.array([42], dtype=np.uint64))[0]) == hash_key(42)
    True
    >>> int(hash_keys(digest_many([b"x"]))[0]) == hash_key(b"x")
    True
    """
    cdef Py_ssize_t i, n
    cdef ms_u128 h
    cdef const uint8_t[:, ::1] digests
    cdef const uint64_t[::1] ints
    cdef uint64_t[::1] o
    kind, data, out = _classify_with_result(keys, np.uint64, zeroed=False)
    n = len(out)
    if n == 0:
        return out
    o = out
    if kind == _DIGESTS:
        digests = data
        with nogil:
            for i in range(n):
                o[i] = ms_read64_be(&digests[i, 8])
    elif kind == _UINT64:
        ints = data
        with nogil:
            for i in range(n):
                o[i] = uint64_material(ints[i]).lo
    else:
        objects = <list>data
        for i in range(n):
            key_material(objects[i], &h, "keys", i)
            o[i] = h.lo
    return out


def _long_input_isa() -> str:
    """The instruction set hashing inputs over 240 bytes here: avx2, sse2 or scalar."""
    return ms_xxh3_long_isa().decode()


def _digest_long_with(str isa, bytes data) -> bytes:
    """Digest ``data`` (over 240 bytes) with one long-input implementation (a test hook)."""
    cdef ms_u128 h
    cdef uint8_t out[16]
    if ms_xxh3_long_with(isa.encode(), <const uint8_t*>PyBytes_AS_STRING(data), len(data), &h) != 0:
        raise ValueError(f"isa: {isa!r} is not available here, or data is not over 240 bytes")
    ms_u128_to_canonical(h, out)
    return PyBytes_FromStringAndSize(<char*>out, 16)


def count_hit(bytearray counts not None, bytes name not None) -> int:
    """Count one access of ``name`` in a sketch of one-byte counters; returns its count, this access included.

    ``name``'s two counters are bits 0-15 and 16-31 of :func:`hash_key` of it;
    each is raised by one unless at 255, and the smaller of the two (before the
    raise) plus one is returned. The twin of
    ``memstrata.tiers._reads.count_hit`` (its readable reference), in one call.

    Raises
    ------
    ValueError
        ``counts`` is not ``2**16`` bytes long.

    Examples
    --------
    >>> counts = bytearray(1 << 16)
    >>> count_hit(counts, b"k"), count_hit(counts, b"k"), sum(counts)
    (1, 2, 4)
    """
    if PyByteArray_GET_SIZE(counts) != 1 << 16:
        raise ValueError(f"counts: expected {1 << 16} one-byte counters, got {PyByteArray_GET_SIZE(counts)}")
    cdef uint64_t h = ms_xxh3_128(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name), 0).lo
    cdef uint8_t* c = <uint8_t*>PyByteArray_AS_STRING(counts)
    cdef uint8_t a = c[h & 0xFFFF], b = c[(h >> 16) & 0xFFFF]
    if a < 255:
        c[h & 0xFFFF] = a + 1
    if b < 255:
        c[(h >> 16) & 0xFFFF] = b + 1
    return (a if a < b else b) + 1
