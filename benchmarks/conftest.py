"""Shared benchmark fixtures: the shared real-data directory and peer imports."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import pytest
from _shared_data import shared_data  # noqa: F401 - the fixture, for every benchmark (tests/ is on pythonpath)


def require_peer(module: str, extra: str = "bench") -> ModuleType:
    """Import a peer library or skip its case, saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pytest.skip(f"peer {module!r} not installed ({exc}); pip install -e '.[{extra}]'")


@pytest.fixture
def peer() -> Callable[..., ModuleType]:
    """``peer("rbloom")`` imports a peer library or skips the case with the reason."""
    return require_peer
