/* Top-k selection for the scans of ms_simd.h: a bounded heap per query whose root is
 * the worst kept entry, and the float scoring every path shares (ms_keep). Included by
 * ms_simd.h after its ISA detection; the Numba kernels (memstrata/kernels/heap.py) keep
 * the same order: score, then the lower row.
 */
#ifndef MS_SELECT_H
#define MS_SELECT_H

/* A heap of capacity k whose root is the worst kept entry: the lowest score,
   then (among equal scores) the highest row. Rows are offered in increasing
   order per query, so an equal score never displaces a kept entry. */
typedef struct {
    float *s;
    int64_t *i;
    int64_t size;
} ms_heap;

static inline int ms_worse(float s1, int64_t i1, float s2, int64_t i2) {
    return s1 < s2 || (s1 == s2 && i1 > i2);
}

static void ms_sift_down(float *hs, int64_t *hi, int64_t size, int64_t pos) {
    for (;;) {
        int64_t left = 2 * pos + 1, worst;
        if (left >= size) return;
        worst = left;
        if (left + 1 < size && ms_worse(hs[left + 1], hi[left + 1], hs[left], hi[left])) worst = left + 1;
        if (!ms_worse(hs[worst], hi[worst], hs[pos], hi[pos])) return;
        float ts = hs[pos]; hs[pos] = hs[worst]; hs[worst] = ts;
        int64_t ti = hi[pos]; hi[pos] = hi[worst]; hi[worst] = ti;
        pos = worst;
    }
}

static void ms_push(ms_heap *h, int64_t k, float s, int64_t i) {
    float *hs = h->s;
    int64_t *hi = h->i;
    if (h->size < k) {
        int64_t pos = h->size++;
        hs[pos] = s; hi[pos] = i;
        while (pos > 0) {
            int64_t parent = (pos - 1) / 2;
            if (!ms_worse(hs[pos], hi[pos], hs[parent], hi[parent])) break;
            float ts = hs[pos]; hs[pos] = hs[parent]; hs[parent] = ts;
            int64_t ti = hi[pos]; hi[pos] = hi[parent]; hi[parent] = ti;
            pos = parent;
        }
        return;
    }
    if (ms_worse(hs[0], hi[0], s, i)) {
        hs[0] = s; hi[0] = i;
        ms_sift_down(hs, hi, h->size, 0);
    }
}

/* Offer row i with integer dot `dot` (score = (float)dot * factor + bias). */
static inline void ms_keep(ms_heap *h, int64_t k, int32_t dot, float factor, float bias, int64_t i) {
    float s = (float)dot * factor + bias;
    if (h->size < k || s > h->s[0]) ms_push(h, k, s, i);
}

/* Write the heap best-first into out_s/out_i (k slots), padding with -inf / -1. */
static void ms_drain(ms_heap *h, int64_t k, float *out_s, int64_t *out_i) {
    int64_t size = h->size;
    for (int64_t p = size; p < k; p++) { out_s[p] = -INFINITY; out_i[p] = -1; }
    while (size > 0) {
        size--;
        out_s[size] = h->s[0]; out_i[size] = h->i[0];
        h->s[0] = h->s[size]; h->i[0] = h->i[size];
        ms_sift_down(h->s, h->i, size, 0);
    }
    h->size = 0;
}

/* Hamming: the k smallest distances, ties to the lower row; a heap keyed on
   (distance, row) with the largest at the root. */
static inline void ms_keep_dist(ms_heap *h, int64_t k, int32_t dist, int64_t i) {
    /* store -dist as the score: "worst" (lowest score) is then the largest distance */
    float s = -(float)dist;
    if (h->size < k || s > h->s[0]) ms_push(h, k, s, i);
}

#endif /* MS_SELECT_H */
