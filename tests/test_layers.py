"""The house rules, checked on the source: no package uses another's ``_``-names, no import runs upward.

Layers, lowest first (DESIGN.md): errors and the compiled modules; kernels; the
parts (codecs, dedup, tiers, vectors); store; the applications (traces, agent,
core, optimization); ops; cli. A module may import its own package's private
names and anything of a lower or equal layer's *public* names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import memstrata

ROOT = Path(memstrata.__file__).resolve().parent

LAYER = {
    "errors": 0, "types": 0, "_native": 0, "_varint": 0, "_keyarrays": 0, "_log": 0, "_locks": 0, "_tail": 0, "_closing": 0, "_growth": 0, "_heap": 0,
    "kernels": 1,
    "codecs": 2, "dedup": 2, "tiers": 2, "vectors": 2,
    "store": 3,
    "traces": 4, "agent": 4, "core": 4, "optimization": 4,
    "ops": 5,
    "cli": 6,
}
# top-level private modules that are shared plumbing of the whole package
SHARED_PRIVATE = {"_native", "_varint", "_keyarrays", "_log", "_locks", "_tail", "_closing", "_growth", "_heap"}


def _package_of(path: Path) -> str:
    rel = path.relative_to(ROOT)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else ""


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("memstrata"):
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("memstrata")]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            if node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("memstrata."):
                out.append((node.lineno, str(node.args[0].value), []))
    return out


# private names of the standard library that are public API in practice
STDLIB_PRIVATE = {
    "_replace", "_asdict", "_fields", "_make", "_exit", "_getframe", "_current_frames", "_value_", "_name_",
}


def _defined_private_names(files: list[Path]) -> set[str]:
    """Every ``_name`` a package defines: functions, classes, attributes and assignments."""
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {n for n in names if n.startswith("_")}


def attribute_crossings() -> list[str]:
    """``obj._name`` where ``_name`` is defined by no module of the accessing package."""
    by_package: dict[str, list[Path]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        by_package.setdefault(_package_of(path), []).append(path)
    found = []
    for files in by_package.values():
        own = _defined_private_names(files)
        for path in files:
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Attribute) or not node.attr.startswith("_") or node.attr.startswith("__"):
                    continue
                if node.attr in own or node.attr in STDLIB_PRIVATE:
                    continue
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: uses {node.attr}, a private name of another package")
    return found


def violations() -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        own = _package_of(path)
        if own == "" or own not in LAYER:
            continue
        for line, module, names in _imports(path):
            parts = module.split(".")[1:]
            if not parts:
                continue
            target = parts[0]
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            if target not in LAYER:
                found.append(f"{where}: imports {module}, which has no layer in tests/test_layers.py")
                continue
            if target == own:
                continue
            if LAYER[target] > LAYER[own]:
                found.append(f"{where}: {own} (layer {LAYER[own]}) imports upward from {module}")
            private_module = [p for p in parts if p.startswith("_") and p not in SHARED_PRIVATE]
            if private_module and not (target == "_native" and len(parts) > 1 and not parts[1].startswith("_")):
                found.append(f"{where}: imports the private module {module}")
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    found.append(f"{where}: imports the private name {name} from {module}")
    return found


def test_no_private_crossings_and_no_upward_imports() -> None:
    problems = violations() + attribute_crossings()
    assert not problems, "\n".join(problems)
