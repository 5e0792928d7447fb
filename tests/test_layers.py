"""Imports only go down (ARCHITECTURE.md): runners → pipelines → extractors, schemas. Every import counts, also one
inside a function: a pipeline that imports the runners at run time still depends on them."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "pipelines": ("mmfeat.runners",),
    "extractors": ("mmfeat.runners", "mmfeat.pipelines", "mmfeat.schemas"),
    "schemas": ("mmfeat.runners", "mmfeat.pipelines", "mmfeat.extractors"),
}


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(package):
    upward = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in imported_modules(path)
        if module.startswith(FORBIDDEN[package])
    ]
    assert not upward, upward


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["mmfeat", *parts])


def test_no_import_circle_between_modules():
    """Every import of an mmfeat module by another (also inside functions) forms no circle."""
    paths = [p for package in ("schemas", "extractors", "pipelines", "runners") for p in sorted((ROOT / package).rglob("*.py"))]
    names = {module_name(p) for p in paths}
    edges = {
        module_name(p): {m for m in imported_modules(p) if m in names and m != module_name(p)} for p in paths
    }
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, node])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            circle = visit(start, [])
            assert circle is None, " -> ".join(circle)


def test_the_import_linter_contracts_hold(tmp_path):
    """pyproject.toml's import-linter contracts, checked on a copy laid out as the installed package (the
    checkout maps mmfeat.pipelines to pipelines/, …, which import-linter cannot follow)."""
    import shutil
    import subprocess
    import sys

    package = tmp_path / "mmfeat"
    package.mkdir()
    shutil.copy(ROOT / "mmfeat" / "__init__.py", package)
    for name in ("schemas", "extractors", "pipelines", "runners"):
        shutil.copytree(ROOT / name, package / name, ignore=shutil.ignore_patterns("__pycache__"))
    command = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(ROOT / "pyproject.toml"), "--no-cache"]
    run = subprocess.run(command, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": ""}, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout
