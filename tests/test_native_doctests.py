"""The Examples in the compiled modules' docstrings run (pytest collects only .py files).

Every compiled module must carry examples: a module with none would pass vacuously.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import memstrata._native

NATIVE_MODULES = sorted(m.name for m in pkgutil.iter_modules(memstrata._native.__path__))


@pytest.mark.parametrize("name", NATIVE_MODULES)
def test_native_doctests(name: str) -> None:
    module = importlib.import_module(f"memstrata._native.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"memstrata._native.{name}: no Examples in its docstrings"
