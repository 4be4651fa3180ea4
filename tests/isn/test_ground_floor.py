"""isn is the ground floor: no module of it imports an app, not even inside a function (the root URLs include the
apps' URL modules by name)."""

from __future__ import annotations

import ast
from pathlib import Path

import isn

APPS = ("agencies", "audit", "messaging")
ROOT = Path(isn.__file__).parent


def _imported_modules(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_module_of_isn_imports_an_app():
    offenders = []
    for path in sorted(ROOT.rglob("*.py")):
        for name in _imported_modules(ast.parse(path.read_text(), filename=str(path))):
            if name.split(".")[0] in APPS:
                offenders.append(f"{path.relative_to(ROOT.parent)}: {name}")
    assert offenders == []


def test_the_check_sees_a_local_import():
    tree = ast.parse("def f():\n    from agencies.selectors import membership_for\n")
    assert _imported_modules(tree) == ["agencies.selectors"]
