"""retrain: a challenger from the labelled reviews in PostgreSQL, through retrain/dvc.yaml.

Checks first what would stop the pipeline half-way (too few labels, one class,
an empty window, no champion to compare with) and says so in one line; then
runs `dvc repro retrain/dvc.yaml` with the venv's tools on PATH, so the stages
run exactly as `dvc repro` runs them, and unchanged data re-runs nothing after
`collect`. Returns the comparison report.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from spoiler_common.bundle import BUNDLE_JSON
from training import collect
from training.exceptions import TrainingError
from training.params import Params
from training.settings import TrainingSettings

log = logging.getLogger(__name__)

PIPELINE = Path("retrain") / "dvc.yaml"
COMPARISON = Path("reports") / "retrain" / "comparison.json"


def dvc_command() -> list[str]:
    """The dvc of this interpreter's environment (a venv's bin), else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return [str(local)] if local.is_file() else ["dvc"]


def run(params_file: Path, params: Params, settings: TrainingSettings, *,
        force: bool = False) -> dict[str, Any]:
    manifest = collect.preflight(params.collect)
    if not (settings.bundle_path / BUNDLE_JSON).is_file():
        raise TrainingError(f"no champion at {settings.bundle_path} to compare the challenger "
                            "with: `make up` builds one (or `python -m training promote VERSION`)")
    log.info("Retraining on rows=%d spoilers=%d produced %s .. %s", manifest["rows"],
             manifest["class_counts"]["spoiler"], manifest["window"]["first_produced_at"],
             manifest["window"]["last_produced_at"])
    pipeline = params_file.parent / "dvc.yaml"
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    args = [*dvc_command(), "repro", *(["--force"] if force else []), str(pipeline)]
    result = subprocess.run(args, env=env)
    if result.returncode != 0:
        raise TrainingError(f"`{' '.join(args)}` failed (exit {result.returncode}): the "
                            "failing stage's error is printed above")
    report: dict[str, Any] = json.loads(COMPARISON.read_text())
    return report
