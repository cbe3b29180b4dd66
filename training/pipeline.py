"""The whole pipeline in one process, without DVC: for `ensure-bundle`, tests and crossval.

Calls the same stage functions as dvc.yaml, in the same order, inside a
work directory; the bundle lands in `out`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from training import baseline, evaluate, export, package, train
from training.data import write_jsonl
from training.params import Params
from training.prepare import prepare_records

log = logging.getLogger(__name__)


def build_bundle(rows: list[dict[str, Any]], work: Path, out: Path,
                 params: Params) -> dict[str, Any]:
    """prepare -> baseline -> train -> export (gated) -> evaluate (gated) -> package.

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
    timings["total"] = time.monotonic() - t0
    log.info("Bundle built path=%s version=%s seconds=%s", out, manifest.version,
             {k: round(v, 1) for k, v in timings.items()})
    return {"bundle": out, "manifest": manifest, "timings": timings}
