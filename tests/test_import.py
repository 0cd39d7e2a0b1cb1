"""``import memstrata`` stays cheap: it loads no compiled kernels, Numba or codec libraries."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ["numba", "llvmlite", "scipy", "zstandard", "lz4", "blosc2", "msgspec", "faiss", "usearch", "sqlite3"]


def modules_after(statement: str) -> set[str]:
    script = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_import_loads_nothing_heavy() -> None:
    loaded = modules_after("import memstrata")
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
    assert not [m for m in loaded if m.startswith("memstrata._native.")]
    assert "numpy" not in loaded


def test_public_names_resolve_lazily() -> None:
    import memstrata

    for name in memstrata._LAZY_ATTRS:
        assert getattr(memstrata, name) is not None
    assert set(memstrata._LAZY_ATTRS) <= set(dir(memstrata))
    try:
        memstrata.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")


def test_first_use_loads_only_what_it_needs() -> None:
    loaded = modules_after("import memstrata; memstrata.BloomFilter(10)")
    assert "memstrata._native.bloom" in loaded
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
