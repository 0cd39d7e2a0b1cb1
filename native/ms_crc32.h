/* CRC-32 (IEEE 802.3, the polynomial of zlib and of Python's zlib.crc32), slicing by 8.
 *
 * ms_crc32(crc, p, n) continues a checksum exactly as zlib.crc32(data, crc) does:
 * ms_crc32(ms_crc32(0, a, na), b, nb) == zlib.crc32(a + b). Portable C, no CPU
 * feature needed. Call ms_crc32_init() once (at module import) before any ms_crc32.
 */
#ifndef MS_CRC32_H
#define MS_CRC32_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static uint32_t ms_crc32_table[8][256];

static void ms_crc32_init(void) {
    uint32_t i, j, c;
    for (i = 0; i < 256; i++) {
        c = i;
        for (j = 0; j < 8; j++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        ms_crc32_table[0][i] = c;
    }
    for (i = 0; i < 256; i++) {
        c = ms_crc32_table[0][i];
        for (j = 1; j < 8; j++) {
            c = ms_crc32_table[0][c & 0xFF] ^ (c >> 8);
            ms_crc32_table[j][i] = c;
        }
    }
}

static inline uint32_t ms_crc32(uint32_t crc, const uint8_t* p, size_t n) {
    uint32_t a, b;
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = ms_crc32_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        /* little-endian loads built byte by byte: correct on every byte order, and compilers fuse them */
        a = ((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24)) ^ crc;
        b = (uint32_t)p[4] | ((uint32_t)p[5] << 8) | ((uint32_t)p[6] << 16) | ((uint32_t)p[7] << 24);
        crc = ms_crc32_table[7][a & 0xFF] ^ ms_crc32_table[6][(a >> 8) & 0xFF] ^
              ms_crc32_table[5][(a >> 16) & 0xFF] ^ ms_crc32_table[4][a >> 24] ^
              ms_crc32_table[3][b & 0xFF] ^ ms_crc32_table[2][(b >> 8) & 0xFF] ^
              ms_crc32_table[1][(b >> 16) & 0xFF] ^ ms_crc32_table[0][b >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = ms_crc32_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

#endif
