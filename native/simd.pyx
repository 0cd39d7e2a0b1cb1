"""SIMD top-k scans over int8 codes, int4 nibble codes and packed bits.

The kernels live in ``ms_simd.h``; every instruction path is compiled into
this one module and :func:`supported` says which of them this CPU runs.
Arguments arrive validated (``memstrata.kernels.scan`` checks shapes and
dtypes and picks the path); the scans release the GIL.
"""

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t

import numpy as np

__test__ = {}

cdef extern from "ms_simd.h" nogil:
    int MS_PORTABLE
    int MS_AVX2
    int MS_AVXVNNI
    int MS_AVX512VNNI
    int ms_simd_supported(int path)
    int ms_has_vpopcntdq()
    ctypedef void (*ms_tile_fn)(const int16_t *w, int64_t wstride, const uint8_t *codes, int64_t d, int64_t cstride,
                                int nq, int nr, int32_t *dots)
    ms_tile_fn ms_i8_tile(int path)
    ctypedef void (*ms_row_fn)(const int16_t *w, const int8_t *codes, int64_t d, int64_t cstride, int nr,
                               int32_t *dots)
    ms_tile_fn ms_i4_tile(int path)
    ms_row_fn ms_i8_row(int path)
    int ms_scan(ms_tile_fn tile, ms_row_fn row, int widen, const int16_t *w, int64_t wstride, const float *factor, const uint8_t *codes,
                 int64_t n, int64_t d, int64_t cstride, const float *bias, int64_t nq, int64_t k,
                 float *out_s, int64_t *out_i, float *heap_s, int64_t *heap_i)
    int ms_hamming_scan(int path, const uint8_t *q, int64_t nq, const uint8_t *codes, int64_t n, int64_t width,
                         int64_t k, int32_t *out_d, int64_t *out_i, float *heap_s, int64_t *heap_i)

#: Path names in order of preference (best last), as ``MEMSTRATA_SIMD`` spells them.
PATHS = ("portable", "avx2", "avxvnni", "avx512vnni")


def supported(str path) -> bool:
    """Whether this CPU (and this build's compiler) runs instruction path ``path``.

    >>> supported("portable")              # the portable C path runs everywhere
    True
    """
    return bool(ms_simd_supported(PATHS.index(path)))


def has_vpopcntdq() -> bool:
    """Whether the CPU has AVX-512 VPOPCNTDQ (``vpopcntq``, used by Hamming on the avx512vnni path)."""
    return bool(ms_has_vpopcntdq())


cdef inline int _path(str path) except -1:
    cdef int p = PATHS.index(path)
    if not ms_simd_supported(p):
        raise ValueError(f"path: this CPU does not run the {path!r} instructions")
    return p


cdef int _quantized_scan(ms_tile_fn tile, ms_row_fn row, int widen, const int16_t[:, ::1] weights,
                         const float[::1] factor, const uint8_t *codes, int64_t n, int64_t d, int64_t cstride,
                         const float[::1] bias, int64_t k, float[:, ::1] out_s, int64_t[:, ::1] out_i) except -1:
    """The int8 and int4 scans: one blocked top-k loop, told how to take dot products of a tile (and a row)."""
    cdef int64_t nq = weights.shape[0]
    if nq == 0:
        return 0
    heap_s = np.empty((nq, k), np.float32)
    heap_i = np.empty((nq, k), np.int64)
    cdef float[:, ::1] hs = heap_s
    cdef int64_t[:, ::1] hi = heap_i
    cdef int status
    with nogil:
        status = ms_scan(tile, row, widen, &weights[0, 0], weights.shape[1], &factor[0], codes, n, d, cstride,
                         &bias[0] if n > 0 else NULL, nq, k, &out_s[0, 0], &out_i[0, 0], &hs[0, 0], &hi[0, 0])
    if status != 0:
        raise MemoryError("scan: no memory for the per-query heaps and block buffer")
    return 0


def int8_scan(const int16_t[:, ::1] weights, const float[::1] factor, const int8_t[:, ::1] codes,
              const float[::1] bias, int64_t k, float[:, ::1] out_s, int64_t[:, ::1] out_i, str path) -> None:
    """Top-k of ``factor[a] * (weights[a] . codes[i]) + bias[i]`` over every row, best first."""
    cdef int p = _path(path)
    cdef int64_t n = codes.shape[0], d = codes.shape[1]
    _quantized_scan(ms_i8_tile(p), ms_i8_row(p), 1, weights, factor,
                    <const uint8_t *>(&codes[0, 0]) if n > 0 else NULL, n, d, d, bias, k, out_s, out_i)


def int4_scan(const int16_t[:, ::1] weights, const float[::1] factor, const uint8_t[:, ::1] packed, int64_t d,
              const float[::1] bias, int64_t k, float[:, ::1] out_s, int64_t[:, ::1] out_i, str path) -> None:
    """As :func:`int8_scan` for nibble codes; ``weights`` hold the even dimensions, then the odd ones."""
    cdef int p = _path(path)
    cdef int64_t n = packed.shape[0]
    _quantized_scan(ms_i4_tile(p), NULL, 0, weights, factor, &packed[0, 0] if n > 0 else NULL, n, d,
                    packed.shape[1], bias, k, out_s, out_i)


def hamming_scan(const uint8_t[:, ::1] queries, const uint8_t[:, ::1] codes, int64_t k,
                 int32_t[:, ::1] out_d, int64_t[:, ::1] out_i, str path) -> None:
    """The ``k`` rows nearest each query by Hamming distance, ascending, ties to the lower row.

    >>> import numpy as np
    >>> codes = np.zeros((3, 8), np.uint8)
    >>> codes[:, 0] = [0b1111, 0b0001, 0b0000]
    >>> query = np.zeros((1, 8), np.uint8)
    >>> query[0, 0] = 0b0001
    >>> d, i = np.empty((1, 2), np.int32), np.empty((1, 2), np.int64)
    >>> hamming_scan(query, codes, 2, d, i, "portable")
    >>> d.tolist(), i.tolist()
    ([[0, 1]], [[1, 2]])
    """
    cdef int p = _path(path)
    cdef int64_t nq = queries.shape[0], n = codes.shape[0], width = queries.shape[1]
    heap_s = np.empty((max(nq, 1), k), np.float32)
    heap_i = np.empty((max(nq, 1), k), np.int64)
    cdef float[:, ::1] hs = heap_s
    cdef int64_t[:, ::1] hi = heap_i
    if nq == 0:
        return
    cdef int status
    with nogil:
        status = ms_hamming_scan(p, &queries[0, 0], nq, &codes[0, 0] if n > 0 else NULL, n, width, k,
                        &out_d[0, 0], &out_i[0, 0], &hs[0, 0], &hi[0, 0])
    if status != 0:
        raise MemoryError("scan: no memory for the per-query heaps and block buffer")
