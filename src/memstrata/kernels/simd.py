"""Which SIMD instruction path the compiled scans use, chosen once from CPUID.

The scans in ``memstrata._native.simd`` are compiled for every path
(``portable``, ``avx2``, ``avxvnni``, ``avx512vnni``); all of them return the
same bits. By default the best path this CPU runs is used; the environment
variable ``MEMSTRATA_SIMD`` names another one (tests run every path the
machine supports that way). Naming a path the CPU lacks raises ``ValueError``
rather than falling back silently.
"""

from __future__ import annotations

import os

__all__ = ["ENV_VAR", "PATHS", "cpu_flags", "simd_path", "supported_paths"]

#: Environment variable that forces an instruction path.
ENV_VAR = "MEMSTRATA_SIMD"

#: Every path, worst to best.
PATHS = ("portable", "avx2", "avxvnni", "avx512vnni")

_chosen: dict[str, str] = {}


def supported_paths() -> tuple[str, ...]:
    """The paths this CPU (and this build) runs, worst to best; ``portable`` always."""
    from memstrata._native import simd

    return tuple(p for p in PATHS if simd.supported(p))


def simd_path() -> str:
    """The path the scans use now: ``MEMSTRATA_SIMD`` if set, else the best supported one."""
    forced = os.environ.get(ENV_VAR, "")
    cached = _chosen.get(forced)
    if cached is not None:
        return cached
    paths = supported_paths()
    if not forced:
        chosen = paths[-1]
    elif forced not in PATHS:
        raise ValueError(f"{ENV_VAR}: expected one of {', '.join(PATHS)}, got {forced!r}")
    elif forced not in paths:
        raise ValueError(f"{ENV_VAR}: this CPU does not run the {forced!r} path; it runs {', '.join(paths)}")
    else:
        chosen = forced
    _chosen[forced] = chosen
    return chosen


def cpu_flags() -> list[str]:
    """The SIMD-related CPU flags of ``/proc/cpuinfo`` (empty where that file does not exist), for reports."""
    wanted = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_vpopcntdq", "popcnt", "fma")
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in have]
    except OSError:
        pass
    return []
