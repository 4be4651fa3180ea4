"""The audit app keeps its imports at the top of each module: a function-local import is how a cycle hides. (Its
layers are an import-linter contract in pyproject.toml; private names and module sizes, tests/test_layout.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

AUDIT = Path(__file__).resolve().parents[2] / "audit"


def _sources() -> list[Path]:
    return [path for path in sorted(AUDIT.rglob("*.py")) if "migrations" not in path.parts]


def test_no_function_local_imports_except_app_start_up():
    """A local import is how a cycle hides; AppConfig.ready is where Django wants start-up imports."""
    wrong = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if path.name == "apps.py" and function.name == "ready":
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    wrong.append(f"{path.relative_to(AUDIT.parent)}:{node.lineno} in {function.name}()")
    assert wrong == []
