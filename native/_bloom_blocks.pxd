# The block layout of memstrata's Bloom filter (bloom.pyx): sizing (argument checks and geometry), bit probing,
# the batched probe loop, and estimates from the bits set. Only inline code lives
# here, so cimporting it adds no runtime import between extension modules.

from cpython.number cimport PyNumber_Index
from libc.math cimport exp, lgamma, log, sqrt
from libc.stdint cimport uint8_t, uint32_t, uint64_t

from _xxh3 cimport ms_mulhi64, ms_u128, ms_u128_from_canonical, uint64_material


cdef extern from "stdlib.h" nogil:
    int posix_memalign(void** memptr, size_t alignment, size_t size)


cdef extern from * nogil:
    """
    #define MS_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
    static inline int ms_popcount64(unsigned long long x) { return __builtin_popcountll(x); }
    """
    void MS_PREFETCH(const void* p)
    int ms_popcount64(unsigned long long x)


cdef enum:
    BLOCK_BITS = 512
    BLOCK_WORDS = 8
    BLOCK_BYTES = 64
    MAX_HASHES = 64
    FIELDS_PER_WORD = 7  # 9-bit positions in a 64-bit word
    # Batch loops hash a chunk of keys and prefetch their blocks, then probe
    # them, so the memory accesses of a chunk overlap.
    CHUNK = 32


# ---------------------------------------------------------------- geometry --

cdef inline double blocked_fp_rate(double n_keys, double n_blocks, int k) noexcept nogil:
    """Expected false-positive rate of a blocked filter.

    The keys in one block follow Poisson(n_keys / n_blocks); each key sets k
    independent uniform positions, so a block holding ``j`` keys answers a
    fresh key falsely with (1 - (1 - 1/512)^(k j))^k.
    """
    cdef double lam = n_keys / n_blocks
    cdef double spread = 12.0 * sqrt(lam) + 30.0
    cdef double keep = (1.0 - 1.0 / BLOCK_BITS) ** k
    cdef double total = 0.0, log_lam = log(lam) if lam > 0 else 0.0
    cdef long j, j_lo = <long>(lam - spread) if lam > spread else 0
    cdef long j_hi = <long>(lam + spread) + 1
    for j in range(j_lo, j_hi + 1):
        total += exp(-lam + j * log_lam - lgamma(j + 1.0)) * (1.0 - keep ** j) ** k
    return total


cdef inline uint64_t min_blocks(double n_keys, double fp_rate, int k, uint64_t start) noexcept nogil:
    """Fewest blocks for which ``k`` hashes meet ``fp_rate`` (0 when out of reach)."""
    cdef uint64_t lo = 1, hi = start if start > 0 else 1, mid
    while blocked_fp_rate(n_keys, <double>hi, k) > fp_rate:
        lo = hi + 1
        if hi > (<uint64_t>1 << 52):
            return 0
        hi *= 2
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if blocked_fp_rate(n_keys, <double>mid, k) <= fp_rate:
            hi = mid
        else:
            lo = mid + 1
    return hi


# ----------------------------------------------------------------- sizing --

cdef inline object check_capacity(object capacity):
    if isinstance(capacity, bool):
        raise TypeError("capacity: expected a positive int, got bool")
    try:
        value = PyNumber_Index(capacity)
    except TypeError:
        raise TypeError(f"capacity: expected a positive int, got {type(capacity).__name__}") from None
    if value <= 0:
        raise ValueError(f"capacity: expected a positive int, got {value}")
    if value >= 2 ** 53:
        raise ValueError(f"capacity: expected fewer than 2**53 keys, got {value}")
    return value


cdef inline double check_fp_rate(object fp_rate) except -1.0:
    if isinstance(fp_rate, bool) or not isinstance(fp_rate, (int, float)) and not hasattr(fp_rate, "__float__"):
        raise TypeError(f"fp_rate: expected a float in (0, 1), got {type(fp_rate).__name__}")
    value = float(fp_rate)
    if not 0.0 < value < 1.0:
        raise ValueError(f"fp_rate: expected a float in (0, 1), got {fp_rate!r}")
    return value


cdef inline tuple geometry(uint64_t capacity, double fp_rate):
    """Return ``(n_blocks, k)`` for a filter of ``capacity`` keys at ``fp_rate``.

    Starts from the standard formulas, m = -n ln p / ln^2 2 bits and
    k = (m / n) ln 2, then, because a blocked filter needs a few percent more
    bits for the same rate, takes the fewest blocks (never fewer than m bits)
    whose exact blocked rate meets ``fp_rate``, over hash counts near k.
    """
    cdef double n = <double>capacity
    cdef double m_bits = -n * log(fp_rate) / (log(2.0) ** 2)
    cdef uint64_t std_blocks = <uint64_t>((m_bits + BLOCK_BITS - 1) // BLOCK_BITS)
    cdef int k_std = max(1, min(MAX_HASHES, <int>(m_bits / n * log(2.0) + 0.5)))
    cdef int k, best_k = 0
    cdef uint64_t blocks, best_blocks = 0
    if std_blocks < 1:
        std_blocks = 1
    for k in range(max(1, k_std - 6), min(MAX_HASHES, k_std + 1) + 1):
        blocks = min_blocks(n, fp_rate, k, std_blocks)
        if blocks and (best_blocks == 0 or blocks < best_blocks):
            best_blocks, best_k = blocks, k
    if best_blocks == 0:
        raise ValueError(f"fp_rate: {fp_rate!r} is out of reach for a blocked filter with at most "
                         f"{MAX_HASHES} hashes per key; use a larger fp_rate")
    return max(best_blocks, std_blocks), best_k


# ------------------------------------------------------------ bit probing --

cdef inline uint64_t* block_of(uint64_t* bits, uint64_t n_blocks, ms_u128 h) noexcept nogil:
    return bits + BLOCK_WORDS * ms_mulhi64(h.lo, n_blocks)


# Bit positions are consecutive 9-bit fields of the high half of the hash; past
# seven fields the remaining bits are remixed. Arithmetic progressions (double
# hashing) inside one small block are visibly correlated: at fp_rate=0.001 they
# doubled the measured false-positive rate.
cdef inline uint64_t next_field_source(uint64_t x) noexcept nogil:
    x *= <uint64_t>0x9FB21C651E98DF25ULL
    return x ^ (x >> 29)


cdef inline uint32_t bit_position(uint64_t* x, uint64_t hi, uint32_t i) noexcept nogil:
    """The ``i``-th bit of a key's block: 9-bit fields of ``x``, refilled from ``hi`` every word."""
    if i and i % FIELDS_PER_WORD == 0:
        x[0] = next_field_source(hi + i)
    cdef uint32_t pos = x[0] & (BLOCK_BITS - 1)
    x[0] >>= 9
    return pos


cdef inline void set_bits(uint64_t* block, uint32_t k, ms_u128 h) noexcept nogil:
    cdef uint64_t x = h.hi
    cdef uint32_t pos, i
    for i in range(k):
        pos = bit_position(&x, h.hi, i)
        block[pos >> 6] |= (<uint64_t>1) << (pos & 63)


cdef inline bint test_bits(const uint64_t* block, uint32_t k, ms_u128 h) noexcept nogil:
    cdef uint64_t x = h.hi
    cdef uint32_t pos, i
    for i in range(k):
        pos = bit_position(&x, h.hi, i)
        if not (block[pos >> 6] >> (pos & 63)) & 1:
            return False
    return True


cdef inline void digest_chunk(const uint8_t* rows, Py_ssize_t n, ms_u128* out,
                              uint64_t* bits, uint64_t n_blocks) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = ms_u128_from_canonical(rows + 16 * i)
        MS_PREFETCH(block_of(bits, n_blocks, out[i]))


cdef inline void uint64_chunk(const uint64_t* ints, Py_ssize_t n, ms_u128* out,
                              uint64_t* bits, uint64_t n_blocks) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = uint64_material(ints[i])
        MS_PREFETCH(block_of(bits, n_blocks, out[i]))


cdef inline void batch_loop(const uint8_t* rows, const uint64_t* values, Py_ssize_t n, uint64_t* bits,
                            uint64_t n_blocks, uint32_t k, uint8_t* found) noexcept nogil:
    """Set (``found`` NULL) or test the keys of a digest (``rows``) or uint64 (``values``) batch.

    Double-buffered: the blocks of chunk c + 1 are hashed and prefetched before
    chunk c is probed, so each memory access has a chunk's time to land.
    """
    cdef ms_u128 buffers[2][CHUNK]
    cdef ms_u128* current
    cdef Py_ssize_t start = 0, m = min(<Py_ssize_t>CHUNK, n), next_m, i
    cdef int side = 0
    if rows != NULL:
        digest_chunk(rows, m, buffers[0], bits, n_blocks)
    else:
        uint64_chunk(values, m, buffers[0], bits, n_blocks)
    while start < n:
        next_m = min(<Py_ssize_t>CHUNK, n - start - m)
        if next_m > 0:
            if rows != NULL:
                digest_chunk(rows + 16 * (start + m), next_m, buffers[1 - side], bits, n_blocks)
            else:
                uint64_chunk(values + start + m, next_m, buffers[1 - side], bits, n_blocks)
        current = buffers[side]
        if found == NULL:
            for i in range(m):
                set_bits(block_of(bits, n_blocks, current[i]), k, current[i])
        else:
            for i in range(m):
                found[start + i] = test_bits(block_of(bits, n_blocks, current[i]), k, current[i])
        start += m
        m = next_m
        side = 1 - side


# -------------------------------------------------------------- estimates --

cdef inline uint64_t block_ones(const uint64_t* bits, uint64_t b) noexcept nogil:
    """Bits set in block ``b``."""
    cdef uint64_t w, ones = 0
    for w in range(BLOCK_WORDS):
        ones += ms_popcount64(bits[b * BLOCK_WORDS + w])
    return ones


cdef inline double estimate_keys(const uint64_t* bits, uint64_t n_blocks, uint32_t k) noexcept nogil:
    """Distinct keys added, estimated per block as -(512/k) ln(1 - set/512) and summed."""
    cdef uint64_t b, ones
    cdef double total = 0.0
    for b in range(n_blocks):
        ones = block_ones(bits, b)
        if ones >= BLOCK_BITS:
            ones = BLOCK_BITS - 1
        total += -(<double>BLOCK_BITS / k) * log(1.0 - <double>ones / BLOCK_BITS)
    return total


cdef inline double estimate_fp_rate(const uint64_t* bits, uint64_t n_blocks, uint32_t k) noexcept nogil:
    """The mean over blocks of (set bits / 512) ** k: the chance a fresh key finds its ``k`` bits set."""
    cdef double table[BLOCK_BITS + 1]
    cdef double total = 0.0
    cdef uint64_t b
    cdef uint32_t x
    for x in range(BLOCK_BITS + 1):
        table[x] = (<double>x / BLOCK_BITS) ** k
    for b in range(n_blocks):
        total += table[block_ones(bits, b)]
    return total / n_blocks
