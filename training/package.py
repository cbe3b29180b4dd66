"""package: assemble the self-describing bundle (docs/model.md, "Bundle").

model.onnx (int8), model.fp32.onnx, tokenizer.json and bundle.json: the
manifest (`spoiler_common.bundle.BundleManifest`) with name, version, base
model, max_length, truncation, the graph to serve, threshold, test and
validation metrics, the baselines' metrics, the calibration the runtime
applies, data hash, training spoiler rate, the monitor's reference histograms,
drift thresholds and quality floors, and every file's sha256.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from spoiler_common.bundle import (
    FORMAT_VERSION,
    BaselineMetrics,
    BundleManifest,
    bundle_files,
    checksums,
    now,
    read_manifest,
    write_manifest,
)
from spoiler_common.exceptions import ModelBundleError
from training.exceptions import TrainingError

log = logging.getLogger(__name__)


def seal(bundle_dir: Path, manifest: BundleManifest) -> BundleManifest:
    """Record the sha256 of each bundle file in `manifest` and write it as bundle.json."""
    try:
        sealed = manifest.updated(files=checksums(bundle_dir))
    except ModelBundleError as exc:
        raise TrainingError(f"cannot package {bundle_dir}: {exc}") from exc
    write_manifest(bundle_dir, sealed)
    return sealed


def new_manifest(*, name: str, version: str, base_model: str, max_length: int,
                 truncation: str, threshold: float, **blocks: Any) -> BundleManifest:
    """A manifest created now; `blocks` are the optional blocks (metrics, reference, ...)."""
    return BundleManifest.from_json({
        "format_version": FORMAT_VERSION, "name": name, "version": version,
        "created_at": now(), "base_model": base_model, "max_length": max_length,
        "truncation": truncation, "threshold": threshold, **blocks,
    }, "the new bundle.json")


def auto_version(data_hash: str) -> str:
    return f"{now():%Y%m%d-%H%M%S}-{data_hash[:8]}"


def run(export_dir: Path, evaluation: Path, prepare_info: Path, out_dir: Path, *,
        name: str, version: str) -> BundleManifest:
    """Copy the exported files and write the final bundle.json into a fresh out_dir."""
    exported = read_manifest(export_dir)
    ev = json.loads(evaluation.read_text())
    prep = json.loads(prepare_info.read_text())
    data_hash = prep["data_hash"]
    manifest = new_manifest(
        name=name, version=auto_version(data_hash) if version == "auto" else version,
        base_model=exported.base_model, max_length=exported.max_length,
        truncation=exported.truncation, threshold=ev["threshold"],
        default_variant=exported.default_variant,
        metrics=ev["bundle_metrics"],
        validation_metrics=ev["validation_metrics"],
        baselines={name: {k: b["test"][k] for k in BaselineMetrics.model_fields}
                   for name, b in ev.get("baselines", {}).items()},
        calibration={k: ev["calibration"][k]
                     for k in ("method", "params", "selected_by", "candidates")},
        confusion_matrix=ev["test"]["confusion_matrix"],
        parity=exported.parity,
        data_hash=data_hash,
        training_spoiler_rate=prep["spoiler_rates"]["train"],
        split_sizes=prep["sizes"],
        reference=ev["reference"],
        drift_thresholds=ev["drift_thresholds"],
        quality_floors=ev["quality_floors"],
    )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out_dir.parent))
    for file in bundle_files(export_dir):
        shutil.copy2(export_dir / file, staging / file)
    sealed = seal(staging, manifest)
    # Swap in whole: a reader never sees a half-written bundle.
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    log.info("Bundle packaged path=%s name=%s version=%s threshold=%.4f", out_dir, sealed.name,
             sealed.version, sealed.threshold)
    return sealed


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
