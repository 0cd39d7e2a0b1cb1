"""Kernels for a near-duplicate check on write: one row made ready in one pass, and the sketch screen in one pass.

A write checks its vector against every stored one through 128-bit sketches
(the signs of 128 fixed random projections, two 64-bit words a row; see
``memstrata.agent.vectorindex``). In numpy one single row costs about ten
calls before the screen starts: the squared norm, the division, the
projection, the packing of its signs, and the peak, division and rounding of
its int8 codes, each a few µs of call overhead on 384 numbers.
:func:`prepare_row` does all of that in one compiled pass.

The screen keeps a stored row when its first word lies within ``radius1``
differing bits of the query's and both words within ``radius2``. numpy does it
in four passes over the stored words (xor, popcount, compare, nonzero) and
two more over the survivors; :func:`screen` does it in one, reading the second
word only for rows that pass the first (a portable 64-bit popcount that LLVM
turns into the ``popcnt`` instruction where the CPU has one; Numba compiles
for the CPU it runs on, see :func:`screen_path`).

The few rows that pass are scored exactly by :func:`rerank`, which checks
each stored row and scores its int8 codes against the query in one pass (no
float copy of the row). All three take trusted input: the caller checked
shapes and dtypes once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["prepare_row", "prepare_row_into", "rerank", "screen", "screen_path"]

_compiled: dict[str, Any] = {}

_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


def _prepare(x, planes, unit, proj, sketch_bytes, codes):  # pragma: no cover - compiled
    """Returns (squared norm in float64, int8 scale); ``unit``/``sketch_bytes``/``codes`` valid only for a finite, non-zero norm."""
    d = x.shape[0]
    square = 0.0
    for j in range(d):
        v = np.float64(x[j])
        square += v * v
    if not (square > 0.0 and square < np.inf):
        return square, 0.0
    norm = np.sqrt(square)
    peak = np.float32(0.0)
    for j in range(d):
        u = np.float32(np.float64(x[j]) / norm)
        unit[j] = u
        a = abs(u)
        if a > peak:
            peak = a
    bits = proj.shape[0]
    for b in range(bits):
        proj[b] = np.float32(0.0)
    for j in range(d):
        u = unit[j]
        for b in range(bits):
            proj[b] += u * planes[j, b]
    for k in range(bits // 8):
        byte = 0
        for t in range(8):
            byte = (byte << 1) | (1 if proj[8 * k + t] > 0 else 0)
        sketch_bytes[k] = byte
    scale = np.float64(peak) / 127.0 if peak > 0 else 1.0 / 127.0
    s32 = np.float32(scale)
    for j in range(d):
        codes[j] = np.int8(np.rint(unit[j] / s32))
    return square, scale


def _screen(first, second, n, code, radius1, radius2, out):  # pragma: no cover - compiled
    """Rows ``i < n`` within the radii, in order, into ``out`` (as many as fit); returns how many passed."""
    code1, code2 = code[0], code[1]  # read here: two numpy scalars as arguments cost more to dispatch than one array
    found = 0
    cap = out.shape[0]
    for i in range(n):
        v = first[i] ^ code1
        v = v - ((v >> np.uint64(1)) & _M1)
        v = (v & _M2) + ((v >> np.uint64(2)) & _M2)
        v = (v + (v >> np.uint64(4))) & _M4
        dist = np.int64((v * _H01) >> np.uint64(56))
        if dist <= radius1:
            w = second[i] ^ code2
            w = w - ((w >> np.uint64(1)) & _M1)
            w = (w & _M2) + ((w >> np.uint64(2)) & _M2)
            w = (w + (w >> np.uint64(4))) & _M4
            dist += np.int64((w * _H01) >> np.uint64(56))
            if dist <= radius2:
                if found < cap:
                    out[found] = i
                found += 1
    return found


def _rerank(words, mult, slots, ids, q, out):  # pragma: no cover - compiled
    """Check each row (see :func:`rerank`) and score it; returns the first bad row, or -1."""
    n_words = words.shape[1] - 1
    d = q.shape[0]
    for i in range(words.shape[0]):
        row = words[i]
        acc = np.uint64(1) + np.uint64(slots[i]) * mult[n_words]
        for w in range(n_words):
            acc += row[w] * mult[w]
        if acc != row[n_words] or np.int64(row[0]) != ids[i]:
            return i
        codes = row.view(np.uint8)
        scale = row.view(np.float32)[2]
        total = np.float32(0.0)
        for j in range(d):
            total += (np.float32(np.int8(codes[16 + j])) * scale) * q[j]
        out[i] = total
    return -1


def _kernel(fn: Any) -> Any:
    """``fn`` compiled on first use (never at import: importing memstrata must not load Numba)."""
    kernel = _compiled.get(fn.__name__)
    if kernel is None:
        from numba import njit

        kernel = _compiled[fn.__name__] = njit(cache=True, nogil=True, fastmath=False)(fn)
    return kernel


def prepare_row(x: np.ndarray, planes: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, float]:
    """One vector made ready for a write: ``(square, unit, sketch, codes, scale)``.

    ``x``: float32 (d,) C-contiguous; ``planes``: float32 (d, bits), bits a
    multiple of 64. ``square`` is the squared norm in float64; when it is not
    finite and positive the other values are meaningless (the caller raises).
    Otherwise ``unit`` = ``(x / sqrt(square)).astype(float32)``, ``sketch``
    uint64 (bits / 64,) = ``np.packbits(unit @ planes > 0).view(uint64)``,
    and ``codes`` int8 (d,) with ``scale`` = ``round(unit / scale)`` at
    ``scale = peak |unit| / 127`` (the int8 form a record persists).
    """
    d, bits = planes.shape
    unit = np.empty(d, np.float32)
    proj = np.empty(bits, np.float32)
    sketch = np.empty(bits // 64, np.uint64)
    codes = np.empty(d, np.int8)
    square, scale = prepare_row_into(x, planes, unit, proj, sketch.view(np.uint8), codes)
    return square, unit, sketch, codes, scale


def prepare_row_into(x: np.ndarray, planes: np.ndarray, unit: np.ndarray, proj: np.ndarray, sketch_bytes: np.ndarray,
                     codes: np.ndarray) -> tuple[float, float]:
    """:func:`prepare_row` into arrays the caller holds (and reuses from write to write): ``(square, scale)``.

    ``unit`` float32 (d,), ``proj`` float32 (bits,) (scratch), ``sketch_bytes``
    uint8 (bits / 8,) (a uint8 view of the uint64 sketch) and ``codes`` int8 (d,)
    receive what :func:`prepare_row` returns, under the same conditions.
    """
    square, scale = _kernel(_prepare)(x, planes, unit, proj, sketch_bytes, codes)
    return float(square), float(scale)


def screen(first: np.ndarray, second: np.ndarray, n: int, code: np.ndarray, radius1: int, radius2: int,
           out: np.ndarray) -> int:
    """Rows ``i < n`` with ``popcount(first[i] ^ code[0]) <= radius1`` and that plus ``popcount(second[i] ^ code[1])
    <= radius2``, ascending, written to ``out`` (int64) as far as it holds; returns how many rows passed (may be more
    than ``out.size``).

    ``first``, ``second``: uint64 (>= n,); ``code``: uint64 (2,).
    """
    return int(_kernel(_screen)(first, second, n, code, radius1, radius2, out))


def rerank(words: np.ndarray, mult: np.ndarray, slots: np.ndarray, ids: np.ndarray, q: np.ndarray,
           out: np.ndarray) -> int:
    """Exact cosines of a few stored int8 rows with the unit query ``q`` (d,) float32, each row checked first.

    ``words`` uint64 (m, W) are rows as the agent's row file keeps them: the
    id (int64), the scale (float32) and 4 zero bytes, the ``d`` int8 codes
    padded to whole words, and a check ``Σ_{w < W-1} words[i, w] * mult[w] +
    slots[i] * mult[W-1] + 1`` modulo 2**64 in the last word. ``out[i]`` (float32)
    gets ``Σ_j (float32(code_j) * scale) * q_j`` for each row that holds
    ``ids[i]`` and passes its check; returns the index of the first row that
    does not (its score and the later ones are not written), or -1.
    """
    return int(_kernel(_rerank)(words, mult, slots, ids, q, out))


def screen_path() -> str:
    """How the screen runs here, for reports: ``numba:<target cpu>:popcnt`` (or ``:portable`` without the instruction)."""
    import llvmlite.binding as ll
    from numba.core import config

    features = ll.get_host_cpu_features()
    cpu = getattr(config, "CPU_NAME", None) or ll.get_host_cpu_name()  # NUMBA_CPU_NAME may name another target
    return f"numba:{cpu}:{'popcnt' if features.get('popcnt') else 'portable'}"
