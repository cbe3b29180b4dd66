"""Graph variants and session options, raw model loop, one thread, on the served bundle.

For each max_length (128, 256, 512) the bundle's graph variants (fp32, int8,
fp32-fused, int8-selective: whichever it carries) and two session-option
changes of the served graph (graph optimization level "basic", memory arena off)
score the same texts one text per call, alternated A B C D, B C D A, ...; the
figures are medians over the rounds: wall reviews/s, CPU-ms per review and reviews
per CPU-second (the per-core figure: on a shared machine wall time stretches with
other work, CPU time much less; "vs served" compares it), and the RSS of a fresh
process serving the variant.
The baseline is the graph the bundle serves today (`default_variant`), in the
same run; each variant's parity (from bundle.json, measured by export on all
validation texts at the tuned threshold) is printed beside its speed.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.graphs [--quick]
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any

from benchmarks.common import (
    alternated_medians,
    bench_texts,
    log,
    machine_note,
    served_bundle,
)

LENGTHS = (128, 256, 512)
TARGET = 1.3  # x today's shipped graph at the same max_length (stretch 1.5)


def _candidates(path: Any, meta: dict[str, Any]) -> dict[str, Any]:
    from spoiler_common.batching import ONE_PER_CALL
    from spoiler_common.model_runtime import VARIANT_FILES, OnnxClassifier, load_bundle

    served = meta.get("default_variant", "int8")
    out: dict[str, Any] = {}
    for variant, file in VARIANT_FILES.items():
        if file in meta["files"]:
            out[variant] = load_bundle(path, variant=variant, threads=1,  # type: ignore[arg-type]
                                       batching=ONE_PER_CALL, verify=False)
    base = out[served]
    from dataclasses import replace

    out[f"{served} opt=basic"] = replace(base, classifier=OnnxClassifier(
        path / VARIANT_FILES[served], threads=1, optimization="basic"))
    out[f"{served} arena=off"] = replace(base, classifier=OnnxClassifier(
        path / VARIANT_FILES[served], threads=1, arena=False))
    return out


_RSS_PROBE = """
import json, sys, psutil
from spoiler_common.model_runtime import load_bundle
b = load_bundle(sys.argv[1], variant=sys.argv[2], threads=1)
b.encoder.max_length = int(sys.argv[3])
b.predict(json.loads(sys.argv[4]))
print(psutil.Process().memory_info().rss)
"""


def rss_mb(path: Any, variant: str, length: int, texts: list[str]) -> float:
    """Resident memory of a fresh process that loaded `variant` and scored a few texts."""
    import subprocess

    from spoiler_common.settings import REPO_ROOT

    out = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path), variant, str(length),
                          json.dumps(texts)], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[-1]) / 2**20


def run(quick: bool = False) -> dict[str, Any]:
    bench = served_bundle()
    meta = json.loads((bench.path / "bundle.json").read_text())
    served = meta.get("default_variant", "int8")
    n = 12 if quick else int(os.environ.get("SPOILER_BENCH_N", "48"))
    rounds = 2 if quick else 3
    texts, origin = bench_texts(n)
    log(f"bundle {meta['name']} {meta['version']} (serves {served}) at {bench.path}; "
        f"{n} {origin} texts, {rounds} rounds; {machine_note()}")
    models = _candidates(bench.path, meta)
    parity = meta.get("parity", {}).get("variants", {})
    rows: list[dict[str, Any]] = []
    for length in LENGTHS:
        for m in models.values():
            m.encoder.max_length = length
            m.predict_raw(texts[:2])  # warm-up at this length
        times = alternated_medians(
            {name: functools.partial(m.predict_raw, texts) for name, m in models.items()},
            rounds)
        # Per core = per CPU-second of this process: other work on a shared machine
        # stretches wall time far more than it changes CPU time.
        base = len(texts) / times[served][1]
        for name in models:
            wall, cpu = times[name]
            rate = len(texts) / wall
            variant = name.split(" ")[0]
            rows.append({"max_length": length, "graph": name, "reviews_per_s": round(rate, 2),
                         "cpu_ms_per_review": round(cpu / len(texts) * 1000, 1),
                         "vs_served": round(len(texts) / cpu / base, 3),
                         "label_agreement": parity.get(variant, {}).get("label_agreement"),
                         "max_abs_diff": parity.get(variant, {}).get("max_abs_diff"),
                         "passed": parity.get(variant, {}).get("passed")})
        for row in rows:
            if row["max_length"] == length and " " not in row["graph"]:
                row["rss_mb"] = round(rss_mb(bench.path, row["graph"], length, texts[:8]))
        log(f"max_length {length} done")
    result = {"bundle": f"{meta['name']} {meta['version']}", "served_variant": served,
              "texts": origin, "n": n, "rounds": rounds, "threads": 1, "served": bench.served,
              "machine": machine_note(), "rows": rows,
              "target": f">= {TARGET}x the served graph at the same max_length, parity passed"}
    print(table(result))
    return result


def table(r: dict[str, Any]) -> str:
    lines = [f"Graph variants ({r['bundle']}, serves {r['served_variant']}; {r['n']} {r['texts']} "
             f"texts, 1 thread, medians of {r['rounds']} alternated rounds)",
             "| max_length | graph | reviews/s (wall) | CPU-ms/review | reviews per CPU-s | "
             "vs served (per CPU-s) | "
             "RSS MB | label agreement | max abs dp | parity |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        agree = "" if row["label_agreement"] is None else f"{row['label_agreement']:.4f}"
        dp = "" if row["max_abs_diff"] is None else f"{row['max_abs_diff']:.4f}"
        ok = {True: "pass", False: "fail", None: ""}[row["passed"]]
        per_cpu = round(1000 / row["cpu_ms_per_review"], 1) if row["cpu_ms_per_review"] else ""
        lines.append(f"| {row['max_length']} | {row['graph']} | {row['reviews_per_s']} | "
                     f"{row['cpu_ms_per_review']} | {per_cpu} | {row['vs_served']}x | "
                     f"{row.get('rss_mb', '')} | {agree} | {dp} | {ok} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
