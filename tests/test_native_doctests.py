"""The Examples in the compiled modules' docstrings run (pytest collects only .py files)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import memstrata._native

NATIVE_MODULES = sorted(m.name for m in pkgutil.iter_modules(memstrata._native.__path__))
DOCUMENTED = {"hashing", "bloom", "eviction", "cache"}  # modules whose public API must carry examples


@pytest.mark.parametrize("name", NATIVE_MODULES)
def test_native_doctests(name: str) -> None:
    module = importlib.import_module(f"memstrata._native.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name in DOCUMENTED:
        assert result.attempted > 0
