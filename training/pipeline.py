"""The whole pipeline in one process, without DVC: for `ensure-bundle`, tests and crossval.

Calls the same stage functions as dvc.yaml, in the same order, inside a
work directory; the bundle lands in `out`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from training import baseline, evaluate, export, package, train
from training.data import write_jsonl
from training.params import Params
from training.prepare import prepare_records

log = logging.getLogger(__name__)


CHECKPOINT_SUFFIX = ".checkpoint"
CHECKPOINT_VERSION = "bundle_version"


def checkpoint_dir(bundle: Path) -> Path:
    """Where the build keeps the bundle's PyTorch checkpoint: beside it, `<bundle>.checkpoint`.

    Not inside the bundle: the worker image and the monitor never need torch weights.
    The naive PyTorch baseline of the benchmarks loads it (benchmarks/common.py).
    """
    real = bundle.resolve()
    return real.with_name(real.name + CHECKPOINT_SUFFIX)


def keep_checkpoint(train_dir: Path, bundle: Path, version: str) -> Path:
    """Copy train's save_pretrained directory beside the bundle, stamped with its version."""
    target = checkpoint_dir(bundle)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(train_dir / train.CHECKPOINT_MODEL, target)
    (target / CHECKPOINT_VERSION).write_text(version + "\n")
    return target


def build_bundle(rows: list[dict[str, Any]], work: Path, out: Path,
                 params: Params, *, keep_torch: bool = False) -> dict[str, Any]:
    """prepare -> baseline -> train -> export (gated) -> evaluate (gated) -> package.

    `keep_torch` also keeps the PyTorch checkpoint beside the bundle (`checkpoint_dir`).
    Returns the bundle's path, its manifest and the timings."""
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    prepared = work / "prepared"
    splits, stats = prepare_records(rows, params.prepare)
    for name, part in splits.items():
        write_jsonl(prepared / f"{name}.jsonl", part)
    (prepared / "prepare.json").write_text(json.dumps(stats.as_dict(), indent=2))
    timings["prepare"] = time.monotonic() - t0
    t = time.monotonic()
    baselines = baseline.run(prepared, work / "baseline", params.prepare.seed)
    timings["baseline"] = time.monotonic() - t
    t = time.monotonic()
    train.run(prepared, work / "train", params.train)
    timings["train"] = time.monotonic() - t
    t = time.monotonic()
    export.run(work / "train", prepared, work / "export", params.export, params.prepare.seed)
    timings["export"] = time.monotonic() - t
    t = time.monotonic()
    evaluate.run(work / "export", prepared, work / "evaluate", baselines=baselines,
                 max_auc_gap=params.evaluate.max_auc_gap, seed=params.prepare.seed)
    timings["evaluate"] = time.monotonic() - t
    manifest = package.run(work / "export", work / "evaluate" / "evaluation.json",
                           prepared / "prepare.json", out, name=params.package.name,
                           version=params.package.version)
    if keep_torch:
        keep_checkpoint(work / "train", out, manifest.version)
    timings["total"] = time.monotonic() - t0
    log.info("Bundle built path=%s version=%s seconds=%s", out, manifest.version,
             {k: round(v, 1) for k, v in timings.items()})
    return {"bundle": out, "manifest": manifest, "timings": timings}
