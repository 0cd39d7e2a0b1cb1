/* SIMD top-k scans for memstrata: int8 and int4 inner products, Hamming distance.
 *
 * One build compiles every instruction path (GCC/Clang `target` attributes);
 * ms_simd_supported() asks CPUID which of them this CPU runs, and the caller
 * picks one per call. All paths compute the same exact integers, so their
 * results are identical bit for bit:
 *
 *   int8   dot(w, c) with int16 query weights w and int8 codes c, int32 sums.
 *          portable: scalar C; avx2: vpmovsxbw + vpmaddwd + vpaddd;
 *          avxvnni / avx512vnni: vpmovsxbw + vpdpwssd (multiply-add fused).
 *   int4   dot(w, c) with c the nibbles of packed bytes (dimension 2m in the
 *          low nibble of byte m): vpmovzxbw, mask/shift, then as for int8
 *          against the even and the odd weights.
 *   hamming popcount(q ^ c) over packed bytes. portable: __builtin_popcountll;
 *          avx2: the 4-bit table popcount (vpshufb) summed with vpsadbw;
 *          avx512vnni path: vpopcntq when the CPU has avx512_vpopcntdq.
 *
 * Scans are register-tiled as GEMM is: a micro-tile of TQ queries x TR rows
 * keeps TQ * TR accumulators in registers, so each load of a code vector
 * serves TQ queries and each load of weights serves TR rows; rows go in
 * blocks that stay in L2 while every query of the batch passes over them.
 * Selection is fused: each score is compared with the worst of the query's
 * k kept entries and only better ones enter its heap; nothing is sorted
 * but the k survivors.
 *
 * Scores are turned into floats by ms_keep(), compiled for the baseline ISA
 * (the translation unit is built with -ffp-contract=off), so
 * `(float)dot * factor + bias` rounds the same way on every path.
 *
 * This header holds the paths and the int8/int4 scans; it includes the
 * selection (ms_select.h) and the Hamming scans (ms_hamming.h), so the
 * extension still builds one translation unit.
 */
#ifndef MS_SIMD_H
#define MS_SIMD_H

#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#if defined(__x86_64__) || defined(_M_X64)
#define MS_X86 1
#include <immintrin.h>
#else
#define MS_X86 0
#endif

/* AVX-VNNI (VEX-encoded vpdpwssd) needs GCC 11 / Clang 12 */
#if MS_X86 && ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define MS_HAVE_AVXVNNI 1
#else
#define MS_HAVE_AVXVNNI 0
#endif

enum { MS_PORTABLE = 0, MS_AVX2 = 1, MS_AVXVNNI = 2, MS_AVX512VNNI = 3 };

/* rows per block: 256 rows of 384 bytes (96 KiB) stay in L2 while a batch of queries scans them */
#define MS_BLOCK_ROWS 256
/* queries per batch: the codes are read from memory once per batch */
#define MS_BLOCK_QUERIES 64

static int ms_simd_supported(int path) {
    if (path == MS_PORTABLE) return 1;
#if MS_X86
    __builtin_cpu_init();
    if (path == MS_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#if MS_HAVE_AVXVNNI
    if (path == MS_AVXVNNI) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
#endif
    if (path == MS_AVX512VNNI)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx2");
#endif
    return 0;
}

static int ms_has_vpopcntdq(void) {
#if MS_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

/* ------------------------------------------------------------ selection */
#include "ms_select.h"

/* ------------------------------------------------- int8: the scan driver */

/* A micro-kernel computes dots[tq][tr] for TQ queries (weights w + tq * wstride)
   and TR rows (codes + tr * d) over all d dimensions. */
#define MS_TQ 4
#define MS_TR 2

typedef void (*ms_tile_fn)(const int16_t *w, int64_t wstride, const uint8_t *codes, int64_t d, int64_t cstride,
                           int nq, int nr, int32_t *dots);

/* A row kernel computes dots[y] for one query (weights w) and nr <= MS_ROWS1 int8 rows. */
#define MS_ROWS1 4

typedef void (*ms_row_fn)(const int16_t *w, const int8_t *codes, int64_t d, int64_t cstride, int nr, int32_t *dots);

static void ms_i8_row_portable(const int16_t *w, const int8_t *codes, int64_t d, int64_t cstride, int nr,
                               int32_t *dots) {
    for (int y = 0; y < nr; y++) {
        const int8_t *c = codes + y * cstride;
        int32_t acc = 0;
        for (int64_t j = 0; j < d; j++) acc += (int32_t)w[j] * (int32_t)c[j];
        dots[y] = acc;
    }
}

/* Shared by every path: blocks of rows x micro-tiles, fused selection. */
/* With `widen`, each block of int8 rows is first sign-extended to int16 in a
   scratch buffer (in L2): every query of the batch then multiplies plain
   int16 loads, where widening in the inner loop would cost a shuffle per load
   per query group. The int4 tiles read the packed bytes directly. */
/* Fewer than MS_TQ queries go through `row` (when the path has one): one query
   against MS_ROWS1 rows, the int8 codes widened in registers. A tile would repeat
   the query in its empty slots and the widened block would read every code twice,
   which made a single query four to eight times slower than it needs to be. */
static int ms_scan(ms_tile_fn tile, ms_row_fn row, int widen, const int16_t *w, int64_t wstride, const float *factor,
                   const uint8_t *codes, int64_t n, int64_t d, int64_t cstride, const float *bias, int64_t nq,
                   int64_t k, float *out_s, int64_t *out_i, float *heap_s, int64_t *heap_i) {
    if (row != NULL && nq < MS_TQ) {
        ms_heap h;
        int32_t dots1[MS_ROWS1];
        for (int64_t a = 0; a < nq; a++) {
            h.s = heap_s + a * k; h.i = heap_i + a * k; h.size = 0;
            for (int64_t r = 0; r < n; r += MS_ROWS1) {
                int tr = n - r < MS_ROWS1 ? (int)(n - r) : MS_ROWS1;
                row(w + a * wstride, (const int8_t *)codes + r * cstride, d, cstride, tr, dots1);
                for (int y = 0; y < tr; y++) ms_keep(&h, k, dots1[y], factor[a], bias[r + y], r + y);
            }
            ms_drain(&h, k, out_s + a * k, out_i + a * k);
        }
        return 0;
    }
    ms_heap *heaps = (ms_heap *)malloc(sizeof(ms_heap) * (size_t)(nq > 0 ? nq : 1));
    int16_t *wide = widen ? (int16_t *)malloc(sizeof(int16_t) * (size_t)(MS_BLOCK_ROWS * d + 1)) : NULL;
    if (heaps == NULL || (widen && wide == NULL)) { free(heaps); free(wide); return -1; }
    int32_t dots[MS_TQ * MS_TR];
    for (int64_t a = 0; a < nq; a++) { heaps[a].s = heap_s + a * k; heaps[a].i = heap_i + a * k; heaps[a].size = 0; }
    for (int64_t b0 = 0; b0 < nq; b0 += MS_BLOCK_QUERIES) {
      int64_t b1 = b0 + MS_BLOCK_QUERIES < nq ? b0 + MS_BLOCK_QUERIES : nq;
      for (int64_t r0 = 0; r0 < n; r0 += MS_BLOCK_ROWS) {
        int64_t r1 = r0 + MS_BLOCK_ROWS < n ? r0 + MS_BLOCK_ROWS : n;
        const uint8_t *block = codes + r0 * cstride;
        int64_t bstride = cstride;
        if (widen) {
            const int8_t *src = (const int8_t *)block;
            for (int64_t e = 0; e < (r1 - r0) * d; e++) wide[e] = src[e];
            block = (const uint8_t *)wide;
            bstride = d;
        }
        for (int64_t a = b0; a < b1; a += MS_TQ) {
            int tq = b1 - a < MS_TQ ? (int)(b1 - a) : MS_TQ;
            for (int64_t r = r0; r < r1; r += MS_TR) {
                int tr = r1 - r < MS_TR ? (int)(r1 - r) : MS_TR;
                const uint8_t *rows = widen ? (const uint8_t *)((const int16_t *)block + (r - r0) * bstride)
                                            : block + (r - r0) * bstride;
                tile(w + a * wstride, wstride, rows, d, bstride, tq, tr, dots);
                for (int x = 0; x < tq; x++)
                    for (int y = 0; y < tr; y++)
                        ms_keep(&heaps[a + x], k, dots[x * MS_TR + y], factor[a + x], bias[r + y], r + y);
            }
        }
      }
    }
    for (int64_t a = 0; a < nq; a++) ms_drain(&heaps[a], k, out_s + a * k, out_i + a * k);
    free(heaps);
    free(wide);
    return 0;
}

/* int8 portable: codes arrive widened to int16 (see ms_scan), w int16 */
static void ms_i8_tile_portable(const int16_t *w, int64_t wstride, const uint8_t *codes, int64_t d, int64_t cstride,
                                int nq, int nr, int32_t *dots) {
    for (int x = 0; x < nq; x++)
        for (int y = 0; y < nr; y++) {
            const int16_t *q = w + x * wstride;
            const int16_t *c = (const int16_t *)codes + y * cstride;
            int32_t acc = 0;
            for (int64_t j = 0; j < d; j++) acc += (int32_t)q[j] * (int32_t)c[j];
            dots[x * MS_TR + y] = acc;
        }
}

/* int4 portable: `d` counts dimensions; codes hold (d + 1) / 2 bytes per row. The
   weights come de-interleaved: w[0 .. half) for the even dimensions (low nibbles),
   w[half .. 2 * half) for the odd ones (high nibbles), an odd last one at w[2 * half]. */
static void ms_i4_tile_portable(const int16_t *w, int64_t wstride, const uint8_t *codes, int64_t d, int64_t cstride,
                                int nq, int nr, int32_t *dots) {
    int64_t half = d / 2;
    for (int x = 0; x < nq; x++)
        for (int y = 0; y < nr; y++) {
            const int16_t *qe = w + x * wstride, *qo = qe + half;
            const uint8_t *c = codes + y * cstride;
            int32_t acc = 0;
            for (int64_t m = 0; m < half; m++) acc += (int32_t)qe[m] * (c[m] & 15) + (int32_t)qo[m] * (c[m] >> 4);
            if (d & 1) acc += (int32_t)qe[2 * half] * (c[half] & 15);
            dots[x * MS_TR + y] = acc;
        }
}

/* ------------------------------------------------ vector micro-kernels */
/* One template per vector ISA: VEC, NL (int16 lanes), LOAD8(p) (NL int8 -> int16),
   LOAD4(p) (NL/2 bytes -> NL int16 lanes, low nibbles then high nibbles are
   handled by the caller), LOADW(p), MADD(acc, a, b) (acc += pairwise a*b), HSUM. */

#if MS_X86

#define MS_DEFINE_I8_TILE(NAME, ATTR, VEC, NL, LOAD16, LOADW, MADD, ZERO, HSUM)                                        \
    ATTR static void NAME(const int16_t *w, int64_t wstride, const uint8_t *codes, int64_t d, int64_t cstride,       \
                          int nq, int nr, int32_t *dots) {                                                          \
        /* a partial tile repeats its first query / row; only the real dots are kept */                            \
        const int16_t *q0 = w, *q1 = nq > 1 ? w + wstride : w;                                                      \
        const int16_t *q2 = nq > 2 ? w + 2 * wstride : w, *q3 = nq > 3 ? w + 3 * wstride : w;                       \
        const int16_t *c0 = (const int16_t *)codes, *c1 = nr > 1 ? c0 + cstride : c0;                               \
        VEC a00 = ZERO, a01 = ZERO, a10 = ZERO, a11 = ZERO, a20 = ZERO, a21 = ZERO, a30 = ZERO, a31 = ZERO;         \
        int64_t j = 0;                                                                                              \
        for (; j + NL <= d; j += NL) {                                                                              \
            VEC x0 = LOAD16(c0 + j), x1 = LOAD16(c1 + j);                                                           \
            VEC u = LOADW(q0 + j);                                                                                  \
            a00 = MADD(a00, u, x0); a01 = MADD(a01, u, x1);                                                         \
            u = LOADW(q1 + j);                                                                                      \
            a10 = MADD(a10, u, x0); a11 = MADD(a11, u, x1);                                                         \
            u = LOADW(q2 + j);                                                                                      \
            a20 = MADD(a20, u, x0); a21 = MADD(a21, u, x1);                                                         \
            u = LOADW(q3 + j);                                                                                      \
            a30 = MADD(a30, u, x0); a31 = MADD(a31, u, x1);                                                         \
        }                                                                                                           \
        int32_t t[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                                    \
        for (; j < d; j++) {                                                                                        \
            int32_t y0 = c0[j], y1 = c1[j];                                                                         \
            t[0] += q0[j] * y0; t[1] += q0[j] * y1; t[2] += q1[j] * y0; t[3] += q1[j] * y1;                         \
            t[4] += q2[j] * y0; t[5] += q2[j] * y1; t[6] += q3[j] * y0; t[7] += q3[j] * y1;                         \
        }                                                                                                           \
        dots[0 * MS_TR + 0] = HSUM(a00) + t[0]; dots[0 * MS_TR + 1] = HSUM(a01) + t[1];                             \
        dots[1 * MS_TR + 0] = HSUM(a10) + t[2]; dots[1 * MS_TR + 1] = HSUM(a11) + t[3];                             \
        dots[2 * MS_TR + 0] = HSUM(a20) + t[4]; dots[2 * MS_TR + 1] = HSUM(a21) + t[5];                             \
        dots[3 * MS_TR + 0] = HSUM(a30) + t[6]; dots[3 * MS_TR + 1] = HSUM(a31) + t[7];                             \
    }

#define MS_DEFINE_I8_ROW(NAME, ATTR, VEC, NL, LOAD8, LOADW, MADD, ZERO, HSUM)                                      \
    ATTR static void NAME(const int16_t *w, const int8_t *codes, int64_t d, int64_t cstride, int nr, int32_t *dots) { \
        /* a partial group repeats its first row; only the real dots are kept */                                   \
        const int8_t *c0 = codes, *c1 = nr > 1 ? c0 + cstride : c0;                                                 \
        const int8_t *c2 = nr > 2 ? c0 + 2 * cstride : c0, *c3 = nr > 3 ? c0 + 3 * cstride : c0;                    \
        VEC a0 = ZERO, a1 = ZERO, a2 = ZERO, a3 = ZERO;                                                             \
        int64_t j = 0;                                                                                              \
        for (; j + NL <= d; j += NL) {                                                                              \
            VEC u = LOADW(w + j);                                                                                   \
            a0 = MADD(a0, u, LOAD8(c0 + j)); a1 = MADD(a1, u, LOAD8(c1 + j));                                       \
            a2 = MADD(a2, u, LOAD8(c2 + j)); a3 = MADD(a3, u, LOAD8(c3 + j));                                       \
        }                                                                                                           \
        int32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0;                                                                     \
        for (; j < d; j++) {                                                                                        \
            t0 += w[j] * c0[j]; t1 += w[j] * c1[j]; t2 += w[j] * c2[j]; t3 += w[j] * c3[j];                         \
        }                                                                                                           \
        dots[0] = HSUM(a0) + t0; dots[1] = HSUM(a1) + t1; dots[2] = HSUM(a2) + t2; dots[3] = HSUM(a3) + t3;         \
    }

/* int4 with weights de-interleaved by the caller: w[0 .. half) are the even
   dimensions, w[half .. 2 * half) the odd ones (half = d / 2, d even; an odd last
   dimension is w[2 * half]). LOADB(p) widens NL bytes to int16 lanes. */
#define MS_DEFINE_I4_TILE(NAME, ATTR, VEC, NL, LOADB, LOADW, MADD, ZERO, HSUM, AND, SRL, SET1)                       \
    ATTR static void NAME(const int16_t *w, int64_t wstride, const uint8_t *codes, int64_t d, int64_t cstride,       \
                          int nq, int nr, int32_t *dots) {                                                          \
        int64_t half = d / 2;                                                                                       \
        const VEC lo_mask = SET1(15);                                                                               \
        for (int x = 0; x < nq; x++) {                                                                              \
            const int16_t *qe = w + x * wstride, *qo = qe + half;                                                   \
            int y = 0;                                                                                              \
            for (; y + 2 <= nr; y += 2) {                                                                           \
                const uint8_t *c0 = codes + y * cstride, *c1 = c0 + cstride;                                        \
                VEC s0 = ZERO, s1 = ZERO;                                                                           \
                int64_t m = 0;                                                                                      \
                for (; m + NL <= half; m += NL) {                                                                   \
                    VEC b0 = LOADB(c0 + m), b1 = LOADB(c1 + m), e = LOADW(qe + m), o = LOADW(qo + m);               \
                    s0 = MADD(s0, e, AND(b0, lo_mask)); s0 = MADD(s0, o, SRL(b0, 4));                               \
                    s1 = MADD(s1, e, AND(b1, lo_mask)); s1 = MADD(s1, o, SRL(b1, 4));                               \
                }                                                                                                   \
                int32_t t0 = HSUM(s0), t1 = HSUM(s1);                                                               \
                for (; m < half; m++) {                                                                             \
                    t0 += (int32_t)qe[m] * (c0[m] & 15) + (int32_t)qo[m] * (c0[m] >> 4);                            \
                    t1 += (int32_t)qe[m] * (c1[m] & 15) + (int32_t)qo[m] * (c1[m] >> 4);                            \
                }                                                                                                   \
                if (d & 1) { t0 += (int32_t)qe[2 * half] * (c0[half] & 15); t1 += (int32_t)qe[2 * half] * (c1[half] & 15); } \
                dots[x * MS_TR + y] = t0; dots[x * MS_TR + y + 1] = t1;                                             \
            }                                                                                                       \
            for (; y < nr; y++) {                                                                                   \
                const uint8_t *c0 = codes + y * cstride;                                                            \
                int32_t t0 = 0;                                                                                     \
                for (int64_t m = 0; m < half; m++) t0 += (int32_t)qe[m] * (c0[m] & 15) + (int32_t)qo[m] * (c0[m] >> 4); \
                if (d & 1) t0 += (int32_t)qe[2 * half] * (c0[half] & 15);                                           \
                dots[x * MS_TR + y] = t0;                                                                           \
            }                                                                                                       \
        }                                                                                                           \
    }

/* The three kernels of one instruction set: the int8 tile (LOADW for codes and weights), the
 * int8 row (LOAD8 widens the codes) and the int4 tile (LOADB widens the packed bytes). */
#define MS_DEFINE_KERNELS(ISA, ATTR, VEC, NL, LOAD8, LOADB, LOADW, MADD, ZERO, HSUM, AND, SRL, SET1)         \
    MS_DEFINE_I8_TILE(ms_i8_tile_##ISA, ATTR, VEC, NL, LOADW, LOADW, MADD, ZERO, HSUM)                      \
    MS_DEFINE_I8_ROW(ms_i8_row_##ISA, ATTR, VEC, NL, LOAD8, LOADW, MADD, ZERO, HSUM)                        \
    MS_DEFINE_I4_TILE(ms_i4_tile_##ISA, ATTR, VEC, NL, LOADB, LOADW, MADD, ZERO, HSUM, AND, SRL, SET1)

/* ---- AVX2 */
#define MS_AVX2_ATTR __attribute__((target("avx2,popcnt")))
MS_AVX2_ATTR static inline int32_t ms_hsum256(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}
#define MS_AVX2_LOAD8(p) _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(p)))
#define MS_AVX2_LOADB(p) _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p)))
#define MS_AVX2_LOADW(p) _mm256_loadu_si256((const __m256i *)(p))
#define MS_AVX2_MADD(acc, a, b) _mm256_add_epi32((acc), _mm256_madd_epi16((a), (b)))
#define MS_AVX2_SRL(v, n) _mm256_srli_epi16((v), (n))
MS_DEFINE_KERNELS(avx2, MS_AVX2_ATTR, __m256i, 16, MS_AVX2_LOAD8, MS_AVX2_LOADB, MS_AVX2_LOADW, MS_AVX2_MADD,
                  _mm256_setzero_si256(), ms_hsum256, _mm256_and_si256, MS_AVX2_SRL, _mm256_set1_epi16)

/* ---- AVX-VNNI (256-bit vpdpwssd) */
#if MS_HAVE_AVXVNNI
#define MS_AVXVNNI_ATTR __attribute__((target("avx2,avxvnni,popcnt")))
#define MS_AVXVNNI_MADD(acc, a, b) _mm256_dpwssd_avx_epi32((acc), (a), (b))
MS_DEFINE_KERNELS(avxvnni, MS_AVXVNNI_ATTR, __m256i, 16, MS_AVX2_LOAD8, MS_AVX2_LOADB, MS_AVX2_LOADW, MS_AVXVNNI_MADD,
                  _mm256_setzero_si256(), ms_hsum256, _mm256_and_si256, MS_AVX2_SRL, _mm256_set1_epi16)
#endif

/* ---- AVX-512 VNNI (512-bit vpdpwssd) */
#define MS_AVX512_ATTR __attribute__((target("avx512f,avx512bw,avx512vnni,avx2,popcnt")))
#define MS_AVX512_LOAD8(p) _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(p)))
#define MS_AVX512_LOADB(p) _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(p)))
#define MS_AVX512_LOADW(p) _mm512_loadu_si512((const void *)(p))
#define MS_AVX512_MADD(acc, a, b) _mm512_dpwssd_epi32((acc), (a), (b))
#define MS_AVX512_SRL(v, n) _mm512_srli_epi16((v), (n))
#define MS_AVX512_HSUM(v) _mm512_reduce_add_epi32(v)
MS_DEFINE_KERNELS(avx512, MS_AVX512_ATTR, __m512i, 32, MS_AVX512_LOAD8, MS_AVX512_LOADB, MS_AVX512_LOADW,
                  MS_AVX512_MADD, _mm512_setzero_si512(), MS_AVX512_HSUM, _mm512_and_si512, MS_AVX512_SRL,
                  _mm512_set1_epi16)

#endif /* MS_X86 */

/* The path pickers: MS_DEFINE_PICKER(type, family) defines `type family(int path)`, which returns
 * the family's build for `path` (family##_avx2, _avxvnni, _avx512) or family##_portable where that
 * build is not compiled here. The #if guards live in MS_PICK_X86 and MS_PICK_AVXVNNI, which expand
 * to nothing where their builds are absent. */
#if MS_HAVE_AVXVNNI
#define MS_PICK_AVXVNNI(path, family) if ((path) == MS_AVXVNNI) return family##_avxvnni;
#else
#define MS_PICK_AVXVNNI(path, family)
#endif
#if MS_X86
#define MS_PICK_X86(path, family)                   \
    if ((path) == MS_AVX2) return family##_avx2;    \
    MS_PICK_AVXVNNI(path, family)                   \
    if ((path) == MS_AVX512VNNI) return family##_avx512;
#else
#define MS_PICK_X86(path, family)
#endif
#define MS_DEFINE_PICKER(type, family)   \
    static type family(int path) {       \
        MS_PICK_X86(path, family)        \
        return family##_portable;        \
    }

MS_DEFINE_PICKER(ms_tile_fn, ms_i8_tile)
MS_DEFINE_PICKER(ms_row_fn, ms_i8_row)
MS_DEFINE_PICKER(ms_tile_fn, ms_i4_tile)

/* --------------------------------------------------------------- Hamming */
#include "ms_hamming.h"

#endif /* MS_SIMD_H */
