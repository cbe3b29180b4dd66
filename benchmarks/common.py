"""What every model-facing benchmark shares: the served bundle, the texts, CPU and memory.

- `served_bundle()`: the bundle the worker serves (SPOILER_WORKER_BUNDLE_PATH, default
  models/serving), or SPOILER_BENCH_BUNDLE; a tiny bundle built by the project's own
  pipeline only when neither exists (a fresh clone before `make up`), and the results say so.
- `torch_checkpoint(bundle)`: the PyTorch form of the bundle's model, for the naive
  baseline: `ensure-bundle` keeps it beside the bundle as `<bundle>.checkpoint`
  (training.pipeline.checkpoint_dir), or SPOILER_BENCH_CHECKPOINT.
- `bench_texts(n)`: the real sample (../shared) when present, else generated reviews;
  both cycled to `n`, each copy made distinct.
- `CpuClock`: wall seconds and this process's CPU seconds over a block.

Runs on this 2-core machine are shared with other work and vary by ±15 %: compare
variants only within one run, alternated (`alternate`), by their medians.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from spoiler_common.settings import REPO_ROOT

REAL_SAMPLE = REPO_ROOT.parent / "shared" / "data" / "imdb-real-sample" / "reviews.jsonl"
T = TypeVar("T")


def log(msg: str) -> None:
    print(f"   {msg}", flush=True)


@dataclass(frozen=True)
class BenchBundle:
    path: Path
    checkpoint: Path | None
    served: bool  # False: the tiny fallback, not what is served


def torch_checkpoint(bundle: Path) -> Path | None:
    """Where the PyTorch (transformers) form of the bundle's model is, if anywhere.

    SPOILER_BENCH_CHECKPOINT, else `<bundle>.checkpoint` when its version stamp is the
    bundle's (a checkpoint of another model would make the comparison false).
    """
    from spoiler_common.bundle import read_manifest
    from training.pipeline import CHECKPOINT_VERSION, checkpoint_dir

    env = os.environ.get("SPOILER_BENCH_CHECKPOINT")
    if env:
        return Path(env)
    kept = checkpoint_dir(bundle)
    if not (kept / "config.json").is_file():
        return None
    stamp = kept / CHECKPOINT_VERSION
    version = stamp.read_text().strip() if stamp.is_file() else ""
    if version != read_manifest(bundle).version:
        log(f"{kept} is the checkpoint of version {version or '?'}, not of the bundle's "
            f"{read_manifest(bundle).version}: ignored")
        return None
    return kept


def served_bundle() -> BenchBundle:
    """The served bundle (and its checkpoint); the tiny bundle only if none is installed."""
    from stream_processor.settings import WorkerSettings

    env = os.environ.get("SPOILER_BENCH_BUNDLE")
    path = Path(env) if env else WorkerSettings().bundle_path
    if (path / "bundle.json").is_file():
        return BenchBundle(path, torch_checkpoint(path), served=True)
    from training.pipeline import build_bundle
    from training.tiny import generated_reviews, tiny_params

    root = Path(tempfile.gettempdir()) / "spoiler-bench-tiny"
    bundle, work = root / "bundle", root / "work"
    if not (bundle / "bundle.json").exists():
        log(f"no bundle at {path}: building the tiny bundle (checkpoint kept) in {root}")
        build_bundle(generated_reviews(572, 0), work, bundle, tiny_params("tiny-bench", 0))
    log(f"WARNING: no bundle at {path}; measuring the tiny test bundle, not a served model")
    return BenchBundle(bundle, work / "train" / "model", served=False)


def bench_pairs(n: int, source: str = "auto") -> tuple[list[tuple[str, str]], str]:
    """(summary, text) pairs and where they came from ("real-sample" or "generated")."""
    rows: list[tuple[str, str]] = []
    if source in ("auto", "real") and REAL_SAMPLE.is_file():
        with REAL_SAMPLE.open(encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                rows.append((d.get("review_summary") or "", d["review_text"]))
        origin = "real-sample"
    else:
        from synth import generate

        rows = [(r["review_summary"] or "", r["review_text"]) for r in generate(min(n, 2000), 123)]
        origin = "generated"
    pairs = [(s, f"{t} (copy {i // len(rows)})" if i >= len(rows) else t)
             for i, (s, t) in ((i, rows[i % len(rows)]) for i in range(n))]
    return pairs, origin


def bench_texts(n: int, source: str = "auto") -> tuple[list[str], str]:
    """Model texts (summary + text) and their origin."""
    from spoiler_common.model_runtime import model_text

    pairs, origin = bench_pairs(n, source)
    return [model_text(s, t) for s, t in pairs], origin


class CpuClock:
    """Wall and process-CPU seconds of a `with` block."""

    def __enter__(self) -> CpuClock:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


def alternate(names: Sequence[T], rounds: int) -> Iterator[T]:
    """A B C, B C A, C A B, ...: each name runs first as often, none always after another."""
    for r in range(rounds):
        k = r % len(names)
        yield from [*names[k:], *names[:k]]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall s, CPU s) of one call."""
    with CpuClock() as clock:
        fn()
    return clock.wall, clock.cpu


def alternated_medians(work: dict[str, Callable[[], Any]], rounds: int
                       ) -> dict[str, tuple[float, float]]:
    """Each name's (median wall s, median CPU s) over `rounds` alternated runs of its work."""
    walls: dict[str, list[float]] = {k: [] for k in work}
    cpus: dict[str, list[float]] = {k: [] for k in work}
    for name in alternate(list(work), rounds):
        wall, cpu = timed(work[name])
        walls[name].append(wall)
        cpus[name].append(cpu)
    return {k: (median(walls[k]), median(cpus[k])) for k in work}


def machine_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores, 1-min load {load:.1f} at start (a shared machine: "
            "other work competes; compare within a run only)")


__all__ = ["REAL_SAMPLE", "BenchBundle", "CpuClock", "alternate", "alternated_medians",
           "bench_pairs", "bench_texts", "log", "machine_note", "median", "served_bundle",
           "timed", "torch_checkpoint"]
