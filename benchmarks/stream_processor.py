"""Stream worker benchmark: throughput and latency on real Kafka, against two baselines.

One run measures, on the same texts and the same bundle:
1. ceiling: the raw loader loop (`ModelBundle.predict` in batches, no Kafka);
2. naive: the original approach, a transformers pipeline called once per message;
3. worker: the reviews topic pre-filled with N reviews, one worker process drains
   it; reviews/s from the predictions' timestamps;
4. paced: the same worker fed at half its measured capacity; p50/p99 end-to-end.
Targets: worker >= 0.85 x ceiling, >= 4 x naive; paced p99 <= 1 s.

Run: `.venv/bin/python -m benchmarks.stream_processor [--quick]` (or `make bench`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spoiler_common.contracts import ReviewPublished, SpoilerPredicted, decode, encode
from spoiler_common.kafka import admin_client, consumer, producer
from spoiler_common.settings import REPO_ROOT, KafkaSettings
from spoiler_common.topics import ensure_topics, topic_specs

REAL_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "imdb-real-sample" / "reviews.jsonl"
BATCH_SIZE = 16
THREADS = 1


def log(msg: str) -> None:
    print(f"   {msg}", flush=True)


def pick_bundle() -> tuple[Path, Path | None]:
    """A bundle and the PyTorch checkpoint it was exported from (for the naive baseline).

    SPOILER_BENCH_BUNDLE / SPOILER_BENCH_CHECKPOINT choose them (e.g. the MiniLM bundle
    and `<work>/train/model`); otherwise the served bundle if its checkpoint is found,
    else the tiny bundle, built once with its checkpoint kept.
    """
    from stream_processor.settings import WorkerSettings

    env_bundle = os.environ.get("SPOILER_BENCH_BUNDLE")
    env_ckpt = os.environ.get("SPOILER_BENCH_CHECKPOINT")
    if env_bundle:
        return Path(env_bundle), Path(env_ckpt) if env_ckpt else None
    served = WorkerSettings().bundle_path
    if (served / "bundle.json").exists() and torch_checkpoint(served) is not None:
        return served, torch_checkpoint(served)
    from training.pipeline import build_bundle
    from training.tiny import generated_reviews, tiny_params

    root = Path(tempfile.gettempdir()) / "spoiler-bench-tiny"
    bundle, work = root / "bundle", root / "work"
    if not (bundle / "bundle.json").exists():
        log(f"building the tiny bundle (checkpoint kept) in {root}")
        build_bundle(generated_reviews(572, 0), work, bundle, tiny_params("tiny-bench", 0))
    return bundle, work / "train" / "model"


def torch_checkpoint(bundle: Path) -> Path | None:
    """Where the PyTorch (transformers) form of the bundle's model is, if anywhere."""
    for candidate in (bundle / "checkpoint", bundle.parent / "work" / "train" / "model"):
        if (candidate / "config.json").exists():
            return candidate
    return None


def load_texts(n: int) -> list[tuple[str, str]]:
    """(summary, text) pairs: the real sample, cycled, each copy made distinct."""
    rows: list[tuple[str, str]] = []
    with REAL_SAMPLE.open(encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            rows.append((d.get("review_summary") or "", d["review_text"]))
    return [(s, f"{t} (copy {i // len(rows)})" if i >= len(rows) else t)
            for i, (s, t) in ((i, rows[i % len(rows)]) for i in range(n))]


def ceiling(bundle_path: Path, texts: list[str]) -> dict[str, float]:
    from spoiler_common.model_runtime import load_bundle

    bundle = load_bundle(bundle_path, threads=THREADS)
    bundle.predict(texts[:BATCH_SIZE])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(texts), BATCH_SIZE):
        bundle.predict(texts[i:i + BATCH_SIZE])
    seconds = time.perf_counter() - started
    return {"reviews_per_s": len(texts) / seconds, "seconds": seconds}


def naive(checkpoint: Path, texts: list[str], max_length: int) -> dict[str, float]:
    """The original project's approach: one transformers pipeline call per message."""
    import inspect

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.set_num_threads(THREADS)
    model = AutoModelForSequenceClassification.from_pretrained(str(checkpoint))
    # A BERT vocabulary on a DistilBERT body: feed only the inputs the model takes.
    inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids")
              if n in inspect.signature(model.forward).parameters]
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), model_input_names=inputs)
    clf = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)
    kwargs = {"truncation": True, "max_length": max_length}
    clf(texts[0], **kwargs)  # warm-up
    started = time.perf_counter()
    for text in texts:
        clf(text, **kwargs)
    seconds = time.perf_counter() - started
    return {"reviews_per_s": len(texts) / seconds, "seconds": seconds, "n": len(texts)}


class Bench:
    """Topics under a unique prefix, one worker process, a reader of its predictions."""

    def __init__(self, bundle: Path) -> None:
        self.prefix = f"bench{uuid.uuid4().hex[:8]}."
        self.kafka = KafkaSettings(topic_prefix=self.prefix)
        self.specs = topic_specs(self.prefix)
        ensure_topics(admin_client(self.kafka), self.specs)
        self.reviews_topic = f"{self.prefix}spoiler-reviews"
        self.bundle = bundle
        self.producer = producer(self.kafka, "bench")
        self.reader = consumer(self.kafka, f"bench-reader-{self.prefix}", "bench")
        self.reader.subscribe([f"{self.prefix}spoiler-predictions"])
        self.worker: subprocess.Popen[bytes] | None = None
        self.port = 0

    def send(self, reviews: list[ReviewPublished], rate: float | None = None) -> None:
        started = time.perf_counter()
        for i, r in enumerate(reviews):
            if rate:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                # Stamp at send time: end-to-end then measures the pipeline, not the pacing.
                r = ReviewPublished.model_validate({**r.model_dump(),
                                                    "produced_at": datetime.now(UTC)})
            self.producer.produce(self.reviews_topic, key=r.review_id.encode(), value=encode(r))
            self.producer.poll(0)
        self.producer.flush(60)

    def start_worker(self) -> None:
        from devstack.procs import free_port

        self.port = free_port()
        env = {**os.environ, "SPOILER_KAFKA_TOPIC_PREFIX": self.prefix,
               "SPOILER_BUNDLE_PATH": str(self.bundle),
               "SPOILER_WORKER_APP_ID": f"bench-{self.prefix}",
               "SPOILER_WORKER_WEB_PORT": str(self.port),
               "SPOILER_WORKER_THREADS": str(THREADS),
               "SPOILER_WORKER_BATCH_SIZE": str(BATCH_SIZE),
               "SPOILER_WORKER_LOG_LEVEL": "WARNING",
               "SPOILER_WORKER_DATADIR": tempfile.mkdtemp(prefix="bench-worker-")}
        self.log_path = Path(tempfile.gettempdir()) / f"bench-worker-{self.port}.log"
        self.worker = subprocess.Popen([sys.executable, "-m", "stream_processor", "worker"],
                                       cwd=REPO_ROOT, env=env, stdout=self.log_path.open("wb"),
                                       stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.worker is not None
            if self.worker.poll() is not None:
                raise RuntimeError(f"worker exited; log: {self.log_path}")
            try:
                url = f"http://127.0.0.1:{self.port}/readyz"
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"worker not ready in {timeout}s; log: {self.log_path}")

    def collect(self, n: int, timeout: float) -> list[SpoilerPredicted]:
        out: list[SpoilerPredicted] = []
        deadline = time.monotonic() + timeout
        last_log = time.monotonic()
        while len(out) < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(out)}/{n} predictions within {timeout:.0f}s")
            for m in self.reader.consume(1000, timeout=0.5):
                if m.error() is None:
                    out.append(decode(m.value(), SpoilerPredicted))
            if time.monotonic() - last_log > 10:
                log(f"{len(out)}/{n} predictions")
                last_log = time.monotonic()
        return out

    def close(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(30)
            except subprocess.TimeoutExpired:
                self.worker.kill()
        self.reader.close()
        admin_client(self.kafka).delete_topics([s.name for s in self.specs])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drain_rate(preds: list[SpoilerPredicted]) -> float:
    """Reviews/s from the predictions' own timestamps (the first batch only opens the clock)."""
    times = sorted(p.predicted_at.timestamp() for p in preds)
    first = sum(1 for t in times if t == times[0])
    return (len(times) - first) / max(times[-1] - times[0], 1e-9)


def run(quick: bool = False) -> dict[str, Any]:
    from spoiler_common.model_runtime import load_bundle, model_text

    n = 500 if quick else 2_000
    n_naive = 50 if quick else 200
    paced_s = 10.0 if quick else 30.0
    bundle_path, checkpoint = pick_bundle()
    meta = load_bundle(bundle_path)
    pairs = load_texts(n)
    texts = [model_text(s, t) for s, t in pairs]
    log(f"bundle {meta.name} {meta.version} max_length={meta.max_length} at {bundle_path}")

    log("ceiling: raw loader loop...")
    raw = ceiling(bundle_path, texts)
    results: dict[str, Any] = {"n": n, "bundle": f"{meta.name} {meta.version}",
                               "max_length": meta.max_length, "batch_size": BATCH_SIZE,
                               "threads": THREADS, "raw_loop": raw}
    if checkpoint is not None:
        log(f"naive: transformers pipeline per message ({n_naive} texts)...")
        results["naive"] = naive(checkpoint, texts[:n_naive], meta.max_length)
    else:
        log("naive: no PyTorch checkpoint for this bundle; skipped")

    bench = Bench(bundle_path)
    try:
        now = datetime.now(UTC)
        reviews = [ReviewPublished(review_id=f"b{i}", produced_at=now, review_date="1 May 2020",
                                   movie_id="tt1", user_id="u1", review_summary=s,
                                   review_text=t) for i, (s, t) in enumerate(pairs)]
        bench.send(reviews)
        log(f"pre-filled {n} reviews; starting the worker...")
        bench.start_worker()
        bench.wait_ready()
        preds = bench.collect(n, timeout=600)
        rate = drain_rate(preds)
        e2e = [p.end_to_end_ms / 1000 for p in preds]
        results["worker"] = {"reviews_per_s": rate, "e2e_p50_s": percentile(e2e, 0.5),
                             "e2e_p99_s": percentile(e2e, 0.99)}

        paced_rate = rate / 2
        m = max(20, int(paced_rate * paced_s))
        log(f"paced: {m} reviews at {paced_rate:.1f}/s...")
        paced = [ReviewPublished.model_validate({**r.model_dump(), "review_id": f"p{i}"})
                 for i, r in enumerate((reviews * (m // n + 1))[:m])]
        bench.send(paced, rate=paced_rate)
        got = bench.collect(m, timeout=paced_s * 4 + 60)
        lat = [p.end_to_end_ms / 1000 for p in got]
        results["paced"] = {"rate": paced_rate, "n": m, "e2e_p50_s": percentile(lat, 0.5),
                            "e2e_p99_s": percentile(lat, 0.99)}
    finally:
        bench.close()

    w = results["worker"]["reviews_per_s"]
    results["vs_raw_loop"] = w / raw["reviews_per_s"]
    if "naive" in results:
        results["vs_naive"] = w / results["naive"]["reviews_per_s"]
    results["targets_met"] = {
        "vs_raw_loop>=0.85": results["vs_raw_loop"] >= 0.85,
        "vs_naive>=4": results.get("vs_naive", 0) >= 4 if "naive" in results else None,
        "paced_p99<=1s": results["paced"]["e2e_p99_s"] <= 1.0,
    }
    print_table(results)
    return results


def print_table(r: dict[str, Any]) -> None:
    print(f"   {'what':34} {'reviews/s':>10} {'p50 e2e':>9} {'p99 e2e':>9}")
    print(f"   {'raw loader loop (ceiling)':34} {r['raw_loop']['reviews_per_s']:10.1f}")
    if "naive" in r:
        print(f"   {'naive pipeline per message':34} {r['naive']['reviews_per_s']:10.1f}")
    w, p = r["worker"], r["paced"]
    print(f"   {'worker, pre-filled topic':34} {w['reviews_per_s']:10.1f} "
          f"{w['e2e_p50_s']:8.2f}s {w['e2e_p99_s']:8.2f}s")
    print(f"   {'worker, paced at half capacity':34} {p['rate']:10.1f} "
          f"{p['e2e_p50_s']:8.3f}s {p['e2e_p99_s']:8.3f}s")
    vs_naive = f"{r['vs_naive']:.1f}x naive (target >= 4)" if "vs_naive" in r else "naive n/a"
    print(f"   worker = {r['vs_raw_loop']:.2f}x raw loop (target >= 0.85), {vs_naive}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    result = run(quick=parser.parse_args().quick)
    print(json.dumps(result, indent=2, default=str))
