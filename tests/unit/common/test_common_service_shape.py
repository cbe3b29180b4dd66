"""Every service has the same shape (docs/architecture.md, "Service shape").

A Typer `app` and a `main()` in `<service>/cli.py`, a console script pointing at that
`main`, a `__main__.py` that only delegates to it, one `build_<service>` bootstrap, and
CLI overrides refused like the environment's values: exit 2 with one `error:` line.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import tomllib

import pytest
import typer
from typer.testing import CliRunner

from spoiler_common.settings import REPO_ROOT

pytestmark = pytest.mark.unit

# package -> its console script
SERVICES = {
    "producer": "spoiler-producer",
    "stream_processor": "spoiler-worker",
    "sink": "spoiler-sink",
    "monitoring": "spoiler-monitor",
    "training": "spoiler-train",
    "devstack": "spoiler-stack",
}
# package -> (module, bootstrap) of the long-running services
BOOTSTRAPS = {
    "producer": ("producer.service", "build_producer"),
    "stream_processor": ("stream_processor.app", "build_worker"),
    "sink": ("sink.service", "build_sink"),
    "monitoring": ("monitoring.service", "build_monitor"),
}


def _scripts() -> dict[str, str]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    return dict(project["scripts"])


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_front_door_is_cli_main_with_a_console_script(package: str) -> None:
    assert _scripts()[SERVICES[package]] == f"{package}.cli:main"
    cli = importlib.import_module(f"{package}.cli")
    assert isinstance(cli.app, typer.Typer)
    assert callable(cli.main)


@pytest.mark.parametrize("package", sorted(SERVICES))
def test_dunder_main_only_delegates(package: str) -> None:
    tree = ast.parse((REPO_ROOT / package / "__main__.py").read_text("utf-8"))
    body = [node for node in tree.body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    assert [ast.unparse(node) for node in body] == [f"from {package}.cli import main", "main()"]


@pytest.mark.parametrize("package", sorted(BOOTSTRAPS))
def test_one_bootstrap_named_for_the_service(package: str) -> None:
    module_name, name = BOOTSTRAPS[package]
    bootstrap = getattr(importlib.import_module(module_name), name)
    # Settings are optional: from the environment unless given (tests pass their own).
    assert inspect.signature(bootstrap).parameters["settings"].default is None


@pytest.mark.parametrize(("package", "args", "env", "variable"), [
    # The producer's only settings option is range-checked by click already (also exit 2).
    ("producer", ["stream", "--n", "1"], {"SPOILER_PRODUCER_METRICS_PORT": "70000"},
     "SPOILER_PRODUCER_METRICS_PORT"),
    ("monitoring", ["run", "--port", "70000"], {}, "SPOILER_MONITOR_METRICS_PORT"),
    ("monitoring", ["once"], {"SPOILER_MONITOR_MAX_ROWS": "0"}, "SPOILER_MONITOR_MAX_ROWS"),
    ("sink", ["run", "--batch-size", "0"], {}, "SPOILER_SINK_BATCH_SIZE"),
    ("devstack", ["status"], {"SPOILER_STACK_KAFKA_PORT": "x"}, "SPOILER_STACK_KAFKA_PORT"),
])
def test_an_invalid_setting_is_refused_with_one_line(
        package: str, args: list[str], env: dict[str, str], variable: str) -> None:
    cli = importlib.import_module(f"{package}.cli")
    result = CliRunner().invoke(cli.app, args, env=env)
    assert result.exit_code == 2, result.output
    assert "error: invalid setting" in result.output and variable in result.output
    assert "Traceback" not in result.output
