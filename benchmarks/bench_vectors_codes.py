"""Vector encoding kernels against numpy references and peers (faiss, scipy): int8/int4 encode and decode, binarize, CSR.

Data as in ``bench_vectors.py`` (``_vectors_data``); everything runs
single-threaded except the parallel-threshold group. Each records GB/s of
float32 input and, for memstrata, the ratio to the named peer measured in the
same run (medians).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from _vectors_data import (
    _faiss,
    _need_data,
    big,
    ratio_info,
    run,
    single_thread,  # noqa: F401 (an autouse fixture: active in the modules that import it)
)

from memstrata.kernels import (
    binarize,
    dequantize_int4,
    dequantize_int8,
    quantize_int4,
    quantize_int8,
    to_csr,
)

# ------------------------------------------------------------- encode/decode


def _faiss_sq(qtype_name: str, x: np.ndarray):
    faiss = _faiss()
    sq = faiss.ScalarQuantizer(x.shape[1], getattr(faiss.ScalarQuantizer, qtype_name))
    sq.train(x)
    return sq


def _copyto_peer(x: np.ndarray) -> Callable[[], Any]:
    buf = np.empty_like(x)
    return lambda: np.copyto(buf, x)


def _numpy_quantize(x, scales, offsets, levels):
    inv = np.where(scales > 0, np.float32(1) / np.where(scales > 0, scales, 1), 0).astype(np.float32)
    return np.clip(np.floor((x - offsets) * inv + np.float32(0.5)), 0, levels).astype(np.int32)


def _encode_case(benchmark, group: str, quantize):
    """The 100k real vectors of an encode group, and their ranges fitted by ``quantize``."""
    _need_data()
    x = big()
    benchmark.group = group
    return x, quantize(x)


def _memstrata_encode(benchmark, impl, quantize, x, fitted, out, peers) -> None:
    """Time ``quantize`` into ``out``: with the fitted ranges (``memstrata``) or fitting them too."""
    if impl == "memstrata":
        ours = lambda: quantize(x, scales=fitted.scales, offsets=fitted.offsets, out=out)
    else:
        ours = lambda: quantize(x, out=out)
    run(benchmark, ours)
    ratio_info(benchmark, ours, peers, x.nbytes)


@pytest.mark.parametrize("impl", ["memstrata", "memstrata-fit+encode", "numpy-ref", "faiss", "np.copyto"])
def test_int8_encode(benchmark, impl):
    x, fitted = _encode_case(benchmark, "int8-encode-100k-384d", quantize_int8)
    out = np.empty(x.shape, np.int8)
    faiss_fn = None
    try:
        sq = _faiss_sq("QT_8bit", x)
        faiss_fn = lambda: sq.compute_codes(x)
    except pytest.skip.Exception:
        if impl == "faiss":
            raise
    peers = {"np.copyto": _copyto_peer(x)}
    if faiss_fn is not None:
        peers["faiss"] = faiss_fn
    if impl.startswith("memstrata"):
        _memstrata_encode(benchmark, impl, quantize_int8, x, fitted, out, peers)
    elif impl == "numpy-ref":
        run(benchmark, lambda: (_numpy_quantize(x, fitted.scales, fitted.offsets, 255) - 128).astype(np.int8), 3)
    elif impl == "faiss":
        run(benchmark, faiss_fn, 3)
    else:
        run(benchmark, peers["np.copyto"])
    benchmark.extra_info["bytes_per_vector"] = 384


@pytest.mark.parametrize("impl", ["memstrata", "numpy-ref", "faiss"])
def test_int8_decode(benchmark, impl):
    _need_data()
    x = big()
    benchmark.group = "int8-decode-100k-384d"
    q = quantize_int8(x)
    out = np.empty(x.shape, np.float32)
    if impl == "memstrata":
        ours = lambda: dequantize_int8(q.codes, q.scales, q.offsets, out=out)
        run(benchmark, ours)
        sq = _faiss_sq("QT_8bit", x)
        codes = sq.compute_codes(x)
        ratio_info(benchmark, ours, {"faiss": lambda: sq.decode(codes), "np.copyto": _copyto_peer(x)}, x.nbytes)
        benchmark.extra_info["max_abs_error"] = float(np.abs(out - x).max())
    elif impl == "numpy-ref":
        bias = (q.offsets + np.float32(128) * q.scales).astype(np.float32)
        run(benchmark, lambda: q.codes.astype(np.float32) * q.scales + bias, 3)
    else:
        sq = _faiss_sq("QT_8bit", x)
        codes = sq.compute_codes(x)
        run(benchmark, lambda: sq.decode(codes), 3)
        benchmark.extra_info["max_abs_error"] = float(np.abs(sq.decode(codes) - x).max())


@pytest.mark.parametrize("impl", ["memstrata", "memstrata-fit+encode", "numpy-ref", "faiss", "np.copyto"])
def test_int4_encode(benchmark, impl):
    x, fitted = _encode_case(benchmark, "int4-encode-100k-384d", quantize_int4)
    out = np.empty((x.shape[0], 192), np.uint8)
    peers: dict[str, Callable[[], Any]] = {"np.copyto": _copyto_peer(x)}
    if impl in ("memstrata", "memstrata-fit+encode", "faiss"):
        sq = _faiss_sq("QT_4bit", x)
        peers["faiss"] = lambda: sq.compute_codes(x)
    if impl.startswith("memstrata"):
        _memstrata_encode(benchmark, impl, quantize_int4, x, fitted, out, peers)
    elif impl == "numpy-ref":

        def numpy_int4():
            c = _numpy_quantize(x, fitted.scales, fitted.offsets, 15).astype(np.uint8)
            return c[:, 0::2] | (c[:, 1::2] << 4)

        run(benchmark, numpy_int4, 3)
    elif impl == "faiss":
        run(benchmark, peers["faiss"], 3)
    else:
        run(benchmark, peers["np.copyto"])
    benchmark.extra_info["bytes_per_vector"] = 192


@pytest.mark.parametrize("impl", ["memstrata", "faiss"])
def test_int4_decode(benchmark, impl):
    _need_data()
    x = big()
    benchmark.group = "int4-decode-100k-384d"
    sq = _faiss_sq("QT_4bit", x)
    codes = sq.compute_codes(x)
    if impl == "memstrata":
        q = quantize_int4(x)
        out = np.empty(x.shape, np.float32)
        ours = lambda: dequantize_int4(q.codes, q.scales, q.offsets, out=out)
        run(benchmark, ours)
        ratio_info(benchmark, ours, {"faiss": lambda: sq.decode(codes)}, x.nbytes)
        benchmark.extra_info["max_abs_error"] = float(np.abs(out - x).max())
    else:
        run(benchmark, lambda: sq.decode(codes), 3)
        benchmark.extra_info["max_abs_error"] = float(np.abs(sq.decode(codes) - x).max())


@pytest.mark.parametrize("impl", ["memstrata", "np.packbits"])
def test_binarize(benchmark, impl):
    _need_data()
    x = big()
    benchmark.group = "binarize-100k-384d"
    out = np.empty((x.shape[0], 48), np.uint8)
    packbits = lambda: np.packbits(x > 0, axis=1)
    if impl == "memstrata":
        ours = lambda: binarize(x, out=out)
        run(benchmark, ours)
        ratio_info(benchmark, ours, {"np.packbits": packbits}, x.nbytes)
        assert np.array_equal(out, packbits())
    else:
        run(benchmark, packbits)


# --------------------------------------------------------------------- CSR


@pytest.mark.parametrize("impl", ["memstrata", "scipy"])
def test_dense_to_csr(benchmark, impl):
    """The 100k set with |x| <= 0.05 zeroed (about 40 % of entries kept)."""
    _need_data()
    x = big()
    benchmark.group = "dense-to-csr-100k-384d"
    sparse = pytest.importorskip("scipy.sparse", reason="scipy is not installed")
    dense = np.where(np.abs(x) > 0.05, x, np.float32(0))
    if impl == "memstrata":
        ours = lambda: to_csr(dense)
        m = run(benchmark, ours)
        ratio_info(benchmark, ours, {"scipy": lambda: sparse.csr_matrix(dense)}, dense.nbytes, rounds=5)
        benchmark.extra_info["density"] = round(m.data.size / dense.size, 3)
    else:
        run(benchmark, lambda: sparse.csr_matrix(dense), 3)


# ------------------------------------------------------ parallel threshold


@pytest.mark.parametrize("n_rows", [1000, 5000, 20000])
@pytest.mark.parametrize("kernel", ["serial", "parallel"])
def test_int8_encode_threads(benchmark, n_rows, kernel):
    """Where the parallel twin starts to pay (compare with PARALLEL_MIN_ELEMENTS = 2**21 = 5461 x 384)."""
    _need_data()
    import numba

    from memstrata.kernels import quantize as qmod

    x = big()[:n_rows]
    fitted = quantize_int8(x)
    _, inv = qmod._inverse_steps(fitted.scales)
    codes = np.empty(x.shape, np.int8)
    benchmark.group = f"int8-encode-threads-{n_rows}x384"
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    try:
        if kernel == "serial":
            run(benchmark, lambda: qmod._encode_dim_serial(x, fitted.offsets, inv, 255, codes), 20)
        else:
            run(benchmark, lambda: qmod._encode_dim_parallel(x, fitted.offsets, inv, 255, codes), 20)
        benchmark.extra_info["threads"] = numba.get_num_threads()
    finally:
        numba.set_num_threads(1)
