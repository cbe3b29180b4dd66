"""`make bench`: run every component benchmark, then write one results file.

Each benchmark module exposes `run(quick: bool = False) -> dict` and measures
its own baseline in the same run. `--quick` uses smaller inputs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ORDER = ("producer", "model", "graphs", "batching", "stream_processor", "shadow", "scaleout",
         "sink", "monitoring", "pipeline")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs")
    parser.add_argument("--only", nargs="*", choices=ORDER, help="run only these")
    parser.add_argument("--out", type=Path, default=Path("bench-results/results.json"))
    args = parser.parse_args()
    results: dict[str, object] = {
        "started_at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
    }
    failed = False
    for name in args.only or ORDER:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError:
            print(f"== {name}: no benchmark module yet, skipped")
            continue
        print(f"\n== {name}", flush=True)
        started = time.monotonic()
        try:
            results[name] = module.run(quick=args.quick)
        except Exception:  # a broken benchmark must not hide the others' numbers
            traceback.print_exc()
            results[name] = {"error": traceback.format_exc(limit=3)}
            failed = True
        print(f"   ({time.monotonic() - started:.0f}s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nResults written to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
