"""How the Numba kernels are built: lazily, cached on disk, cached and nogil by declaration."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

KERNELS_DIR = Path(__file__).resolve().parents[1] / "src" / "memstrata" / "kernels"


def _run(code: str, env_extra: dict[str, str]) -> str:
    env = dict(os.environ, **env_extra)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_memstrata_loads_no_numba_and_kernels_compile_nothing_at_import():
    out = _run(
        """
        import json, sys
        import memstrata
        names = sorted(memstrata.__all__)
        memstrata.VectorMemory(8)  # constructing a memory does not need the kernels yet
        before = "numba" in sys.modules
        import memstrata.kernels as k
        from memstrata.kernels import binary, csr, quantize, topk
        compiled = [
            f"{m.__name__}.{name}"
            for m in (binary, csr, quantize, topk)
            for name, obj in vars(m).items()
            if hasattr(obj, "signatures") and obj.signatures
        ]
        print(json.dumps({"numba_after_import": before, "compiled": compiled}))
        """,
        {},
    )
    report = json.loads(out)
    assert report == {"numba_after_import": False, "compiled": []}


CACHE_PROBE = """
import json
import numpy as np
from memstrata import kernels as k
from memstrata.kernels import binary, csr, quantize, topk

x = np.random.default_rng(0).standard_normal((64, 24)).astype(np.float32)
q = k.quantize_int8(x)
k.dequantize_int8(q.codes, q.scales, q.offsets)
q4 = k.quantize_int4(x, "vector")
k.dequantize_int4(q4.codes, q4.scales, q4.offsets, "vector")
bits = k.binarize(x)
k.hamming_topk(bits[:3], bits, 5)
k.int8_topk(x[:3], q.codes, q.scales, q.offsets, 5)
k.rescore_topk(x[:3], x, np.tile(np.arange(64), (3, 1)), 5)
k.from_csr(k.to_csr(x, 0.5))
# a parallel twin is cached under its own name, next to its serial build
codes = np.empty_like(q.codes)
quantize._encode_dim_parallel(x, q.offsets, np.ones(24, np.float32), 255, codes)
stats = {}
for m in (binary, csr, quantize, topk):
    for name, obj in vars(m).items():
        if hasattr(obj, "stats") and obj.signatures:
            stats[f"{m.__name__}.{name}"] = [sum(obj.stats.cache_hits.values()), sum(obj.stats.cache_misses.values())]
print(json.dumps(stats))
"""


@pytest.mark.slow
def test_second_process_loads_kernels_from_cache(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "NUMBA_NUM_THREADS": "1"}
    first = json.loads(_run(CACHE_PROBE, env))
    second = json.loads(_run(CACHE_PROBE, env))
    # helpers called only from other kernels (heap, selection, row min/max) are linked
    # into their callers' cached code, so the second process does not even load them;
    # every kernel a wrapper calls (a *_serial / *_parallel twin) is loaded from disk
    assert first and set(second) <= set(first)
    assert {name for name in first if name.endswith(("_serial", "_parallel"))} <= set(second)
    assert all(misses > 0 for _, misses in first.values())  # compiled (and saved) the first time
    # the second process found every kernel on disk: no compilation at all
    assert {name: misses for name, (_, misses) in second.items() if misses} == {}
    assert all(hits > 0 for hits, _ in second.values())
    assert {"memstrata.kernels.quantize._encode_dim_serial", "memstrata.kernels.quantize._encode_dim_parallel"} <= set(second)


def _jit_calls(tree: ast.AST):
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else node
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("njit", "jit", "vectorize", "guvectorize", "generated_jit"):
            yield node


def test_every_kernel_is_declared_cached_and_nogil_without_eager_signatures():
    # every njit call written in a kernel module, serial_and_parallel's two included
    checked = 0
    for path in sorted(KERNELS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _jit_calls(tree):
            where = f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Call):
                keywords = {kw.arg: kw.value for kw in node.keywords}
                for flag in ("cache", "nogil"):
                    value = keywords.get(flag)
                    assert isinstance(value, ast.Constant) and value.value is True, f"{where}: {flag}=True missing"
                assert not node.args, f"{where}: eager signature given; kernels compile lazily"
                checked += 1
            elif isinstance(getattr(node, "ctx", None), ast.Load):
                # a bare decorator (@njit) would have neither flag
                parents = [d for d in ast.walk(tree) if isinstance(d, ast.FunctionDef) and node in d.decorator_list]
                assert not parents, f"{where}: bare @njit; use njit(cache=True, nogil=True)"
    assert checked >= 10  # the scan found the declarations; each compiled kernel is checked below


KERNEL_PROBE = """
import importlib, json, pkgutil
import memstrata.kernels as k
from numba.core.dispatcher import Dispatcher

found = {}
for info in pkgutil.iter_modules(k.__path__):
    module = importlib.import_module(f"memstrata.kernels.{info.name}")
    for name, obj in vars(module).items():
        if isinstance(obj, Dispatcher) and obj.py_func.__module__ == module.__name__:
            found[f"{info.name}.{name}"] = {
                "nogil": obj.targetoptions.get("nogil"),
                "parallel": obj.targetoptions.get("parallel", False),
                "cache": type(obj._cache).__name__,
                "compiled": len(obj.signatures),
            }
print(json.dumps(found))
"""


def test_every_compiled_kernel_is_cached_nogil_and_lazy():
    """Each Numba kernel object of every kernel module, however declared (an njit call
    or ``serial_and_parallel``): cached on disk, nogil, nothing compiled at import, and
    each ``*_serial``/``*_parallel`` twin built the way its name says."""
    found = json.loads(_run(KERNEL_PROBE, {}))
    assert {name.split(".")[0] for name in found} == {
        "_ranges", "binary", "candidates", "csr", "dequantize", "heap", "quantize"
    }
    assert len(found) >= 40
    for name, kernel in found.items():
        assert kernel["nogil"] is True, f"{name}: nogil=True missing"
        assert kernel["cache"] == "FunctionCache", f"{name}: cache=True missing"
        assert kernel["compiled"] == 0, f"{name}: compiled at import (eager signature)"
        if name.endswith("_parallel"):
            assert kernel["parallel"] is True, f"{name}: not built with parallel=True"
        elif name.endswith("_serial"):
            assert kernel["parallel"] is False, f"{name}: its serial twin is built with parallel=True"
