"""The rooms' import rules (docs/architecture.md): the shared package is a library,
services build on it (and on `synth`), never on each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from spoiler_common.settings import REPO_ROOT

pytestmark = pytest.mark.unit

PROJECT = {"spoiler_common", "spoiler_tools", "synth", "producer", "stream_processor", "sink",
           "monitoring", "training", "devstack", "benchmarks", "tools", "tests"}
# package -> the project packages it may import (besides itself).
ALLOWED = {
    "spoiler_common": set(),
    "synth": {"spoiler_common"},
    "producer": {"spoiler_common", "synth"},
    "stream_processor": {"spoiler_common"},
    "sink": {"spoiler_common"},
    "monitoring": {"spoiler_common"},
    "training": {"spoiler_common", "synth"},
    "spoiler_tools": {"spoiler_common"},
}


def imported_roots(package: str) -> dict[str, set[str]]:
    """Top-level names each module of `package` imports (at any depth of the module)."""
    out: dict[str, set[str]] = {}
    for file in sorted((REPO_ROOT / package).rglob("*.py")):
        roots: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text("utf-8"), str(file))):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Attribute) and node.attr == "import_module"
                  and package == "spoiler_common"):
                roots.add("importlib.import_module")  # loading services by name
        out[str(Path(file).relative_to(REPO_ROOT))] = roots
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_rooms_below_it(package: str) -> None:
    wrong = {file: sorted((roots & PROJECT) - ALLOWED[package] - {package})
             for file, roots in imported_roots(package).items()}
    assert not {f: w for f, w in wrong.items() if w}, "see docs/architecture.md, 'Rooms'"


def test_shared_package_is_library_only() -> None:
    # No command-line front ends (they live in spoiler_tools or the owning service) and
    # no loading of other packages by name.
    for file, roots in imported_roots("spoiler_common").items():
        assert not roots & {"typer", "click", "argparse", "importlib.import_module"}, file
    assert not list((REPO_ROOT / "spoiler_common").glob("*_cli.py"))
    assert not (REPO_ROOT / "spoiler_common" / "__main__.py").exists()
