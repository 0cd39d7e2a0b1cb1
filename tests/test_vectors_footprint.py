"""Footprint of the vector memory: what the search path imports, and where Numba caches when site-packages is read-only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def _run(code: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_float32_memory_imports_no_numba_and_int8_needs_it_only_on_first_use() -> None:
    out = _run(
        """
        import sys
        import numpy as np
        from memstrata import VectorMemory
        from memstrata.vectors.filters import compile_filter
        x = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
        m = VectorMemory(16, "float32")
        m.add(x, metadata=[{"k": i % 3} for i in range(200)])
        m.search(x[:2], 5, filter={"k": 1})
        print("numba" in sys.modules, "scipy" in sys.modules)
        VectorMemory(16, "int8")
        print("numba" in sys.modules)
        """
    )
    assert out.split() == ["False", "False", "False"]


def test_numba_cache_falls_back_to_the_user_cache_dir_when_the_package_dir_is_read_only(tmp_path: Path) -> None:
    """As a non-root user with a read-only site-packages sees it: the in-tree cache directory is not writable."""
    out = _run(
        """
        import numba.core.caching as caching
        def read_only(self):
            raise PermissionError(13, "Permission denied", self.get_cache_path())
        in_tree = getattr(caching, "InTreeCacheLocator", None) or getattr(caching, "_InTreeCacheLocator")
        in_tree.ensure_cache_path = read_only
        import numpy as np
        from memstrata import VectorMemory
        m = VectorMemory(16, "int8")
        m.add(np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32))
        print(m.search(np.ones(16, np.float32), 3)[1].shape)
        """,
        env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "NUMBA_CACHE_DIR": ""},
    )
    assert out.strip() == "(1, 3)"
    cached = [p.name for p in (tmp_path / "cache" / "numba").rglob("*.nbi")]
    # the encoder's kernels were cached in the user directory (the int8 scan itself is compiled C, not Numba)
    assert any("quantize" in name for name in cached), cached
