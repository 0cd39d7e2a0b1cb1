"""Shared benchmark fixtures: the shared real-data directory and peer imports."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository; skips the benchmark when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


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
