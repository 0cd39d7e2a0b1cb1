"""Build the Cython extension modules in ``native/`` as ``memstrata._native.*``.

Everything else about the package lives in ``pyproject.toml``.

Set ``MEMSTRATA_DEBUG_BOUNDS=1`` to rebuild with bounds, wraparound,
initialization and None checks switched on (slow; for debugging a crash).
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG_BOUNDS = os.environ.get("MEMSTRATA_DEBUG_BOUNDS", "") not in ("", "0")

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG_BOUNDS,
    "wraparound": DEBUG_BOUNDS,
    "initializedcheck": DEBUG_BOUNDS,
    "nonecheck": DEBUG_BOUNDS,
    "cdivision": True,
    "embedsignature": True,
}

extensions = [
    Extension(
        f"memstrata._native.{pyx.stem}",
        [str(pyx)],
        include_dirs=["native"],
        extra_compile_args=["-O3", "-fno-strict-aliasing"]
        # simd: float scores must round alike on every instruction path (no fused multiply-add)
        + (["-ffp-contract=off"] if pyx.stem == "simd" else [])
        + (["-O0", "-g"] if DEBUG_BOUNDS else []),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for pyx in sorted(Path("native").glob("*.pyx"))
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=COMPILER_DIRECTIVES,
        include_path=["native"],
        build_dir="build/cython",  # generated C stays out of native/, which holds only our sources
        force=DEBUG_BOUNDS,
    ),
)
