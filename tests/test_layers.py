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
