/*
 * XXH3-128 (the stable xxHash 0.8 format), as memstrata's content digest.
 *
 * Written for memstrata from the published description of the algorithm. The
 * output is bit-identical to the reference implementation; tests pin it against
 * the `xxhash` Python package for every input length 0..2100 and many seeds, so
 * persisted digests can never drift.
 *
 * Inputs over 240 bytes run a SIMD loop: SSE2 on every x86-64, AVX2 where the
 * CPU has it (checked once at run time), portable scalar C elsewhere. All three
 * give the same bits; a test runs each against the reference. Functions are
 * static: this header is included by each Cython module that hashes.
 */
#ifndef MEMSTRATA_XXH3_H
#define MEMSTRATA_XXH3_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint64_t lo;
    uint64_t hi;
} ms_u128;

#define MS_P32_1 0x9E3779B1U
#define MS_P32_2 0x85EBCA77U
#define MS_P32_3 0xC2B2AE3DU
#define MS_P64_1 0x9E3779B185EBCA87ULL
#define MS_P64_2 0xC2B2AE3D27D4EB4FULL
#define MS_P64_3 0x165667B19E3779F9ULL
#define MS_P64_4 0x85EBCA77C2B2AE63ULL
#define MS_P64_5 0x27D4EB2F165667C5ULL
#define MS_PMX1 0x165667919E3779F9ULL
#define MS_PMX2 0x9FB21C651E98DF25ULL

#define MS_SECRET_SIZE 192
#define MS_STRIPE_LEN 64

/* The default 192-byte secret of the format. Its rows are alike in shape only (a table of
 * constants that the XXH3 format fixes); nothing in them repeats. */
static const uint8_t ms_xxh3_secret[MS_SECRET_SIZE] = {
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
};

/* ---- little-endian loads/stores, whatever the host byte order ---------- */

#if defined(__BYTE_ORDER__) && (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__)
#define MS_HOST_BIG_ENDIAN 1
#else
#define MS_HOST_BIG_ENDIAN 0
#endif

static inline uint32_t ms_bswap32(uint32_t x) { return __builtin_bswap32(x); }
static inline uint64_t ms_bswap64(uint64_t x) { return __builtin_bswap64(x); }

static inline uint32_t ms_read32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return MS_HOST_BIG_ENDIAN ? ms_bswap32(v) : v;
}

static inline uint64_t ms_read64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return MS_HOST_BIG_ENDIAN ? ms_bswap64(v) : v;
}

static inline void ms_write64(uint8_t *p, uint64_t v) {
    if (MS_HOST_BIG_ENDIAN) v = ms_bswap64(v);
    memcpy(p, &v, 8);
}

/* Big-endian load/store: the canonical byte form of a digest is big-endian. */
static inline uint64_t ms_read64_be(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return MS_HOST_BIG_ENDIAN ? v : ms_bswap64(v);
}

static inline void ms_write64_be(uint8_t *p, uint64_t v) {
    if (!MS_HOST_BIG_ENDIAN) v = ms_bswap64(v);
    memcpy(p, &v, 8);
}

/* ---- arithmetic helpers -------------------------------------------------- */

static inline ms_u128 ms_mul128(uint64_t a, uint64_t b) {
    __uint128_t p = (__uint128_t)a * b;
    ms_u128 r;
    r.lo = (uint64_t)p;
    r.hi = (uint64_t)(p >> 64);
    return r;
}

static inline uint64_t ms_mul128_fold64(uint64_t a, uint64_t b) {
    __uint128_t p = (__uint128_t)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

/* High 64 bits of a 64x64 product: maps a uniform 64-bit hash onto [0, n). */
static inline uint64_t ms_mulhi64(uint64_t a, uint64_t b) {
    return (uint64_t)(((__uint128_t)a * b) >> 64);
}

static inline uint32_t ms_rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

static inline uint64_t ms_xxh64_avalanche(uint64_t h) {
    h ^= h >> 33;
    h *= MS_P64_2;
    h ^= h >> 29;
    h *= MS_P64_3;
    h ^= h >> 32;
    return h;
}

static inline uint64_t ms_xxh3_avalanche(uint64_t h) {
    h ^= h >> 37;
    h *= MS_PMX1;
    h ^= h >> 32;
    return h;
}

/* ---- short inputs (0..240 bytes) ----------------------------------------- */

static inline ms_u128 ms_xxh3_len_1to3(const uint8_t *p, size_t len, const uint8_t *s, uint64_t seed) {
    uint8_t c1 = p[0], c2 = p[len >> 1], c3 = p[len - 1];
    uint32_t combinedl = ((uint32_t)c1 << 16) | ((uint32_t)c2 << 24) | ((uint32_t)c3 << 0) | ((uint32_t)len << 8);
    uint32_t combinedh = ms_rotl32(ms_bswap32(combinedl), 13);
    uint64_t bitflipl = (uint64_t)(ms_read32(s) ^ ms_read32(s + 4)) + seed;
    uint64_t bitfliph = (uint64_t)(ms_read32(s + 8) ^ ms_read32(s + 12)) - seed;
    ms_u128 h;
    h.lo = ms_xxh64_avalanche((uint64_t)combinedl ^ bitflipl);
    h.hi = ms_xxh64_avalanche((uint64_t)combinedh ^ bitfliph);
    return h;
}

static inline ms_u128 ms_xxh3_len_4to8(const uint8_t *p, size_t len, const uint8_t *s, uint64_t seed) {
    seed ^= (uint64_t)ms_bswap32((uint32_t)seed) << 32;
    uint32_t in_lo = ms_read32(p);
    uint32_t in_hi = ms_read32(p + len - 4);
    uint64_t in64 = in_lo + ((uint64_t)in_hi << 32);
    uint64_t bitflip = (ms_read64(s + 16) ^ ms_read64(s + 24)) + seed;
    uint64_t keyed = in64 ^ bitflip;
    ms_u128 m = ms_mul128(keyed, MS_P64_1 + ((uint64_t)len << 2));
    m.hi += (m.lo << 1);
    m.lo ^= (m.hi >> 3);
    m.lo ^= m.lo >> 35;
    m.lo *= MS_PMX2;
    m.lo ^= m.lo >> 28;
    m.hi = ms_xxh3_avalanche(m.hi);
    return m;
}

static inline ms_u128 ms_xxh3_len_9to16(const uint8_t *p, size_t len, const uint8_t *s, uint64_t seed) {
    uint64_t bitflipl = (ms_read64(s + 32) ^ ms_read64(s + 40)) - seed;
    uint64_t bitfliph = (ms_read64(s + 48) ^ ms_read64(s + 56)) + seed;
    uint64_t in_lo = ms_read64(p);
    uint64_t in_hi = ms_read64(p + len - 8);
    ms_u128 m = ms_mul128(in_lo ^ in_hi ^ bitflipl, MS_P64_1);
    m.lo += (uint64_t)(len - 1) << 54;
    in_hi ^= bitfliph;
    m.hi += in_hi + (uint64_t)(uint32_t)in_hi * (uint64_t)(MS_P32_2 - 1);
    m.lo ^= ms_bswap64(m.hi);
    ms_u128 h = ms_mul128(m.lo, MS_P64_2);
    h.hi += m.hi * MS_P64_2;
    h.lo = ms_xxh3_avalanche(h.lo);
    h.hi = ms_xxh3_avalanche(h.hi);
    return h;
}

static inline ms_u128 ms_xxh3_len_0to16(const uint8_t *p, size_t len, const uint8_t *s, uint64_t seed) {
    if (len > 8) return ms_xxh3_len_9to16(p, len, s, seed);
    if (len >= 4) return ms_xxh3_len_4to8(p, len, s, seed);
    if (len) return ms_xxh3_len_1to3(p, len, s, seed);
    ms_u128 h;
    h.lo = ms_xxh64_avalanche(seed ^ ms_read64(s + 64) ^ ms_read64(s + 72));
    h.hi = ms_xxh64_avalanche(seed ^ ms_read64(s + 80) ^ ms_read64(s + 88));
    return h;
}

static inline uint64_t ms_xxh3_mix16(const uint8_t *p, const uint8_t *s, uint64_t seed) {
    return ms_mul128_fold64(ms_read64(p) ^ (ms_read64(s) + seed), ms_read64(p + 8) ^ (ms_read64(s + 8) - seed));
}

static inline ms_u128 ms_xxh3_mix32(ms_u128 acc, const uint8_t *p1, const uint8_t *p2, const uint8_t *s,
                                    uint64_t seed) {
    acc.lo += ms_xxh3_mix16(p1, s, seed);
    acc.lo ^= ms_read64(p2) + ms_read64(p2 + 8);
    acc.hi += ms_xxh3_mix16(p2, s + 16, seed);
    acc.hi ^= ms_read64(p1) + ms_read64(p1 + 8);
    return acc;
}

static inline ms_u128 ms_xxh3_finish_mid(ms_u128 acc, size_t len, uint64_t seed) {
    ms_u128 h;
    h.lo = acc.lo + acc.hi;
    h.hi = acc.lo * MS_P64_1 + acc.hi * MS_P64_4 + ((uint64_t)len - seed) * MS_P64_2;
    h.lo = ms_xxh3_avalanche(h.lo);
    h.hi = (uint64_t)0 - ms_xxh3_avalanche(h.hi);
    return h;
}

static inline ms_u128 ms_xxh3_len_17to128(const uint8_t *p, size_t len, const uint8_t *s, uint64_t seed) {
    ms_u128 acc;
    acc.lo = (uint64_t)len * MS_P64_1;
    acc.hi = 0;
    if (len > 32) {
        if (len > 64) {
            if (len > 96) acc = ms_xxh3_mix32(acc, p + 48, p + len - 64, s + 96, seed);
            acc = ms_xxh3_mix32(acc, p + 32, p + len - 48, s + 64, seed);
        }
        acc = ms_xxh3_mix32(acc, p + 16, p + len - 32, s + 32, seed);
    }
    acc = ms_xxh3_mix32(acc, p, p + len - 16, s, seed);
    return ms_xxh3_finish_mid(acc, len, seed);
}

static inline ms_u128 ms_xxh3_len_129to240(const uint8_t *p, size_t len, const uint8_t *s, uint64_t seed) {
    ms_u128 acc;
    size_t i;
    acc.lo = (uint64_t)len * MS_P64_1;
    acc.hi = 0;
    for (i = 32; i < 160; i += 32) acc = ms_xxh3_mix32(acc, p + i - 32, p + i - 16, s + i - 32, seed);
    acc.lo = ms_xxh3_avalanche(acc.lo);
    acc.hi = ms_xxh3_avalanche(acc.hi);
    /* rounds past the fourth read the secret from offset 3 */
    for (i = 160; i <= len; i += 32) acc = ms_xxh3_mix32(acc, p + i - 32, p + i - 16, s + 3 + i - 160, seed);
    /* the last 32 bytes, against secret bytes 103..134 */
    acc = ms_xxh3_mix32(acc, p + len - 16, p + len - 32, s + 136 - 17 - 16, (uint64_t)0 - seed);
    return ms_xxh3_finish_mid(acc, len, seed);
}

/* ---- long inputs (> 240 bytes) ------------------------------------------- */

static inline void ms_xxh3_accumulate_512(uint64_t *acc, const uint8_t *p, const uint8_t *s) {
    for (int i = 0; i < 8; i++) {
        uint64_t data_val = ms_read64(p + 8 * i);
        uint64_t data_key = data_val ^ ms_read64(s + 8 * i);
        acc[i ^ 1] += data_val;
        acc[i] += (uint64_t)(uint32_t)data_key * (data_key >> 32);
    }
}

static inline void ms_xxh3_scramble(uint64_t *acc, const uint8_t *s) {
    for (int i = 0; i < 8; i++) {
        uint64_t a = acc[i];
        a ^= a >> 47;
        a ^= ms_read64(s + 8 * i);
        a *= MS_P32_1;
        acc[i] = a;
    }
}

static inline uint64_t ms_xxh3_merge_accs(const uint64_t *acc, const uint8_t *s, uint64_t start) {
    uint64_t r = start;
    for (int i = 0; i < 4; i++)
        r += ms_mul128_fold64(acc[2 * i] ^ ms_read64(s + 16 * i), acc[2 * i + 1] ^ ms_read64(s + 16 * i + 8));
    return ms_xxh3_avalanche(r);
}

/* The long-input loop, instantiated once per instruction set: it runs the
 * 64-byte stripes through ACCUMULATE and scrambles after each 1 KiB block. */
#define MS_DEFINE_XXH3_LONG(NAME, ATTR, ACCUMULATE, SCRAMBLE)                                            \
    ATTR static ms_u128 NAME(const uint8_t *p, size_t len, const uint8_t *s) {                            \
        uint64_t acc[8] __attribute__((aligned(32))) = {MS_P32_3, MS_P64_1, MS_P64_2, MS_P64_3,          \
                                                        MS_P64_4, MS_P32_2, MS_P64_5, MS_P32_1};         \
        const size_t stripes_per_block = (MS_SECRET_SIZE - MS_STRIPE_LEN) / 8;                           \
        const size_t block_len = MS_STRIPE_LEN * stripes_per_block;                                      \
        const size_t n_blocks = (len - 1) / block_len;                                                   \
        size_t n, k;                                                                                     \
        for (n = 0; n < n_blocks; n++) {                                                                 \
            for (k = 0; k < stripes_per_block; k++)                                                      \
                ACCUMULATE(acc, p + n * block_len + k * MS_STRIPE_LEN, s + k * 8);                       \
            SCRAMBLE(acc, s + MS_SECRET_SIZE - MS_STRIPE_LEN);                                           \
        }                                                                                                \
        const size_t n_stripes = ((len - 1) - block_len * n_blocks) / MS_STRIPE_LEN;                     \
        for (k = 0; k < n_stripes; k++)                                                                  \
            ACCUMULATE(acc, p + n_blocks * block_len + k * MS_STRIPE_LEN, s + k * 8);                    \
        ACCUMULATE(acc, p + len - MS_STRIPE_LEN, s + MS_SECRET_SIZE - MS_STRIPE_LEN - 7);                \
        ms_u128 h;                                                                                       \
        h.lo = ms_xxh3_merge_accs(acc, s + 11, (uint64_t)len * MS_P64_1);                                \
        h.hi = ms_xxh3_merge_accs(acc, s + MS_SECRET_SIZE - 64 - 11, ~((uint64_t)len * MS_P64_2));       \
        return h;                                                                                        \
    }

MS_DEFINE_XXH3_LONG(ms_xxh3_long_scalar, , ms_xxh3_accumulate_512, ms_xxh3_scramble)

#if defined(__x86_64__) && !MS_HOST_BIG_ENDIAN
#include <immintrin.h>

/* The SSE2 and AVX2 builds of accumulate, scramble and the long hash, from one source:
 * MS_DEFINE_XXH3_SIMD(isa, ATTR, V, MM, SI, W) expands them for vector type V of W bytes, whose
 * intrinsics are named MM##_op (_mm, _mm256) and MM##_op_##SI (si128, si256).
 * accumulate, per 64-bit lane: acc += lo32(key^data) * hi32(key^data) + data of the neighbouring lane.
 * scramble, per 64-bit lane: a 64-bit lane times a 32-bit constant is lo*P + (hi*P << 32). */
#define MS_DEFINE_XXH3_SIMD(isa, ATTR, V, MM, SI, W)                                                   \
    ATTR static inline void ms_xxh3_accumulate_512_##isa(uint64_t *acc, const uint8_t *p, const uint8_t *s) { \
        V *a = (V *)acc;                                                                                 \
        for (int i = 0; i < 64 / (W); i++) {                                                             \
            V data = MM##_loadu_##SI((const V *)(p + (W) * i));                                          \
            V key = MM##_xor_##SI(data, MM##_loadu_##SI((const V *)(s + (W) * i)));                      \
            V key_hi = MM##_shuffle_epi32(key, _MM_SHUFFLE(0, 3, 0, 1));                                 \
            V product = MM##_mul_epu32(key, key_hi);                                                     \
            V swapped = MM##_shuffle_epi32(data, _MM_SHUFFLE(1, 0, 3, 2));                               \
            a[i] = MM##_add_epi64(a[i], MM##_add_epi64(product, swapped));                               \
        }                                                                                                \
    }                                                                                                    \
    ATTR static inline void ms_xxh3_scramble_##isa(uint64_t *acc, const uint8_t *s) {                   \
        V *a = (V *)acc;                                                                                 \
        const V prime = MM##_set1_epi32((int)MS_P32_1);                                                  \
        for (int i = 0; i < 64 / (W); i++) {                                                             \
            V v = MM##_xor_##SI(a[i], MM##_srli_epi64(a[i], 47));                                        \
            v = MM##_xor_##SI(v, MM##_loadu_##SI((const V *)(s + (W) * i)));                             \
            V lo = MM##_mul_epu32(v, prime);                                                             \
            V hi = MM##_mul_epu32(MM##_shuffle_epi32(v, _MM_SHUFFLE(0, 3, 0, 1)), prime);                \
            a[i] = MM##_add_epi64(lo, MM##_slli_epi64(hi, 32));                                          \
        }                                                                                                \
    }                                                                                                    \
    MS_DEFINE_XXH3_LONG(ms_xxh3_long_##isa, ATTR, ms_xxh3_accumulate_512_##isa, ms_xxh3_scramble_##isa)

#define MS_AVX2 __attribute__((target("avx2")))

/* SSE2 is part of x86-64, so this path needs no CPU check; AVX2 is picked at run time. */
MS_DEFINE_XXH3_SIMD(sse2, , __m128i, _mm, si128, 16)
MS_DEFINE_XXH3_SIMD(avx2, MS_AVX2, __m256i, _mm256, si256, 32)

/* 0 = not yet checked, 1 = SSE2, 2 = AVX2. Racing first calls all store the same value. */
static int ms_xxh3_isa = 0;

static inline ms_u128 ms_xxh3_long(const uint8_t *p, size_t len, const uint8_t *s) {
    if (ms_xxh3_isa == 0) {
        __builtin_cpu_init();
        ms_xxh3_isa = __builtin_cpu_supports("avx2") ? 2 : 1;
    }
    return ms_xxh3_isa == 2 ? ms_xxh3_long_avx2(p, len, s) : ms_xxh3_long_sse2(p, len, s);
}
#else
static inline ms_u128 ms_xxh3_long(const uint8_t *p, size_t len, const uint8_t *s) {
    return ms_xxh3_long_scalar(p, len, s);
}
#endif

/* Which long-input implementation runs here: "avx2", "sse2" or "scalar". */
static inline const char *ms_xxh3_long_isa(void) {
#if defined(__x86_64__) && !MS_HOST_BIG_ENDIAN
    uint8_t probe[MS_STRIPE_LEN * 5] = {0};
    (void)ms_xxh3_long(probe, sizeof(probe), ms_xxh3_secret);
    return ms_xxh3_isa == 2 ? "avx2" : "sse2";
#else
    return "scalar";
#endif
}

/* Force one long-input implementation (for tests): "avx2", "sse2", "scalar". */
static inline int ms_xxh3_long_with(const char *isa, const uint8_t *p, size_t len, ms_u128 *out) {
    if (len <= 240) return -1;
    if (strcmp(isa, "scalar") == 0) { *out = ms_xxh3_long_scalar(p, len, ms_xxh3_secret); return 0; }
#if defined(__x86_64__) && !MS_HOST_BIG_ENDIAN
    if (strcmp(isa, "sse2") == 0) { *out = ms_xxh3_long_sse2(p, len, ms_xxh3_secret); return 0; }
    if (strcmp(isa, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        *out = ms_xxh3_long_avx2(p, len, ms_xxh3_secret);
        return 0;
    }
#endif
    return -1;
}

/* ---- entry point ---------------------------------------------------------- */

/* XXH3-128 of p[0:len] with a 64-bit seed. */
static inline ms_u128 ms_xxh3_128(const void *data, size_t len, uint64_t seed) {
    const uint8_t *p = (const uint8_t *)data;
    const uint8_t *s = ms_xxh3_secret;
    if (len <= 16) return ms_xxh3_len_0to16(p, len, s, seed);
    if (len <= 128) return ms_xxh3_len_17to128(p, len, s, seed);
    if (len <= 240) return ms_xxh3_len_129to240(p, len, s, seed);
    if (seed == 0) return ms_xxh3_long(p, len, s);
    /* a seeded long hash runs on a secret derived from the seed */
    uint8_t custom[MS_SECRET_SIZE];
    for (int i = 0; i < MS_SECRET_SIZE / 16; i++) {
        ms_write64(custom + 16 * i, ms_read64(s + 16 * i) + seed);
        ms_write64(custom + 16 * i + 8, ms_read64(s + 16 * i + 8) - seed);
    }
    return ms_xxh3_long(p, len, custom);
}

/* The canonical 16-byte form: high half first, each half big-endian. */
static inline void ms_u128_to_canonical(ms_u128 h, uint8_t *out) {
    ms_write64_be(out, h.hi);
    ms_write64_be(out + 8, h.lo);
}

static inline ms_u128 ms_u128_from_canonical(const uint8_t *in) {
    ms_u128 h;
    h.hi = ms_read64_be(in);
    h.lo = ms_read64_be(in + 8);
    return h;
}

#endif /* MEMSTRATA_XXH3_H */
