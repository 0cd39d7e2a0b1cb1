/* SHA-256 (FIPS 180-4) for memstrata's audit log, with two instruction paths.
 *
 *   portable  plain C rounds, any CPU;
 *   shani     the x86 SHA extensions (sha256rnds2 / sha256msg1 / sha256msg2),
 *             compiled with a `target` attribute and chosen at run time only
 *             when CPUID reports SHA, SSSE3 and SSE4.1.
 *
 * Both paths share the padding code and differ only in the block transform,
 * so they produce the same digest for every input (tests compare each path
 * with hashlib over many lengths).
 */
#ifndef MS_SHA256_H
#define MS_SHA256_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define MS_SHA_X86 1
#include <cpuid.h>
#include <immintrin.h>
#else
#define MS_SHA_X86 0
#endif

enum { MS_SHA_PORTABLE = 0, MS_SHA_SHANI = 1 };

static const uint32_t ms_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static const uint32_t ms_sha256_h0[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static inline uint32_t ms_ror32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static inline uint32_t ms_load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void ms_sha256_blocks_portable(uint32_t st[8], const uint8_t *data, size_t nblocks) {
    uint32_t w[64];
    while (nblocks--) {
        for (int t = 0; t < 16; t++) w[t] = ms_load_be32(data + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = ms_ror32(w[t - 15], 7) ^ ms_ror32(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = ms_ror32(w[t - 2], 17) ^ ms_ror32(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
        for (int t = 0; t < 64; t++) {
            uint32_t S1 = ms_ror32(e, 6) ^ ms_ror32(e, 11) ^ ms_ror32(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = h + S1 + ch + ms_sha256_k[t] + w[t];
            uint32_t S0 = ms_ror32(a, 2) ^ ms_ror32(a, 13) ^ ms_ror32(a, 22);
            uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = S0 + maj;
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
        data += 64;
    }
}

#if MS_SHA_X86
/* The SHA extensions keep the state as two vectors, ABEF and CDGH; each
 * sha256rnds2 does two rounds, taking the two message+constant words from the
 * low half of its third operand. sha256msg1/msg2 compute the message schedule
 * four words at a time: W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16]. */
__attribute__((target("sha,ssse3,sse4.1")))
static void ms_sha256_blocks_shani(uint32_t st[8], const uint8_t *data, size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i dcba = _mm_loadu_si128((const __m128i *)&st[0]); /* lanes: a b c d */
    __m128i hgfe = _mm_loadu_si128((const __m128i *)&st[4]); /* lanes: e f g h */
    __m128i badc = _mm_shuffle_epi32(dcba, 0xB1);            /* lanes: b a d c */
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);            /* lanes: h g f e */
    __m128i abef = _mm_alignr_epi8(badc, efgh, 8);           /* lanes: f e b a */
    __m128i cdgh = _mm_blend_epi16(efgh, badc, 0xF0);        /* lanes: h g d c */
    while (nblocks--) {
        __m128i abef_in = abef, cdgh_in = cdgh;
        __m128i m[4];
        for (int i = 0; i < 16; i++) {
            __m128i mi;
            if (i < 4) {
                mi = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), bswap);
            } else {
                __m128i x = _mm_sha256msg1_epu32(m[i & 3], m[(i + 1) & 3]);   /* W[t-16] + s0(W[t-15]) */
                x = _mm_add_epi32(x, _mm_alignr_epi8(m[(i + 3) & 3], m[(i + 2) & 3], 4)); /* + W[t-7] */
                mi = _mm_sha256msg2_epu32(x, m[(i + 3) & 3]);                  /* + s1(W[t-2]) */
            }
            m[i & 3] = mi;
            __m128i wk = _mm_add_epi32(mi, _mm_loadu_si128((const __m128i *)&ms_sha256_k[4 * i]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
        }
        abef = _mm_add_epi32(abef, abef_in);
        cdgh = _mm_add_epi32(cdgh, cdgh_in);
        data += 64;
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);     /* lanes: a b e f */
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);     /* lanes: g h c d */
    dcba = _mm_blend_epi16(feba, dchg, 0xF0);         /* lanes: a b c d */
    hgfe = _mm_alignr_epi8(dchg, feba, 8);            /* lanes: e f g h */
    _mm_storeu_si128((__m128i *)&st[0], dcba);
    _mm_storeu_si128((__m128i *)&st[4], hgfe);
}
#endif

static int ms_sha256_supported(int path) {
    if (path == MS_SHA_PORTABLE) return 1;
#if MS_SHA_X86
    if (path == MS_SHA_SHANI) {
        unsigned int a, b, c, d;
        if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
        int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
        return ssse3 && sse41 && ((b >> 29) & 1);
    }
#endif
    return 0;
}

static inline void ms_sha256_blocks(int path, uint32_t st[8], const uint8_t *data, size_t nblocks) {
#if MS_SHA_X86
    if (path == MS_SHA_SHANI) { ms_sha256_blocks_shani(st, data, nblocks); return; }
#endif
    ms_sha256_blocks_portable(st, data, nblocks);
}

/* out = SHA-256(data[0:len]) on the given path (the caller checked it is supported). */
static void ms_sha256(int path, const uint8_t *data, size_t len, uint8_t out[32]) {
    uint32_t st[8];
    uint8_t tail[128];
    memcpy(st, ms_sha256_h0, sizeof st);
    size_t full = len / 64;
    ms_sha256_blocks(path, st, data, full);
    size_t rest = len - full * 64;
    memcpy(tail, data + full * 64, rest);
    tail[rest] = 0x80;
    size_t padded = rest + 1 + 8 <= 64 ? 64 : 128;
    memset(tail + rest + 1, 0, padded - rest - 1);
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[padded - 1 - i] = (uint8_t)(bits >> (8 * i));
    ms_sha256_blocks(path, st, tail, padded / 64);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(st[i] >> 24);
        out[4 * i + 1] = (uint8_t)(st[i] >> 16);
        out[4 * i + 2] = (uint8_t)(st[i] >> 8);
        out[4 * i + 3] = (uint8_t)st[i];
    }
}

#endif
