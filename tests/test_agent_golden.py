"""Golden agent memory directories: every record format ever written still opens to the same records.

The directories and their ``.expected.json`` answers are written once per
format by ``tests/golden/make_agent_golden.py`` and never regenerated.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from memstrata.agent import AgentMemory

GOLDEN = Path(__file__).resolve().parent / "golden"
FORMATS = sorted(p.name for p in GOLDEN.glob("agent-v*") if p.is_dir())


def _maker():
    spec = importlib.util.spec_from_file_location("make_agent_golden", GOLDEN / "make_agent_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", FORMATS)
def test_golden_directory_opens_to_its_records(name: str, tmp_path: Path) -> None:
    expected = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    shutil.copytree(GOLDEN / name, tmp_path / name)  # opening takes the directory's lock: never touch the original
    with AgentMemory(tmp_path / name) as memory:
        assert memory.verify()["ok"]
        got = json.loads(json.dumps(_maker().snapshot(memory)))
        assert got == expected
    with AgentMemory(tmp_path / name) as memory:  # and once more after this version wrote its own meta record
        assert json.loads(json.dumps(_maker().snapshot(memory))) == expected


def test_every_readable_format_has_a_golden_directory() -> None:
    from memstrata.agent.state import FORMAT

    assert f"agent-v{FORMAT}" in FORMATS
