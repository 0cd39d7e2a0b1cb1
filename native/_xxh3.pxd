# C declarations of ms_xxh3.h, and the inline key -> hash-material function that
# hashing.pyx and bloom.pyx share. Only inline code lives here, so cimporting it
# adds no runtime import between extension modules.

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_CheckBuffer, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.long cimport PyLong_Check
from cpython.number cimport PyIndex_Check
from libc.stdint cimport uint8_t, uint32_t, uint64_t


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t* size) except NULL


cdef extern from "ms_xxh3.h" nogil:
    ctypedef struct ms_u128:
        uint64_t lo
        uint64_t hi
    ms_u128 ms_xxh3_128(const void* data, size_t length, uint64_t seed)
    void ms_u128_to_canonical(ms_u128 h, uint8_t* out)
    ms_u128 ms_u128_from_canonical(const uint8_t* inp)
    uint64_t ms_read64_be(const uint8_t* p)
    void ms_write64(uint8_t* p, uint64_t v)
    uint64_t ms_mulhi64(uint64_t a, uint64_t b)
    const char* ms_xxh3_long_isa()
    int ms_xxh3_long_with(const char* isa, const uint8_t* p, size_t length, ms_u128* out)


# Seeds that keep key types apart: the str "a", the bytes b"a" and the int 97
# hash differently. Bytes-like keys use seed 0, so their material is exactly
# their content digest. Part of the persisted format: never change them.
cdef enum:
    STR_SEED = 1
    INT_SEED = 2
    BIGINT_SEED = 3


cdef inline ms_u128 uint64_material(uint64_t value) noexcept nogil:
    """Hash material of an int key in [0, 2**64): XXH3-128 of its 8 LE bytes."""
    cdef uint8_t word[8]
    ms_write64(word, value)
    return ms_xxh3_128(word, 8, INT_SEED)


cdef inline int int_material(object key, ms_u128* out) except -1:
    cdef unsigned long long value
    try:
        value = key
    except OverflowError:
        # negative or wider than 64 bits: shortest two's-complement LE bytes
        raw = key.to_bytes((key.bit_length() + 8) // 8, "little", signed=True)
        out[0] = ms_xxh3_128(PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), BIGINT_SEED)
        return 0
    out[0] = uint64_material(value)
    return 0


cdef inline str key_name(str argname, Py_ssize_t index):
    """The name an error message gives a key: ``key`` or ``keys[3]``."""
    return argname if index < 0 else f"{argname}[{index}]"


cdef inline int buffer_material(object key, ms_u128* out, str argname, Py_ssize_t index) except -1:
    cdef Py_buffer view
    try:
        PyObject_GetBuffer(key, &view, PyBUF_SIMPLE)
    except (BufferError, ValueError):
        raise ValueError(f"{key_name(argname, index)}: bytes-like data must be C-contiguous, got a non-contiguous "
                         f"{type(key).__name__}; copy it first (e.g. numpy.ascontiguousarray)") from None
    try:
        with nogil:
            out[0] = ms_xxh3_128(view.buf, <size_t>view.len, 0)
    finally:
        PyBuffer_Release(&view)
    return 0


cdef inline int other_material(object key, ms_u128* out, str argname, Py_ssize_t index) except -1:
    """The slow path: numpy integer scalars and bytes-like objects other than bytes."""
    cdef bint is_scalar = getattr(key, "ndim", 1) == 0
    if is_scalar and PyIndex_Check(key):
        try:
            index = key.__index__()
        except TypeError:
            pass
        else:
            return int_material(index, out)
    if not is_scalar and not isinstance(key, (float, complex)) and PyObject_CheckBuffer(key):
        return buffer_material(key, out, argname, index)
    raise TypeError(f"{key_name(argname, index)}: expected str, bytes-like or int, got {type(key).__name__}")


cdef inline int key_material(object key, ms_u128* out, str argname, Py_ssize_t index=-1) except -1:
    """The 128-bit hash material of a key, stable across processes and platforms.

    bytes-like -> XXH3-128(content) (its digest); str -> XXH3-128(UTF-8, seed 1);
    int in [0, 2**64) -> XXH3-128(8 little-endian bytes, seed 2); any other int ->
    XXH3-128(shortest two's-complement little-endian bytes, seed 3).
    Errors name the key ``argname``, or ``argname[index]`` when index >= 0.
    """
    cdef Py_ssize_t size
    cdef const char* utf8
    if type(key) is bytes:
        out[0] = ms_xxh3_128(PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key), 0)
        return 0
    if type(key) is str:
        utf8 = PyUnicode_AsUTF8AndSize(key, &size)
        out[0] = ms_xxh3_128(utf8, size, STR_SEED)
        return 0
    if PyLong_Check(key):
        return int_material(key, out)
    return other_material(key, out, argname, index)
