"""The audit app in layers: each module imports only lower ones, at the top of the file, and no private names."""

from __future__ import annotations

import ast
from pathlib import Path

AUDIT = Path(__file__).resolve().parents[2] / "audit"
# From the ground up; a module may import audit modules of lower layers only.
LAYERS = [
    {"models", "actions"},
    {"chain"},
    {"services", "selectors", "filters"},
    {"checkpoints", "exports", "flags", "signals"},
    {"verify", "archive"},
    {"tasks", "workspace", "permissions", "context_processors", "admin"},
    {"views", "api", "apps", "management"},
]
LAYER = {name: number for number, names in enumerate(LAYERS) for name in names}


def _module(path: Path) -> str:
    return path.relative_to(AUDIT).parts[0].removesuffix(".py")


def _audit_imports(tree: ast.Module) -> list[tuple[ast.ImportFrom | ast.Import, str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "audit":
            parts = node.module.split(".")
            if len(parts) > 1:
                found.append((node, parts[1], [alias.name for alias in node.names]))
            else:  # from audit import flags
                found.extend((node, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend(
                (node, alias.name.split(".")[1], []) for alias in node.names if alias.name.startswith("audit.")
            )
    return found


def _sources() -> list[Path]:
    return [path for path in sorted(AUDIT.rglob("*.py")) if "migrations" not in path.parts]


def test_every_module_has_a_layer():
    assert {_module(path) for path in _sources()} - {"__init__"} <= set(LAYER)


def test_imports_point_down_only():
    wrong = []
    for path in _sources():
        module = _module(path)
        if module == "__init__":
            continue
        for node, imported, _names in _audit_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if LAYER[imported] >= LAYER[module] and not (module == "management" and imported == "management"):
                wrong.append(f"{path.relative_to(AUDIT.parent)}:{node.lineno} imports audit.{imported}")
    assert wrong == []


def test_no_private_names_cross_modules():
    wrong = [
        f"{path.relative_to(AUDIT.parent)}:{node.lineno} imports {name} from audit.{imported}"
        for path in _sources()
        for node, imported, names in _audit_imports(ast.parse(path.read_text(encoding="utf-8")))
        for name in names
        if name.startswith("_")
    ]
    assert wrong == []


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


def test_modules_stay_readable_in_size():
    assert {path.name: n for path in _sources() if (n := len(path.read_text().splitlines())) > 800} == {}
