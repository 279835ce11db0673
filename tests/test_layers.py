"""Layers import one way: core <- stages <- orchestration <- Airflow glue <- DAGs <- tools.

Every import of every module is checked, including those inside functions, so an upward import
cannot hide from the check by being lazy. Stages never import one another: what two stages share
moves down into ``core``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

# The one statement of the allowed direction: a package may import itself and any package on a
# lower layer, nothing else of the project.
LAYERS: dict[str, int] = {
    "core": 0,
    "ingestion": 1,
    "expectations": 1,
    "transform": 1,
    "ml_tasks": 1,
    "activation": 1,
    "reporting": 1,
    "pipeline": 2,
    "dag_support": 3,
    "dags": 4,
    "tools": 5,
}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def layer_violations(root: Path, layers: dict[str, int] = LAYERS) -> list[str]:
    """Every import under ``root`` that runs sideways or upward, as ``file:line: a -> b``."""
    problems = []
    for package, level in layers.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imported_packages(path):
                if target == package or target not in layers:
                    continue
                if layers[target] >= level:
                    problems.append(f"{path.relative_to(root)}:{line}: {package} -> {target}")
    return problems


def test_every_package_is_on_a_layer():
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(LAYERS), sorted(packages - set(LAYERS))
    assert (ROOT / "dags").is_dir()


def test_no_module_imports_from_a_layer_above_or_beside_it():
    assert layer_violations(ROOT) == []


def test_the_check_catches_upward_sideways_and_lazy_imports(tmp_path):
    for package, body in {
        "core": "def f():\n    from pipeline import steps\n",  # upward, hidden in a function
        "ingestion": "import expectations.gate\n",  # sideways: stage to stage
        "pipeline": "from core.settings import get_settings\nimport ingestion\n",  # allowed
    }.items():
        (tmp_path / package).mkdir()
        (tmp_path / package / "mod.py").write_text(body)
    assert layer_violations(tmp_path) == [
        "core/mod.py:2: core -> pipeline",
        "ingestion/mod.py:1: ingestion -> expectations",
    ]
