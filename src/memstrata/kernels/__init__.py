"""Numba array kernels: quantization, binarization, top-k search, CSR.

Each public function validates its arguments once and calls a kernel compiled
with ``@njit(cache=True, nogil=True)`` on first use (never at import); inputs
of at least ``PARALLEL_MIN_ELEMENTS`` elements use a ``parallel=True`` twin of
the same kernel when Numba has more than one thread.
"""

from __future__ import annotations

from memstrata.kernels.binary import binarize
from memstrata.kernels.csr import CSR, from_csr, to_csr
from memstrata.kernels.dequantize import dequantize_int4, dequantize_int8
from memstrata.kernels.quantize import Quantized, quantize_int4, quantize_int8
from memstrata.kernels.topk import hamming_topk, int8_topk, rescore_topk

__all__ = [
    "CSR",
    "Quantized",
    "binarize",
    "dequantize_int4",
    "dequantize_int8",
    "from_csr",
    "hamming_topk",
    "int8_topk",
    "quantize_int4",
    "quantize_int8",
    "rescore_topk",
    "to_csr",
]
