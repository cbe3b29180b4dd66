"""package: assemble the self-describing bundle (docs/architecture.md, "Model bundle").

model.onnx (int8, served by default), model.fp32.onnx, tokenizer.json and
bundle.json with name, version, created_at, base model, max_length,
truncation, threshold, label map, test and validation metrics, the baselines'
metrics, the calibration the runtime applies, data hash, training spoiler rate,
the monitor's reference histograms, drift thresholds and quality floors, and
every file's sha256 (docs/model.md, "bundle.json").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spoiler_common.model_runtime import (
    BUNDLE_JSON,
    FORMAT_VERSION,
    TOKENIZER_FILE,
    VARIANT_FILES,
    sha256_file,
)
from training.base_model import LABELS
from training.exceptions import TrainingError

log = logging.getLogger(__name__)

# Every bundle has these; further graph variants (VARIANT_FILES) are listed when present.
BUNDLE_FILES = (VARIANT_FILES["int8"], VARIANT_FILES["fp32"], TOKENIZER_FILE)


def bundle_files(bundle_dir: Path) -> list[str]:
    """The files a bundle directory carries: the required ones and each variant present."""
    extra = [f for v, f in VARIANT_FILES.items()
             if f not in BUNDLE_FILES and (bundle_dir / f).is_file()]
    return [*BUNDLE_FILES, *extra]
BASELINE_METRICS = ("roc_auc", "pr_auc", "f1_spoiler", "accuracy", "brier")


def write_bundle_json(bundle_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write bundle.json with format_version and the sha256 of each bundle file."""
    files = {}
    for name in bundle_files(bundle_dir):
        path = bundle_dir / name
        if not path.is_file():
            raise TrainingError(f"cannot package {bundle_dir}: {name} is missing; re-run export")
        files[name] = sha256_file(path)
    full = {"format_version": FORMAT_VERSION, **meta, "files": files}
    tmp = bundle_dir / f".{BUNDLE_JSON}.tmp"
    tmp.write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, bundle_dir / BUNDLE_JSON)
    return full


def base_metadata(*, name: str, version: str, base_model: str, max_length: int,
                  truncation: str, threshold: float) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "base_model": base_model,
        "max_length": max_length,
        "truncation": truncation,
        "threshold": threshold,
        "label_map": {str(k): v for k, v in LABELS.items()},
        "special_tokens": {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]"},
    }


def auto_version(data_hash: str) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{data_hash[:8]}"


def run(export_dir: Path, evaluation: Path, prepare_info: Path, out_dir: Path, *,
        name: str, version: str) -> dict[str, Any]:
    """Copy the exported files and write the final bundle.json into a fresh out_dir."""
    exported = json.loads((export_dir / BUNDLE_JSON).read_text())
    ev = json.loads(evaluation.read_text())
    prep = json.loads(prepare_info.read_text())
    data_hash = prep["data_hash"]
    meta = base_metadata(
        name=name, version=auto_version(data_hash) if version == "auto" else version,
        base_model=exported["base_model"], max_length=exported["max_length"],
        truncation=exported["truncation"], threshold=ev["threshold"],
    )
    meta.update({
        "default_variant": exported.get("default_variant", ev["variant"]),
        "metrics": ev["bundle_metrics"],
        "validation_metrics": ev["validation_metrics"],
        "baselines": {name: {k: b["test"][k] for k in BASELINE_METRICS}
                      for name, b in ev.get("baselines", {}).items()},
        "calibration": {k: ev["calibration"][k]
                        for k in ("method", "params", "selected_by", "candidates")},
        "confusion_matrix": ev["test"]["confusion_matrix"],
        "parity": exported.get("parity", {}),
        "data_hash": data_hash,
        "training_spoiler_rate": prep["spoiler_rates"]["train"],
        "split_sizes": prep["sizes"],
        "reference": ev["reference"],
        "drift_thresholds": ev["drift_thresholds"],
        "quality_floors": ev["quality_floors"],
    })
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out_dir.parent))
    for file in bundle_files(export_dir):
        shutil.copy2(export_dir / file, staging / file)
    full = write_bundle_json(staging, meta)
    # Swap in whole: a reader never sees a half-written bundle.
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    log.info("Bundle packaged path=%s name=%s version=%s threshold=%.4f", out_dir, full["name"],
             full["version"], full["threshold"])
    return full


def install(bundle: Path, target: Path) -> None:
    """Copy a bundle to `target` (e.g. models/serving) so the swap is atomic per directory."""
    from spoiler_common.model_runtime import load_bundle

    load_bundle(bundle)  # refuse to install something that does not load
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".serving-", dir=target.parent))
    for item in bundle.iterdir():
        if item.is_file():
            shutil.copy2(item, staging / item.name)
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
