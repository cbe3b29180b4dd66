"""Scale-out on this machine: 1 vs 2 worker processes (1 onnxruntime thread each) in one
consumer group, and 1 worker with 2 threads, each draining the same pre-filled reviews
(a fresh topic with the topic spec's partitions per run, served bundle).

The configurations alternate A B C, B C A, ... and the figures are medians over the
rounds: reviews/s, CPU-ms per review (all worker processes, psutil) and RSS per worker.
Target: 2 processes >= 1.7 x one. The machine is shared with other work, which takes
cores from any of the runs: read the rounds, not one number.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.scaleout [--quick]
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from benchmarks.common import alternate, bench_pairs, log, machine_note, median, served_bundle
from benchmarks.stream_processor import drain, reviews_of

CONFIGS = {"1 worker x 1 thread": (1, 1), "2 workers x 1 thread": (2, 1),
           "1 worker x 2 threads": (1, 2)}
TARGET = 1.7


def run(quick: bool = False) -> dict[str, Any]:
    n = 64 if quick else int(os.environ.get("SPOILER_BENCH_N", "300"))
    rounds = 1 if quick else 2
    bench = served_bundle()
    pairs, origin = bench_pairs(n)
    reviews = reviews_of(pairs)
    log(f"bundle at {bench.path}; {n} {origin} reviews per run, {rounds} rounds; "
        f"{machine_note()}")
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in CONFIGS}
    for name in alternate(list(CONFIGS), rounds):
        workers, threads = CONFIGS[name]
        result = drain(bench.path, reviews, workers=workers, threads=threads)
        log(f"{name}: {result['reviews_per_s']:.1f} reviews/s, "
            f"{result['cpu_ms_per_review']:.0f} CPU-ms/review")
        runs[name].append(result)
    rows: dict[str, dict[str, Any]] = {
        name: {"reviews_per_s": median([r["reviews_per_s"] for r in rs]),
               "cpu_ms_per_review": median([r["cpu_ms_per_review"] for r in rs]),
               "rss_mb_per_worker": median([r["rss_mb_per_worker"] for r in rs]),
               "rounds": [round(r["reviews_per_s"], 2) for r in rs]}
        for name, rs in runs.items()}
    one = rows["1 worker x 1 thread"]["reviews_per_s"]
    for row in rows.values():
        row["vs_one_worker"] = row["reviews_per_s"] / one
    result = {"n": n, "texts": origin, "rounds": rounds, "served": bench.served,
              "machine": machine_note(), "rows": rows,
              "target_met": rows["2 workers x 1 thread"]["vs_one_worker"] >= TARGET}
    print(table(result))
    return result


def table(r: dict[str, Any]) -> str:
    lines = [f"Scale-out ({r['n']} {r['texts']} reviews per run, medians of {r['rounds']} "
             f"alternated rounds; {r['machine']})",
             "| configuration | reviews/s | vs 1 worker | CPU-ms/review | RSS MB/worker | rounds |",
             "|---|---|---|---|---|---|"]
    for name, row in r["rows"].items():
        lines.append(f"| {name} | {row['reviews_per_s']:.1f} | {row['vs_one_worker']:.2f}x | "
                     f"{row['cpu_ms_per_review']:.0f} | {row['rss_mb_per_worker']:.0f} | "
                     f"{row['rounds']} |")
    lines.append(f"target: 2 workers >= {TARGET}x one: "
                 f"{'met' if r['target_met'] else 'NOT met'}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2, default=str))
