"""The house's rules, read off the source: which side may import which, and how big a module gets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "modelvigil"
MAX_MODULE_LINES = 450


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _side(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else None


def _reaches(imports: set[str], side: str) -> list[str]:
    return sorted(m for m in imports if m == f"modelvigil.{side}" or m.startswith(f"modelvigil.{side}."))


def test_the_four_sides_exist():
    for side in ("service", "store", "client", "analysis"):
        assert (PACKAGE / side / "__init__.py").is_file(), side


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_of_the_core_imports_prefect_or_dask(path):
    roots = ("prefect", "prefect_dask", "dask", "distributed")
    assert not [m for m in _imports(path) if m.split(".")[0] in roots]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_side_imports_only_what_it_may(path):
    imports, side = _imports(path), _side(path)
    if side == "client":
        assert not _reaches(imports, "service") and not _reaches(imports, "store")
    if side == "store":
        for other in ("service", "client", "analysis"):
            assert not _reaches(imports, other), other
    if side == "service":
        assert not _reaches(imports, "client") and not _reaches(imports, "analysis")
    if side == "analysis" and path.name != "readers.py":
        assert not _reaches(imports, "store") and not _reaches(imports, "client")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_the_size_limit(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES


def test_create_app_is_a_short_assembly():
    tree = ast.parse((PACKAGE / "service" / "app.py").read_text())
    (create_app,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "create_app"]
    assert create_app.end_lineno - create_app.lineno + 1 < 60


def test_the_rules_catch_a_crossing(tmp_path):
    """The checks above would see an import that crosses sides (they are not vacuous)."""
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from modelvigil.store.schema import records\n    import prefect\n")
    imports = _imports(sneaky)
    assert _reaches(imports, "store") == ["modelvigil.store.schema", "modelvigil.store.schema.records"]
    assert "prefect" in imports
