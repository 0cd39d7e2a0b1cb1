"""Numba array kernels: quantization, binarization, top-k search, CSR.

Each public function validates its arguments once and calls a kernel compiled
with ``@njit(cache=True, nogil=True)`` on first use (never at import); inputs
of at least ``PARALLEL_MIN_ELEMENTS`` elements use a ``parallel=True`` twin of
the same kernel when Numba has more than one thread.

``int8_search``, ``int4_search``, ``hamming_search`` and ``float_search`` are
the trusted-input entry points the vector memory calls after validating once
(``check_k`` validates a ``k``); the ``*_topk`` functions validate their input.
"""

from __future__ import annotations

from memstrata.kernels.binary import binarize
from memstrata.kernels.csr import CSR, from_csr, to_csr
from memstrata.kernels.quantize import Quantized, dequantize_int4, dequantize_int8, quantize_int4, quantize_int8
from memstrata.kernels.search import check_k, float_search, hamming_search, int4_search, int8_search
from memstrata.kernels.topk import hamming_topk, int8_topk, rescore_topk

__all__ = [
    "CSR",
    "Quantized",
    "binarize",
    "check_k",
    "dequantize_int4",
    "dequantize_int8",
    "float_search",
    "from_csr",
    "hamming_search",
    "hamming_topk",
    "int4_search",
    "int8_search",
    "int8_topk",
    "quantize_int4",
    "quantize_int8",
    "rescore_topk",
    "to_csr",
]
