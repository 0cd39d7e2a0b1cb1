"""Plain numpy reference kernels: slow, obviously right, used by the property tests.

Quantization uses the same float32 operations in the same order as the Numba
kernels, so codes must match exactly.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
TINY = np.finfo(np.float32).tiny


def _steps(lo: np.ndarray, hi: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Step per range and its inverse; steps below the smallest normal float32 mean 'constant'."""
    scale = ((hi - lo) / F32(levels)).astype(F32)
    scale = np.where(scale >= TINY, scale, F32(0)).astype(F32)
    inv = np.zeros_like(scale)
    nz = scale > 0
    inv[nz] = F32(1) / scale[nz]
    return scale, inv


def quantize_ref(x: np.ndarray, per: str, levels: int, scales=None, offsets=None):
    """Unsigned codes in [0, levels] (not packed, not shifted), with (scales, offsets)."""
    x = np.asarray(x, dtype=F32)
    axis = 0 if per == "dimension" else 1
    if scales is not None:
        lo = offsets.astype(F32)
        scale = np.where(scales >= TINY, scales, F32(0)).astype(F32)
        inv = np.zeros_like(scale)
        inv[scale > 0] = F32(1) / scale[scale > 0]
    elif x.shape[0] == 0:
        length = x.shape[1] if per == "dimension" else 0
        lo = np.zeros(length, F32)
        scale = np.zeros(length, F32)
        inv = np.zeros(length, F32)
    else:
        lo = x.min(axis=axis)
        hi = x.max(axis=axis)
        scale, inv = _steps(lo, hi, levels)
    with np.errstate(over="ignore"):  # far outside a fixed range: inf, clamped like the kernel
        if per == "dimension":
            t = np.floor((x - lo[None, :]) * inv[None, :] + F32(0.5))
        else:
            t = np.floor((x - lo[:, None]) * inv[:, None] + F32(0.5))
    codes = np.clip(t, 0, levels).astype(np.int32)
    return codes, scale, lo


def quantize_int8_ref(x, per="dimension", scales=None, offsets=None):
    codes, scale, lo = quantize_ref(x, per, 255, scales, offsets)
    return (codes - 128).astype(np.int8), scale, lo


def dequantize_int8_ref(codes, scales, offsets, per="dimension"):
    c = codes.astype(F32)
    bias = (offsets + F32(128) * scales).astype(F32)
    if per == "dimension":
        return c * scales[None, :] + bias[None, :]
    return c * scales[:, None] + bias[:, None]


def pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """Pack unsigned 4-bit codes (n, d): dimension 2m -> low nibble of byte m, 2m+1 -> high nibble."""
    n, d = codes.shape
    padded = np.zeros((n, d + (d & 1)), np.uint8)
    padded[:, :d] = codes
    return (padded[:, 0::2] | (padded[:, 1::2] << 4)).astype(np.uint8)


def unpack_nibbles(packed: np.ndarray, d: int) -> np.ndarray:
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.uint8)
    out[:, 0::2] = packed & 15
    out[:, 1::2] = packed >> 4
    return out[:, :d]


def quantize_int4_ref(x, per="dimension", scales=None, offsets=None):
    codes, scale, lo = quantize_ref(x, per, 15, scales, offsets)
    return pack_nibbles(codes), scale, lo


def dequantize_int4_ref(packed, scales, offsets, d, per="dimension"):
    c = unpack_nibbles(packed, d).astype(F32)
    if per == "dimension":
        return c * scales[None, :] + offsets[None, :]
    return c * scales[:, None] + offsets[:, None]


def binarize_ref(x, center=None):
    x = np.asarray(x, dtype=F32)
    c = np.zeros(x.shape[1], F32) if center is None else center.astype(F32)
    return np.packbits(x > c[None, :], axis=1)


def topk_ref(scores: np.ndarray, k: int, largest: bool = True):
    """Best ``k`` per row, ties to the lower column; padded with -1 indices."""
    nq, n = scores.shape
    keyed = -scores if largest else scores
    cols = np.broadcast_to(np.arange(n), scores.shape)
    order = np.lexsort((cols, keyed), axis=1)[:, :k]
    idx = np.full((nq, k), -1, np.int64)
    idx[:, : order.shape[1]] = order
    return idx


def hamming_topk_ref(query_codes, codes, k):
    bits_q = np.unpackbits(query_codes, axis=1).astype(np.int64)
    bits_c = np.unpackbits(codes, axis=1).astype(np.int64)
    dist = (bits_q[:, None, :] != bits_c[None, :, :]).sum(axis=2)
    idx = topk_ref(dist, k, largest=False)
    d = np.where(idx >= 0, np.take_along_axis(dist, np.maximum(idx, 0), axis=1) if dist.size else -1, -1)
    return d.astype(np.int32), idx


# deliberate twin of kernels/search.py _weights: a reference shares no code with what it checks
def _query_weights_ref(queries, scales, code_max):
    """int16 weights and float64 factors: the largest |q * scale| maps to the largest weight whose
    dot product with ``d`` codes up to ``code_max`` still fits int32."""
    d = queries.shape[1]
    qs = queries.astype(np.float64) * scales.astype(np.float64)
    peak = np.abs(qs).max(axis=1)
    w_max = float(min(32767, (2**31 - 1) // (code_max * d)))
    factor = np.where(peak > 0, peak / w_max, 1.0)
    return np.rint(qs / factor[:, None]).astype(np.int64), factor


def _topk_plus_const(scores, const, k):
    """Top-k of ``scores``, then ``const`` added to each kept score (-inf where no row)."""
    idx = topk_ref(scores, k)
    s = np.where(idx >= 0, np.take_along_axis(scores, np.maximum(idx, 0), axis=1) if scores.size else 0, -np.inf)
    return np.where(idx >= 0, s + const[:, None], -np.inf).astype(F32), idx


def int8_weights_ref(queries, scales, offsets):
    """The int16 query weights, factors and constants int8 search is defined by."""
    weights, factor = _query_weights_ref(queries, scales, 128)
    const = queries.astype(np.float64) @ (offsets.astype(np.float64) + 128.0 * scales.astype(np.float64))
    return weights, factor.astype(F32), const.astype(F32)


def int8_topk_ref(queries, codes, scales, offsets, k):
    weights, factor, const = int8_weights_ref(queries, scales, offsets)
    dots = weights @ codes.astype(np.int64).T
    return _topk_plus_const(dots.astype(F32) * factor[:, None], const, k)


def to_csr_ref(dense, threshold=0.0):
    keep = np.abs(dense) > threshold
    rows, cols = np.nonzero(keep)
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    return dense[rows, cols], cols, indptr


def int4_topk_ref(queries, packed, scales, offsets, k):
    """Top-k of the int4 search as defined: int16 query weights, exact integer dots."""
    weights, factor = _query_weights_ref(queries, scales, 15)
    const = (queries.astype(np.float64) @ offsets.astype(np.float64)).astype(F32)
    dots = weights @ unpack_nibbles(packed, queries.shape[1]).astype(np.int64).T
    return _topk_plus_const(dots.astype(F32) * factor.astype(F32)[:, None], const, k)


def fitted_codes(quantize, db, fit_on):
    """``(codes, scales, offsets)``: ``db`` quantized with the parameters fitted on ``fit_on``."""
    fitted = quantize(fit_on)
    return quantize(db, scales=fitted.scales, offsets=fitted.offsets).codes, fitted.scales, fitted.offsets


def assert_same_topk(got, want):
    """Two ``(scores, indices)`` answers agree exactly (indices first: the clearer failure)."""
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


def assert_same_quantized(got, want):
    """A :class:`memstrata.kernels.Quantized` equals the reference's ``(codes, scales, offsets)`` exactly."""
    for name, a, b in zip(("codes", "scales", "offsets"), got, want):
        np.testing.assert_array_equal(a, b, err_msg=name)


class KeyIndexModel:
    """The plain-Python twin of ``memstrata._native.keyindex.KeyIndex``: fingerprint -> list of locations.

    A multimap with no layout at all: ``find`` is every location stored under a
    fingerprint (the table returns the same, in its probe order).
    """

    def __init__(self) -> None:
        self.by_fp: dict[int, list[int]] = {}

    def insert(self, fp: int, loc: int) -> None:
        self.by_fp.setdefault(fp, []).append(loc)

    def find(self, fp: int) -> list[int]:
        return sorted(self.by_fp.get(fp, []))

    def replace(self, fp: int, old: int, new: int) -> bool:
        locs = self.by_fp.get(fp, [])
        if old not in locs:
            return False
        locs[locs.index(old)] = new
        return True

    def remove(self, fp: int, loc: int) -> bool:
        locs = self.by_fp.get(fp, [])
        if loc not in locs:
            return False
        locs.remove(loc)
        if not locs:
            del self.by_fp[fp]
        return True

    def pairs(self) -> list[tuple[int, int]]:
        return sorted((fp, loc) for fp, locs in self.by_fp.items() for loc in locs)

    def __len__(self) -> int:
        return sum(map(len, self.by_fp.values()))


def sign_scores_ref(w, bits, rows):
    """``w · b`` for the unpacked sign bits ``b`` (0/1, most significant first) of ``bits[rows]``."""
    w = np.asarray(w, np.float64)
    b = np.unpackbits(bits[rows], axis=1)[:, : w.shape[0]].astype(np.float64)
    return b @ w


def word_checksums_ref(words, mult, slots):
    """``Σ_{w < W-1} words[i, w] * mult[w] + slots[i] * mult[W-1] + 1`` modulo 2**64, in Python integers."""
    out = []
    for row, slot in zip(words.tolist(), slots.tolist()):
        acc = 1 + int(slot) * int(mult[-1]) + sum(int(v) * int(m) for v, m in zip(row[:-1], mult[:-1].tolist()))
        out.append(acc % 2**64)
    return np.asarray(out, np.uint64)
