"""compare: the challenger against the champion on the same held-out recent reviews.

Both bundles are scored by the runtime (spoiler_common.model_runtime, the code
that serves, calibration included) on the retrain's test split, which holds
recent labelled reviews only (mixed-in older data never enters it). The paired
comparison is spoiler_common.comparison's, the one the monitor runs on the live
stream, so the offline report and the live panel mean the same thing.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from spoiler_common.bundle import BUNDLE_JSON, TOKENIZER_FILE, VARIANT_FILES
from spoiler_common.comparison import compare_paired
from spoiler_common.model_runtime import load_bundle
from training.data import read_split
from training.exceptions import DataError

log = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    """JSON without NaN (undefined metrics become null)."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def same_graph(a: Any, b: Any) -> bool:
    """Whether two loaded bundles serve byte-identical graphs with the same tokenization."""
    return bool(a.variant == b.variant and a.max_length == b.max_length
                and a.truncation == b.truncation
                and all(a.files.get(f) == b.files.get(f)
                        for f in (VARIANT_FILES[a.variant], TOKENIZER_FILE)))


def run(challenger: Path, champion: Path | None, prepared: Path, out: Path, *,
        split: str = "test", alpha: float = 0.05) -> dict[str, Any]:
    rows = read_split(prepared, split)
    if not rows:
        raise DataError(f"{prepared}/{split}.jsonl is empty: nothing to compare on")
    texts = [r["text"] for r in rows]
    labels = [bool(r["label"]) for r in rows]
    chall = load_bundle(challenger)
    raw = chall.predict_raw(texts).probabilities
    chall_scores = chall.calibration.apply(raw)
    report: dict[str, Any] = {
        "split": split, "n": len(rows), "spoiler_rate": sum(labels) / len(labels),
        "challenger": {"version": chall.version, "threshold": chall.threshold},
        "champion": None, "comparison": None,
    }
    if champion is not None and (champion / BUNDLE_JSON).is_file():
        champ = load_bundle(champion)
        if same_graph(champ, chall):  # the recalibrate recipe: one scoring serves both
            champ_scores = champ.calibration.apply(raw)
        else:
            champ_scores = champ.predict(texts).probabilities
        report["champion"] = {"version": champ.version, "threshold": champ.threshold}
        result = compare_paired(labels, champ_scores, chall_scores, champ.threshold,
                                chall.threshold, min_labels=1, alpha=alpha)
        report["comparison"] = result.to_dict() if result is not None else None
    else:
        log.warning("No champion at %s: the challenger is reported alone", champion)
    report = _clean(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    cmp = report["comparison"]
    if cmp:
        log.info("Compared on split=%s n=%d champion=%s challenger=%s accuracy %.3f -> %.3f "
                 "(diff %+.3f [%+.3f, %+.3f]) roc_auc %s -> %s verdict=%s mcnemar_p=%.3g",
                 split, len(rows), report["champion"]["version"], chall.version,
                 cmp["champion"]["accuracy"], cmp["challenger"]["accuracy"],
                 cmp["accuracy_diff"]["estimate"], cmp["accuracy_diff"]["low"],
                 cmp["accuracy_diff"]["high"], cmp["champion"]["roc_auc"],
                 cmp["challenger"]["roc_auc"], cmp["verdict"], cmp["mcnemar_p"])
    return report


def summary(report: dict[str, Any]) -> str:
    """A few lines for the terminal (what `retrain` prints at the end)."""
    cmp = report.get("comparison")
    head = f"challenger {report['challenger']['version']} on {report['n']} held-out recent reviews"
    if not cmp:
        return head + " (no champion to compare with)"

    def fmt(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = [head + f" vs champion {report['champion']['version']}:",
             f"  {'metric':<9} {'champion':>9} {'challenger':>10} {'diff [95% CI]':>26}"]
    for metric in ("accuracy", "f1", "roc_auc"):
        d = cmp[f"{metric}_diff"]
        ci = ("n/a" if d["estimate"] is None else
              f"{d['estimate']:+.3f} [{fmt(d['low'])}, {fmt(d['high'])}]")
        lines.append(f"  {metric:<9} {fmt(cmp['champion'][metric]):>9} "
                     f"{fmt(cmp['challenger'][metric]):>10} {ci:>26}")
    lines.append(f"  agreement {cmp['agreement']:.3f}, McNemar p={cmp['mcnemar_p']:.3g}: "
                 f"verdict {cmp['verdict']}")
    return "\n".join(lines)
