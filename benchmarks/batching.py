"""Length-aware batching vs one text per call: the served graph, 1 thread, in chunks of 16
texts (what the worker hands the model per Kafka batch), at 128, 256 and 512 tokens, on
real-sample and generated texts. Policies alternate A B C, B C A, ...; medians.

    PYTHONPATH=$PWD .venv/bin/python -m benchmarks.batching [--quick]
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any

from benchmarks.common import (
    alternated_medians,
    bench_texts,
    log,
    machine_note,
    served_bundle,
)
from spoiler_common.batching import ONE_PER_CALL, BatchPolicy, length_groups, padding_waste

LENGTHS = (128, 256, 512)
CHUNK = 16
POLICIES = {"one per call": ONE_PER_CALL,
            "groups <=8, waste <=10%": BatchPolicy(8, 0.10),
            "groups <=16, waste <=25%": BatchPolicy(16, 0.25)}


def _in_chunks(model: Any, texts: list[str]) -> None:
    """Score `texts` as the worker fetches them: CHUNK messages at a time."""
    for i in range(0, len(texts), CHUNK):
        model.predict_raw(texts[i:i + CHUNK])


def run(quick: bool = False) -> dict[str, Any]:
    from dataclasses import replace

    from spoiler_common.model_runtime import load_bundle

    bench = served_bundle()
    base = load_bundle(bench.path, threads=1, batching=ONE_PER_CALL)
    n, rounds = (32, 2) if quick else (96, 3)
    sources = {}
    for source in ("real", "generated"):
        texts, origin = bench_texts(n, source)
        sources[origin] = texts  # without ../shared both are generated: measured once
    log(f"bundle {base.name} {base.version} variant={base.variant}; {n} texts per source, "
        f"{rounds} rounds; {machine_note()}")
    rows: list[dict[str, Any]] = []
    for origin, texts in sources.items():
        for length in LENGTHS:
            models = {name: replace(base, batching=policy) for name, policy in POLICIES.items()}
            base.encoder.max_length = length  # shared encoder: all policies see this length
            lengths = [len(r) for r in base.encoder.ids(texts)]
            capped = sum(1 for x in lengths if x >= length) / len(lengths)
            base.predict_raw(texts[:4])
            times = alternated_medians(
                {name: functools.partial(_in_chunks, m, texts) for name, m in models.items()},
                rounds)
            one = len(texts) / times["one per call"][0]
            for name, policy in POLICIES.items():
                groups = [[i + j for j in g] for i in range(0, len(texts), CHUNK)
                          for g in length_groups(lengths[i:i + CHUNK], policy)]
                pad_share = sum(padding_waste([lengths[j] for j in g]) * len(g)
                                for g in groups) / len(texts)
                rate = len(texts) / times[name][0]
                rows.append({"texts": origin, "max_length": length, "policy": name,
                             "at_cap": round(capped, 2), "calls": len(groups),
                             "padding": round(pad_share, 3), "reviews_per_s": round(rate, 2),
                             "cpu_ms_per_review": round(
                                 times[name][1] / len(texts) * 1000, 1),
                             "vs_one_per_call": round(rate / one, 3)})
            log(f"{origin} {length} done")
    result = {"bundle": f"{base.name} {base.version}", "variant": base.variant, "n": n,
              "rounds": rounds, "machine": machine_note(), "rows": rows}
    print(table(result))
    return result


def table(r: dict[str, Any]) -> str:
    lines = [f"Batching ({r['bundle']} {r['variant']}, 1 thread, chunks of {CHUNK}, medians of "
             f"{r['rounds']} alternated rounds)",
             "| texts | max_length | share at cap | policy | calls | reviews/s | CPU-ms/review | "
             "vs one per call |", "|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| {row['texts']} | {row['max_length']} | {row['at_cap']} | "
                     f"{row['policy']} | {row['calls']} | {row['reviews_per_s']} | "
                     f"{row['cpu_ms_per_review']} | {row['vs_one_per_call']}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
