/* Hamming top-k scans for ms_simd.h: popcount(q ^ c) over packed sign bits, per path
 * (portable __builtin_popcountll; avx2 table popcount or popcnt words; avx512 vpopcntq),
 * register-tiled like the int8 scans, selected by a heap or, for large k, by counting.
 * Included at the end of ms_simd.h, which defines the paths and the selection.
 */
#ifndef MS_HAMMING_H
#define MS_HAMMING_H

/* Hamming micro-tiles: 2 queries x 4 rows */
#define MS_HTQ 2
#define MS_HTR 4


typedef void (*ms_ham_fn)(const uint8_t *q, int64_t qstride, const uint8_t *codes, int64_t width, int64_t cstride,
                          int nq, int nr, int32_t *dist);

static inline int32_t ms_popcount_bytes(const uint8_t *a, const uint8_t *b, int64_t width) {
    int32_t s = 0;
    int64_t m = 0;
    for (; m + 8 <= width; m += 8) {
        uint64_t x, y;
        memcpy(&x, a + m, 8); memcpy(&y, b + m, 8);
        s += __builtin_popcountll(x ^ y);
    }
    for (; m < width; m++) s += __builtin_popcount((unsigned)(a[m] ^ b[m]));
    return s;
}

static void ms_ham_tile_portable(const uint8_t *q, int64_t qstride, const uint8_t *codes, int64_t width,
                                 int64_t cstride, int nq, int nr, int32_t *dist) {
    for (int x = 0; x < nq; x++)
        for (int y = 0; y < nr; y++) dist[x * MS_HTR + y] = ms_popcount_bytes(q + x * qstride, codes + y * cstride, width);
}

#if MS_X86
MS_AVX2_ATTR static inline int32_t ms_popcount_tail_popcnt(const uint8_t *a, const uint8_t *b, int64_t m, int64_t width) {
    int32_t s = 0;
    for (; m + 8 <= width; m += 8) {
        uint64_t x, y;
        memcpy(&x, a + m, 8); memcpy(&y, b + m, 8);
        s += (int32_t)_mm_popcnt_u64(x ^ y);
    }
    for (; m < width; m++) s += _mm_popcnt_u32((unsigned)(a[m] ^ b[m]));
    return s;
}

/* 4-bit table popcount of 32 bytes into per-byte counts (each <= 8) */
MS_AVX2_ATTR static inline __m256i ms_pop8_avx2(__m256i v) {
    const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                           0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(15);
    return _mm256_add_epi8(_mm256_shuffle_epi8(table, _mm256_and_si256(v, low)),
                           _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
}

MS_AVX2_ATTR static inline int32_t ms_hsum64x4(__m256i v) {
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    return (int32_t)(_mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1));
}

/* TQ x TR tile: byte counts of up to 31 chunks add up in 8 bits (31 * 8 < 256)
   before vpsadbw widens them to 64-bit lanes. */
MS_AVX2_ATTR static void ms_ham_tile_avx2(const uint8_t *q, int64_t qstride, const uint8_t *codes, int64_t width,
                                          int64_t cstride, int nq, int nr, int32_t *dist) {
    /* a partial tile repeats its first query / row; only the real distances are kept */
    const uint8_t *q0 = q, *q1 = nq > 1 ? q + qstride : q;
    const uint8_t *c0 = codes, *c1 = nr > 1 ? c0 + cstride : c0;
    const uint8_t *c2 = nr > 2 ? c0 + 2 * cstride : c0, *c3 = nr > 3 ? c0 + 3 * cstride : c0;
    const __m256i zero = _mm256_setzero_si256();
    __m256i t[8];
    for (int z = 0; z < 8; z++) t[z] = zero;
    int64_t m = 0;
    while (m + 32 <= width) {
        __m256i b[8];
        for (int z = 0; z < 8; z++) b[z] = zero;
        for (int steps = 0; steps < 31 && m + 32 <= width; steps++, m += 32) {
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(c0 + m)), x1 = _mm256_loadu_si256((const __m256i *)(c1 + m));
            __m256i x2 = _mm256_loadu_si256((const __m256i *)(c2 + m)), x3 = _mm256_loadu_si256((const __m256i *)(c3 + m));
            __m256i u = _mm256_loadu_si256((const __m256i *)(q0 + m));
            b[0] = _mm256_add_epi8(b[0], ms_pop8_avx2(_mm256_xor_si256(u, x0)));
            b[1] = _mm256_add_epi8(b[1], ms_pop8_avx2(_mm256_xor_si256(u, x1)));
            b[2] = _mm256_add_epi8(b[2], ms_pop8_avx2(_mm256_xor_si256(u, x2)));
            b[3] = _mm256_add_epi8(b[3], ms_pop8_avx2(_mm256_xor_si256(u, x3)));
            u = _mm256_loadu_si256((const __m256i *)(q1 + m));
            b[4] = _mm256_add_epi8(b[4], ms_pop8_avx2(_mm256_xor_si256(u, x0)));
            b[5] = _mm256_add_epi8(b[5], ms_pop8_avx2(_mm256_xor_si256(u, x1)));
            b[6] = _mm256_add_epi8(b[6], ms_pop8_avx2(_mm256_xor_si256(u, x2)));
            b[7] = _mm256_add_epi8(b[7], ms_pop8_avx2(_mm256_xor_si256(u, x3)));
        }
        for (int z = 0; z < 8; z++) t[z] = _mm256_add_epi64(t[z], _mm256_sad_epu8(b[z], zero));
    }
    const uint8_t *qq[2] = {q0, q1}, *cc[4] = {c0, c1, c2, c3};
    for (int x = 0; x < 2; x++)
        for (int y = 0; y < 4; y++)
            dist[x * MS_HTR + y] = ms_hsum64x4(t[x * 4 + y]) + ms_popcount_tail_popcnt(qq[x], cc[y], m, width);
}

/* TQ x TR tile with scalar popcnt over 64-bit words: for short codes (a 384-bit
   code is six words) this beats the table popcount, whose per-pair reduction
   (vpsadbw + horizontal sum) costs more than the counting itself. */
MS_AVX2_ATTR static void ms_ham_tile_popcnt(const uint8_t *q, int64_t qstride, const uint8_t *codes, int64_t width,
                                            int64_t cstride, int nq, int nr, int32_t *dist) {
    const uint8_t *q0 = q, *q1 = nq > 1 ? q + qstride : q;
    const uint8_t *c0 = codes, *c1 = nr > 1 ? c0 + cstride : c0;
    const uint8_t *c2 = nr > 2 ? c0 + 2 * cstride : c0, *c3 = nr > 3 ? c0 + 3 * cstride : c0;
    uint64_t t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0, t6 = 0, t7 = 0;
    int64_t m = 0;
    if (nq == 1) { /* one query: half the popcounts (a lone query is the common search) */
        for (; m + 8 <= width; m += 8) {
            uint64_t x0, x1, x2, x3, u;
            memcpy(&x0, c0 + m, 8); memcpy(&x1, c1 + m, 8); memcpy(&x2, c2 + m, 8); memcpy(&x3, c3 + m, 8);
            memcpy(&u, q0 + m, 8);
            t0 += _mm_popcnt_u64(u ^ x0); t1 += _mm_popcnt_u64(u ^ x1); t2 += _mm_popcnt_u64(u ^ x2); t3 += _mm_popcnt_u64(u ^ x3);
        }
        if (m < width) {
            t0 += ms_popcount_tail_popcnt(q0, c0, m, width); t1 += ms_popcount_tail_popcnt(q0, c1, m, width);
            t2 += ms_popcount_tail_popcnt(q0, c2, m, width); t3 += ms_popcount_tail_popcnt(q0, c3, m, width);
        }
        dist[0] = (int32_t)t0; dist[1] = (int32_t)t1; dist[2] = (int32_t)t2; dist[3] = (int32_t)t3;
        return;
    }
    for (; m + 8 <= width; m += 8) {
        uint64_t x0, x1, x2, x3, u, v;
        memcpy(&x0, c0 + m, 8); memcpy(&x1, c1 + m, 8); memcpy(&x2, c2 + m, 8); memcpy(&x3, c3 + m, 8);
        memcpy(&u, q0 + m, 8); memcpy(&v, q1 + m, 8);
        t0 += _mm_popcnt_u64(u ^ x0); t1 += _mm_popcnt_u64(u ^ x1); t2 += _mm_popcnt_u64(u ^ x2); t3 += _mm_popcnt_u64(u ^ x3);
        t4 += _mm_popcnt_u64(v ^ x0); t5 += _mm_popcnt_u64(v ^ x1); t6 += _mm_popcnt_u64(v ^ x2); t7 += _mm_popcnt_u64(v ^ x3);
    }
    if (m < width) { /* a width that is not whole words */
        t0 += ms_popcount_tail_popcnt(q0, c0, m, width); t1 += ms_popcount_tail_popcnt(q0, c1, m, width);
        t2 += ms_popcount_tail_popcnt(q0, c2, m, width); t3 += ms_popcount_tail_popcnt(q0, c3, m, width);
        t4 += ms_popcount_tail_popcnt(q1, c0, m, width); t5 += ms_popcount_tail_popcnt(q1, c1, m, width);
        t6 += ms_popcount_tail_popcnt(q1, c2, m, width); t7 += ms_popcount_tail_popcnt(q1, c3, m, width);
    }
    dist[0] = (int32_t)t0; dist[1] = (int32_t)t1; dist[2] = (int32_t)t2; dist[3] = (int32_t)t3;
    dist[MS_HTR + 0] = (int32_t)t4; dist[MS_HTR + 1] = (int32_t)t5;
    dist[MS_HTR + 2] = (int32_t)t6; dist[MS_HTR + 3] = (int32_t)t7;
}

/* vpopcntq over 64-byte chunks (AVX-512 VPOPCNTDQ); the tail via popcnt */
__attribute__((target("avx512f,avx512bw,avx512vpopcntdq,avx2,popcnt")))
static void ms_ham_tile_avx512(const uint8_t *q, int64_t qstride, const uint8_t *codes, int64_t width,
                               int64_t cstride, int nq, int nr, int32_t *dist) {
    for (int x = 0; x < nq; x++) {
        const uint8_t *qx = q + x * qstride;
        for (int y = 0; y < nr; y++) {
            const uint8_t *cy = codes + y * cstride;
            __m512i acc = _mm512_setzero_si512();
            int64_t m = 0;
            for (; m + 64 <= width; m += 64)
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512((const void *)(qx + m)),
                                                                                  _mm512_loadu_si512((const void *)(cy + m)))));
            int64_t rest = width - m;
            if (rest > 0) {
                __mmask64 mask = rest >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << rest) - 1);
                acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, qx + m),
                                                                                  _mm512_maskz_loadu_epi8(mask, cy + m))));
            }
            dist[x * MS_HTR + y] = (int32_t)_mm512_reduce_add_epi64(acc);
        }
    }
}
#endif

/* codes of at least this many bytes use the table popcount on the AVX2 path:
   its vpsadbw reduction per pair is then paid over many chunks */
#define MS_LUT_MIN_WIDTH 256

static ms_ham_fn ms_ham_tile(int path, int64_t width) {
#if MS_X86
    if (path == MS_AVX512VNNI && ms_has_vpopcntdq()) return ms_ham_tile_avx512;
    if (path != MS_PORTABLE) return width >= MS_LUT_MIN_WIDTH ? ms_ham_tile_avx2 : ms_ham_tile_popcnt;
#endif
    return ms_ham_tile_portable;
}

/* From this k on, Hamming selection counts instead of keeping a heap. */
#define MS_HAM_COUNT_MIN_K 64

/* Hamming top-k of each query by counting: distances are integers in [0, 8 * width],
   so one pass writes every row's distance and a histogram, the histogram gives the
   distance T at which k rows are reached, and a second pass places the rows below T
   (and the first rows at T, in row order) straight into their sorted slots. O(n + 8 *
   width) per query whatever k is, where a heap pays log k for each of the many rows
   that enter a large shortlist. Same order as the heap: distance, then row. */
static int ms_hamming_count(ms_ham_fn tile, const uint8_t *q, int64_t nq, const uint8_t *codes, int64_t n,
                            int64_t width, int64_t k, int32_t *out_d, int64_t *out_i) {
    int64_t levels = 8 * width + 1;
    int32_t *d = (int32_t *)malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    int64_t *hist = (int64_t *)malloc(sizeof(int64_t) * (size_t)levels);
    if (d == NULL || hist == NULL) { free(d); free(hist); return -1; }
    int32_t dist[MS_HTQ * MS_HTR];
    for (int64_t a = 0; a < nq; a++) {
        const uint8_t *qa = q + a * width;
        memset(hist, 0, sizeof(int64_t) * (size_t)levels);
        for (int64_t r = 0; r < n; r += MS_HTR) {
            int tr = n - r < MS_HTR ? (int)(n - r) : MS_HTR;
            tile(qa, width, codes + r * width, width, width, 1, tr, dist);
            for (int y = 0; y < tr; y++) { d[r + y] = dist[y]; hist[dist[y]]++; }
        }
        int64_t below = 0, t = 0; /* rows at a distance under t */
        for (; t < levels && below + hist[t] < k; t++) below += hist[t];
        int64_t at_t = t < levels ? k - below : 0; /* rows taken at distance t, the lowest first */
        int32_t *od = out_d + a * k;
        int64_t *oi = out_i + a * k;
        int64_t start = 0; /* hist becomes each distance's first output slot */
        for (int64_t v = 0; v < levels && v <= t; v++) { int64_t c = hist[v]; hist[v] = start; start += c; }
        for (int64_t r = 0; r < n; r++) {
            int32_t v = d[r];
            if (v < t || (v == t && at_t > 0)) {
                if (v == t) at_t--;
                int64_t slot = hist[v]++;
                od[slot] = v; oi[slot] = r;
            }
        }
        int64_t filled = below + (t < levels ? k - below : 0);
        for (int64_t p = filled; p < k; p++) { od[p] = -1; oi[p] = -1; }
    }
    free(d);
    free(hist);
    return 0;
}

/* Hamming scan: out_d int32 (nq, k) ascending distances, out_i rows; -1 padding. */
static int ms_hamming_scan(int path, const uint8_t *q, int64_t nq, const uint8_t *codes, int64_t n, int64_t width,
                            int64_t k, int32_t *out_d, int64_t *out_i, float *heap_s, int64_t *heap_i) {
    ms_ham_fn tile = ms_ham_tile(path, width);
    if (k >= MS_HAM_COUNT_MIN_K) return ms_hamming_count(tile, q, nq, codes, n, width, k, out_d, out_i);
    ms_heap *heaps = (ms_heap *)malloc(sizeof(ms_heap) * (size_t)(nq > 0 ? nq : 1));
    float *tmp_s = (float *)malloc(sizeof(float) * (size_t)(k > 0 ? k : 1));
    if (heaps == NULL || tmp_s == NULL) { free(heaps); free(tmp_s); return -1; }
    int32_t dist[MS_HTQ * MS_HTR];
    for (int64_t a = 0; a < nq; a++) { heaps[a].s = heap_s + a * k; heaps[a].i = heap_i + a * k; heaps[a].size = 0; }
    /* rows per block: keep the block in L1/L2 for the whole batch */
    int64_t block = width > 0 ? (65536 / width) & ~(int64_t)3 : 1024;
    if (block < MS_HTR) block = MS_HTR;
    for (int64_t b0 = 0; b0 < nq; b0 += MS_BLOCK_QUERIES) {
      int64_t b1 = b0 + MS_BLOCK_QUERIES < nq ? b0 + MS_BLOCK_QUERIES : nq;
      for (int64_t r0 = 0; r0 < n; r0 += block) {
        int64_t r1 = r0 + block < n ? r0 + block : n;
        for (int64_t a = b0; a < b1; a += MS_HTQ) {
            int tq = b1 - a < MS_HTQ ? (int)(b1 - a) : MS_HTQ;
            for (int64_t r = r0; r < r1; r += MS_HTR) {
                int tr = r1 - r < MS_HTR ? (int)(r1 - r) : MS_HTR;
                tile(q + a * width, width, codes + r * width, width, width, tq, tr, dist);
                for (int x = 0; x < tq; x++)
                    for (int y = 0; y < tr; y++) ms_keep_dist(&heaps[a + x], k, dist[x * MS_HTR + y], r + y);
            }
        }
      }
    }
    for (int64_t a = 0; a < nq; a++) {
        ms_drain(&heaps[a], k, tmp_s, out_i + a * k);
        for (int64_t p = 0; p < k; p++) out_d[a * k + p] = out_i[a * k + p] >= 0 ? (int32_t)(-tmp_s[p]) : -1;
    }
    free(tmp_s);
    free(heaps);
    return 0;
}

#endif /* MS_HAMMING_H */
