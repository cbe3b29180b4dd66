"""Shadow scoring benchmark: the champion's throughput with the challenger on vs off.

One run, the same reviews, the same served bundle, alternating:
1. off: the reviews topic pre-filled with N reviews, one worker (champion only) drains
   it; champion reviews/s from its predictions' timestamps;
2. on: the same with SPOILER_WORKER_CHALLENGER_PATH set (every review scored in shadow);
3. the challenger's own inference time per review: its bundle alone on the same texts
   (the raw loader loop, batches of 16), and, for reference, its time inside the worker
   (`spoiler_worker_challenger_inference_seconds`, run beside the champion).
Target: the champion's time per review grows by no more than the challenger's own
inference time per review (1/on - 1/off <= challenger alone s/review). With a core to
spare it grows far less: the challenger runs in its own inference thread.

The challenger is the served bundle again under another version (SPOILER_BENCH_CHALLENGER
picks another): as costly as the champion, the hardest case for the target.
Run: `.venv/bin/python -m benchmarks.shadow [--quick]` (or `make bench`).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import REAL_SAMPLE, log
from benchmarks.common import served_bundle as served
from benchmarks.stream_processor import Bench, ceiling, drain_rate
from spoiler_common.bundle import read_manifest, write_manifest
from spoiler_common.contracts import ReviewPublished


def served_bundle() -> Path:
    """The served bundle (SPOILER_BENCH_BUNDLE overrides), else the tiny one: benchmarks.common."""
    return served().path


def challenger_of(bundle: Path) -> Path:
    """SPOILER_BENCH_CHALLENGER, else the same model files under another version."""
    if os.environ.get("SPOILER_BENCH_CHALLENGER"):
        return Path(os.environ["SPOILER_BENCH_CHALLENGER"])
    out = Path(tempfile.mkdtemp(prefix="bench-challenger-"))
    for item in bundle.resolve().iterdir():
        if item.name != "bundle.json":
            (out / item.name).symlink_to(item)
    manifest = read_manifest(bundle)
    write_manifest(out, manifest.updated(version=f"{manifest.version}-shadow"))
    return out


def reviews(n: int) -> list[ReviewPublished]:
    """The real sample when it is there (cycled), else generated reviews."""
    if REAL_SAMPLE.exists():
        with REAL_SAMPLE.open(encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
    else:
        from training.tiny import generated_reviews

        rows = generated_reviews(n, 7)
    now = datetime.now(UTC)
    return [ReviewPublished(
        review_id=f"s{i}", produced_at=now, review_date="1 May 2020", movie_id="tt1",
        user_id="u1", review_summary=rows[i % len(rows)].get("review_summary") or "",
        review_text=f"{rows[i % len(rows)]['review_text']} ({i // len(rows)})")
        for i in range(n)]


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Extra SPOILER_* variables for the worker Bench starts (it inherits os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def metric_sum(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    found = re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return sum(float(v) for v in found)


def drain(bundle: Path, batch: list[ReviewPublished], challenger: Path | None) -> dict[str, Any]:
    """One worker drains `batch` from a pre-filled topic; champion reviews/s and model times."""
    bench = Bench(bundle)
    extra = {"SPOILER_WORKER_CHALLENGER_PATH": str(challenger)} if challenger else {}
    try:
        bench.send(batch)
        with environment(**extra):
            bench.start_worker()
        bench.wait_ready()
        preds = bench.collect(len(batch), timeout=1200)
        out: dict[str, Any] = {
            "reviews_per_s": drain_rate(preds),
            "champion_inference_s": metric_sum(bench.ports[0],
                                               "spoiler_worker_inference_seconds_sum"),
        }
        if challenger is not None:
            out["challenger_inference_s"] = metric_sum(
                bench.ports[0], "spoiler_worker_challenger_inference_seconds_sum")
            out["challenger_predictions"] = metric_sum(
                bench.ports[0], "spoiler_worker_challenger_predictions_total")
        return out
    finally:
        bench.close()


def run(quick: bool = False) -> dict[str, Any]:
    from spoiler_common.bundle import read_manifest

    n = 200 if quick else 600
    rounds = 1 if quick else 2
    bundle = served_bundle()
    challenger = challenger_of(bundle)
    meta = read_manifest(bundle)
    log(f"champion {meta.name} {meta.version} (max_length {meta.max_length}) at "
        f"{bundle}; challenger at {challenger}")
    batch = reviews(n)
    off: list[dict[str, Any]] = []
    on: list[dict[str, Any]] = []
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}: challenger off...")
        off.append(drain(bundle, batch, None))
        log(f"round {r + 1}/{rounds}: challenger on...")
        on.append(drain(bundle, batch, challenger))
    from spoiler_common.model_runtime import model_text

    log("the challenger alone: raw loader loop on the same texts...")
    alone = ceiling(challenger, [model_text(r.review_summary, r.review_text) for r in batch])
    rate_off = statistics.median(x["reviews_per_s"] for x in off)
    rate_on = statistics.median(x["reviews_per_s"] for x in on)
    challenger_s = 1 / alone["reviews_per_s"]
    in_worker_s = statistics.median(x["challenger_inference_s"] / x["challenger_predictions"]
                                    for x in on)
    extra_s = 1 / rate_on - 1 / rate_off
    results = {
        "n": n, "rounds": rounds, "bundle": f"{meta.name} {meta.version}",
        "champion_reviews_per_s_off": rate_off, "champion_reviews_per_s_on": rate_on,
        "extra_s_per_review": extra_s, "challenger_alone_s_per_review": challenger_s,
        "challenger_in_worker_s_per_review": in_worker_s,
        "runs": {"off": off, "on": on, "challenger_alone": alone},
        "targets_met": {"extra<=challenger_inference": extra_s <= challenger_s},
    }
    print(f"   {'what':46} {'value':>12}")
    print(f"   {'champion reviews/s, challenger off (baseline)':46} {rate_off:12.2f}")
    print(f"   {'champion reviews/s, challenger on':46} {rate_on:12.2f}")
    print(f"   {'extra champion time per review':46} {extra_s * 1000:10.1f}ms")
    print(f"   {'challenger inference per review, alone':46} {challenger_s * 1000:10.1f}ms")
    print(f"   {'challenger inference per review, in the worker':46} {in_worker_s * 1000:10.1f}ms")
    verdict = "met" if extra_s <= challenger_s else "NOT met"
    print(f"   target extra <= challenger's own inference time: {verdict}")
    return results


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(run(quick=parser.parse_args().quick), indent=2, default=str))
