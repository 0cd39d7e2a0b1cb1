"""The compiled kernels of a write's near-duplicate check, looked up once.

:mod:`memstrata.kernels.nearscreen` loads Numba when a kernel first runs, and
``import memstrata.agent`` must not pay for that; an ``import`` statement in
the function that needs a kernel costs about 1.5 µs per call, a good part of
an agent's ``add``. :func:`nearscreen_kernels` imports the module on its first
call and afterwards hands back the module it keeps.
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["nearscreen_kernels"]

_loaded: list[ModuleType] = []  # the kernels module once imported (a list: no `global` rebinding needed)


def nearscreen_kernels() -> ModuleType:
    """:mod:`memstrata.kernels.nearscreen`, imported on the first call."""
    if _loaded:
        return _loaded[0]
    from memstrata.kernels import nearscreen

    _loaded.append(nearscreen)
    return nearscreen
