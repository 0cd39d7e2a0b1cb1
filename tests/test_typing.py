"""Public names are exported for type checkers, and mypy --strict accepts README usage and rejects known mistakes."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import memstrata

HERE = Path(__file__).resolve().parent
PACKAGE_INIT = Path(memstrata.__file__)


def test_every_lazy_name_is_in_all_and_in_the_type_checking_imports() -> None:
    tree = ast.parse(PACKAGE_INIT.read_text())
    typed: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    typed |= {alias.asname or alias.name for alias in stmt.names}
    lazy = set(memstrata._LAZY_ATTRS)
    assert lazy <= set(memstrata.__all__), lazy - set(memstrata.__all__)
    assert lazy <= typed, f"missing from the TYPE_CHECKING imports: {sorted(lazy - typed)}"
    assert memstrata.__all__ == sorted(memstrata.__all__)


def _mypy(path: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy").exists():
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", str(path)],
        capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_readme_usage_passes_mypy_strict() -> None:
    result = _mypy(HERE / "typing" / "readme_usage.py")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_known_mistakes_fail_mypy_strict_where_expected() -> None:
    path = HERE / "typing" / "known_mistakes.py"
    expected = {
        i: m.group(1) for i, line in enumerate(path.read_text().splitlines(), 1) if (m := re.search(r"# E: (\S+)", line))
    }
    result = _mypy(path)
    found: dict[int, set[str]] = {}
    for m in re.finditer(r"known_mistakes\.py:(\d+): error: .*\[([\w-]+)\]", result.stdout):
        found.setdefault(int(m.group(1)), set()).add(m.group(2))
    for line, code in expected.items():
        assert code in found.get(line, set()), f"line {line}: expected [{code}], mypy said {found.get(line)}\n{result.stdout}"
